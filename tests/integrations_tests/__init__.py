"""Checks shared by the framework integrations' tests."""

from __future__ import annotations

import optuna
import pytest

from lrsearch import Schedule


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def check_study_runs(result, runs, full_steps: int) -> None:
    """Each run ``(trial number, callback, LRs used per optimizer step, steps trained, trainer's full
    steps)`` followed its trial's schedule built for its run length, and reported every evaluation."""
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.COMPLETE] * len(runs)
    for number, search, lrs, trained, full in runs:
        trial = result.study.trials[number]
        schedule = Schedule.from_dict(trial.user_attrs["schedule"])
        assert full == full_steps and trial.user_attrs["full_steps"] == full_steps
        assert search.run_steps == trial.user_attrs["run_steps"] == trained == len(lrs)
        assert lrs == pytest.approx([schedule.lr_at(k, search.run_steps) for k in range(search.run_steps)])
        assert len(trial.intermediate_values) == trial.user_attrs["n_evals"]
        assert trial.value == search.value == trial.intermediate_values[max(trial.intermediate_values)]
    assert any(search.run_steps < full_steps for _, search, *_ in runs)  # a short run of the default rungs


def check_tail_run(plain: dict, tail: dict, start: int) -> None:
    """A run with an SWA tail from step ``start`` against the same run without one; each dict holds
    ``steps`` (the live weights after every optimizer step), ``values`` (validation metrics),
    ``final`` (the trained model's weights after training) and ``final_value`` (its metric)."""
    import torch

    # the live trajectory is untouched by the swaps for validation
    assert len(tail["steps"]) == len(plain["steps"]) > start
    for a, b in zip(tail["steps"], plain["steps"]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    mean = torch.stack(tail["steps"][start:]).mean(0)
    torch.testing.assert_close(tail["final"], mean, rtol=1e-5, atol=1e-6)  # the model is the average
    assert not torch.allclose(plain["final"], mean)
    # validations before the tail's start judge the live model, those after it the average
    assert tail["values"][0] == plain["values"][0] and tail["values"][-1] != plain["values"][-1]
    assert tail["values"][-1] == pytest.approx(tail["final_value"], rel=1e-5)
