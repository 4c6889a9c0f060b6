"""optimize end to end on SQLite: seeds once, pruning, resume, rebuildable trials, reports."""

from __future__ import annotations

import json
import math
import warnings

import optuna
import pytest
import torch
import torch.nn.functional as F

import lrsearch
from lrsearch import Schedule
from lrsearch.search import widened


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _task(epochs: int = 4) -> lrsearch.Task:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(480, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))

    return lrsearch.Task(model, (x[:320], y[:320]), (x[320:], y[320:]), F.cross_entropy, epochs=epochs,
                         batch_size=32, optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))


@pytest.fixture()
def range_test() -> lrsearch.RangeTestResult:
    task = _task()
    torch.manual_seed(0)
    model = task.model_fn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn,
                                lrsearch.TensorBatches(*task.train_data, batch_size=32), verbose=False)


def test_end_to_end_study_on_sqlite(tmp_path, monkeypatch, range_test) -> None:
    monkeypatch.chdir(tmp_path)
    families = ["constant", "cosine", "wsd", "onecycle", "step"]
    space = lrsearch.SearchSpace(families=families)
    result = lrsearch.optimize(task=_task(), n_trials=14, study_name="e2e", space=space, seed_from=range_test,
                               pruner=lrsearch.PlateauPruner(patience=1, n_startup_trials=2, n_warmup_steps=1))
    assert (tmp_path / "studies" / "e2e.db").exists()
    study = result.study
    seeds = [t for t in study.trials if "seed" in t.user_attrs]
    assert len(seeds) == len(families) == study.user_attrs["seeds_enqueued"]
    assert {t.params["family"] for t in seeds} == set(families)
    low, high = study.user_attrs["search_space"]["lr"]  # the range test's range and its tails
    assert (low, high) == widened(range_test.search_range(), (1e-7, 10.0))
    assert all(low <= t.params["lr"] <= high for t in study.trials if "lr" in t.params)
    # every trial's schedule rebuilds from its user attrs
    for t in study.trials:
        s = Schedule.from_dict(t.user_attrs["schedule"])
        assert s.family == t.params["family"] and s.lr == pytest.approx(t.params["lr"] * t.user_attrs.get("lr_scale", 1))
    states = result.counts()
    assert states.get("complete", 0) + states.get("pruned", 0) == 14

    # resume: the same call adds trials and never re-enqueues a seed
    again = lrsearch.optimize(task=_task(), n_trials=3, study_name="e2e", space=space, seed_from=range_test)
    assert len(again.study.trials) == 17
    assert len([t for t in again.study.trials if "seed" in t.user_attrs]) == len(families)

    # results: best schedule, table, JSON export, plots
    best = again.best_schedule
    assert best == Schedule.from_dict(again.best_trial.user_attrs["schedule"])
    from lrsearch.search._lengths import trial_fraction

    complete = [t for t in again.study.trials if t.state.name == "COMPLETE"]
    longest = max(trial_fraction(t) for t in complete)
    assert again.best_value == min(t.value for t in complete if trial_fraction(t) == longest)
    rows = again.top(3)  # completed trials: longest runs first, then by value
    assert [(r["run"] != "full", r["value"]) for r in rows] == sorted((r["run"] != "full", r["value"]) for r in rows)
    assert "| 1 |" in again.table(3)
    path = again.export_best(tmp_path / "best.json")
    assert Schedule.from_json(path.read_text()) == best
    assert again.plot_schedules(3).axes and again.plot_history().axes
    # the dashboard's view: an LR-curve artifact per trial, a note and the range-test plot on the study
    from optuna.artifacts import get_all_artifact_meta
    from optuna_dashboard import get_note

    for t in again.study.trials:  # an LR curve on every trial that completed a full-length run
        full = t.state.name == "COMPLETE" and trial_fraction(t) == 1
        assert bool(get_all_artifact_meta(t, storage=again.study._storage)) == full
    assert "Top schedules" in get_note(again.study)
    assert sorted(m.filename for m in get_all_artifact_meta(again.study)) == ["range_test.json", "range_test.png"]


def test_pruning_happens_and_reasons_are_kept(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        curve = [1.0, 0.9, 0.9, 0.9, 0.9] if schedule.family == "constant" else [1.0, 0.8, 0.6, 0.4, 0.2]
        if trial.number == 7:
            curve[2] = float("nan")
        for step, value in enumerate(curve):
            lrsearch.report(trial, value, step, n_evals=len(curve))
        return curve[-1]

    result = lrsearch.optimize(objective, n_trials=12, study_name="p", space=lrsearch.SearchSpace(["constant", "cosine"]),
                               pruner=lrsearch.PlateauPruner(patience=1, n_startup_trials=2), artifacts=None)
    pruned = [t for t in result.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all("prune_reason" in t.user_attrs for t in pruned)
    assert result.study.trials[7].user_attrs["prune_reason"] == "non-finite metric nan at step 2"
    assert all(t.params["family"] == "constant" for t in pruned if t.number != 7)


def test_user_objective_with_threads_on_a_journal_file(tmp_path, monkeypatch, range_test) -> None:
    monkeypatch.chdir(tmp_path)
    seen = []

    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)  # the space optimize was given, in every thread
        seen.append(schedule.family)
        return math.log10(schedule.lr)

    space = lrsearch.SearchSpace(["cosine", "linear"])
    result = lrsearch.optimize(objective, n_trials=12, study_name="j", storage="studies/j.log", space=space,
                               seed_from=range_test, n_jobs=2, artifacts=None)
    assert set(seen) <= {"cosine", "linear"} and len(result.study.trials) == 12
    seeds = [t for t in result.study.trials if "seed" in t.user_attrs]
    assert len(seeds) == 2 and len({json.dumps(t.params, sort_keys=True) for t in seeds}) == 2


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({}, "optimize needs exactly one of objective or task"),
        ({"objective": 3}, "objective must be callable"),
        ({"objective": lambda t: 0.0, "n_jobs": 2}, "n_jobs must be 1 on SQLite"),
        ({"objective": lambda t: 0.0, "direction": "down"}, "direction must be one of 'minimize', 'maximize'"),
        ({"objective": lambda t: 0.0, "study_name": "a/b"}, "study_name must be a non-empty name without slashes"),
        ({"objective": lambda t: 0.0, "seed_from": (1e-3, 1e-1)}, "seed_from must be a RangeTestResult"),
        ({"objective": lambda t: 0.0, "n_trials": -1}, "n_trials must be >= 0 but got -1"),
        ({"objective": lambda t: 0.0, "storage": "studies/x.txt"}, "storage must be a URL, a .db or .log path"),
        ({"objective": lambda t: 0.0, "storage": "redis://u:pw@h/0"}, "storage must use one of the schemes"),
        ({"objective": lambda t: 0.0, "heartbeat_interval": 0}, "heartbeat_interval must be >= 1"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as info:
        lrsearch.optimize(**kwargs)
    assert message in str(info.value)


def test_failed_trials_do_not_lose_completed_ones(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    calls = []

    def objective(trial: optuna.trial.Trial) -> float:
        lrsearch.suggest_schedule(trial)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return float(len(calls))

    assert lrsearch.optimize(objective, n_trials=5, study_name="k", artifacts=None).interrupted
    study = optuna.load_study(study_name="k", storage="sqlite:///studies/k.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE", "FAIL"]
