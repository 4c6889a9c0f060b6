"""``optimize(task=..., population=K)``: trials asked K at a time, trained together, told one by one."""

from __future__ import annotations

import optuna
import pytest

import lrsearch
from tests.population_tests.conftest import make_task


def _optimize(task: lrsearch.Task, **kwargs) -> lrsearch.SearchResult:  # noqa: ANN003
    settings = {"storage": optuna.storages.InMemoryStorage(), "artifacts": None, "heartbeat_interval": None,
                "study_name": "pop", **kwargs}
    return lrsearch.optimize(task=task, **settings)


def test_population_completes_trials_into_the_storage(task) -> None:  # noqa: ANN001
    seen: list[int] = []
    result = _optimize(task, n_trials=5, population=3, rungs=None, callbacks=[lambda s, t: seen.append(t.number)])
    trials = result.study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert sorted(seen) == [0, 1, 2, 3, 4]  # the user's callback ran after each tell
    for t in trials:
        assert t.user_attrs["owner"]["trial"] == t.number and t.user_attrs["run_steps"] == task.full_steps()
        assert len(t.intermediate_values) == task.epochs and t.user_attrs["schedule"]["family"] == t.params["family"]
    alone = lrsearch.train(task, lrsearch.Schedule.from_dict(trials[4].user_attrs["schedule"]))
    assert trials[4].value == pytest.approx(alone.final, abs=1e-5)  # a member's value is its own run's


def test_population_respects_the_budget_and_promotes(task) -> None:  # noqa: ANN001
    result = _optimize(task, budget=3, population=4)
    trials = result.study.get_trials()
    fidelities = [t.user_attrs["fidelity"] for t in trials]
    short = result.study.user_attrs["rungs"]["fractions"][0]  # 1/9 under a budget of 4 ("auto" rungs)
    assert fidelities[:4] == [short] * 4 and 1.0 in fidelities  # fresh at the short rung, then promoted
    from lrsearch.search._lengths import spent

    assert spent(result.study) <= 3 + 1e-9


def test_a_pruned_member_is_told_pruned(task) -> None:  # noqa: ANN001
    class PruneOdd(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:  # noqa: ANN001
            return trial.number % 2 == 1

    result = _optimize(task, n_trials=4, population=4, rungs=None, pruner=PruneOdd())
    states = [t.state.name for t in result.study.get_trials()]
    assert states == ["COMPLETE", "PRUNED", "COMPLETE", "PRUNED"]
    assert all(len(t.intermediate_values) == 1 for t in result.study.get_trials() if t.number % 2)


def test_ctrl_c_keeps_finished_trials_and_fails_the_rest(task) -> None:  # noqa: ANN001
    def interrupt(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        raise KeyboardInterrupt

    # the three finish together; Ctrl-C lands in the callback after trial 0's tell
    result = _optimize(task, n_trials=3, population=3, rungs=None, callbacks=[interrupt],
                       space=lrsearch.SearchSpace(families=["constant"]))
    trials = result.study.get_trials()
    assert result.interrupted
    assert trials[0].state == optuna.trial.TrialState.COMPLETE
    assert all(t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("interrupted") for t in trials[1:])


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "many"])
def test_bad_population_values_are_refused(task, bad) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="population must be None, 'auto' or an integer >= 1"):
        _optimize(task, n_trials=1, population=bad)


def test_population_needs_a_task_and_one_job(task) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="population needs task"):
        lrsearch.optimize(lambda trial: 0.0, n_trials=1, population=2, storage=optuna.storages.InMemoryStorage())
    with pytest.raises(ValueError, match="n_jobs must be 1 with a population"):
        _optimize(task, n_trials=1, population=2, n_jobs=2)
