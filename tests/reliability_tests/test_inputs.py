"""Every bad input is one clear ValueError, raised before anything is written (issue 26)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import lrsearch


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _objective(trial: optuna.trial.Trial) -> float:
    return lrsearch.suggest_schedule(trial).lr


def _range_test() -> lrsearch.RangeTestResult:
    lrs = np.logspace(-7, 1, 100)
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(np.log10(lrs) + 2.0) / 0.3))
    return lrsearch.RangeTestResult.from_arrays(lrs, losses, start_lr=1e-7, end_lr=10.0, num_iter=100)


def _task(**changes) -> lrsearch.Task:  # noqa: ANN003
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    given = {"model_fn": lambda: torch.nn.Linear(3, 1), "train_data": (x, y), "val_data": (x, y),
             "loss_fn": torch.nn.functional.mse_loss, "epochs": 2}
    return lrsearch.Task(**{**given, **changes})


@pytest.mark.parametrize("kwargs,message", [
    ({"budget": 10**400}, "budget must be finite but got an integer of 401 digits"),  # was OverflowError
    ({"budget": float("nan")}, "budget must be finite"),
    ({"timeout": -1}, "timeout must be > 0 but got -1"),
    ({"timeout": "10"}, "timeout must be a real number"),
    ({"seed_families": ["cosin"]}, "seed_families needs seed_from"),
    ({"seed_families": "cosine", "seed_from": "rt"}, "seed_families must be a list of names (not a single string)"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"heartbeat_interval": 2**63}, "heartbeat_interval must be <= 86400 s"),
    ({"seed": 2**40}, "seed must be < 2**32"),
    ({"space": ["cosine"]}, "space must be a lrsearch.SearchSpace"),
    ({"sampler": "tpe"}, "sampler must be an optuna BaseSampler"),
    ({"pruner": object()}, "pruner must be an optuna BasePruner"),
    ({"callbacks": print}, "callbacks must be a list of callables"),
    ({"catch": ValueError}, "catch must be a tuple of Exception classes"),
    ({"show_progress_bar": "yes"}, "show_progress_bar must be True or False"),
    ({"artifacts": "/proc/art"}, "artifacts: the folder '/proc/art' could not be created"),
    ({"artifacts": "no/such/folder"}, "artifacts 'no/such/folder' is in a folder that does not exist ('no/such')"),
    ({"artifacts": 3}, "artifacts must be a path"),
])
def test_bad_optimize_arguments_are_value_errors_before_anything_is_written(kwargs: dict, message: str, tmp_path,
                                                                            monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    if kwargs.get("seed_from") == "rt":
        kwargs = {**kwargs, "seed_from": _range_test()}
    with pytest.raises(ValueError) as info:
        lrsearch.optimize(_objective, n_trials=1, study_name="s", **kwargs)
    assert message in str(info.value)
    assert not os.listdir(tmp_path)  # no study file, no folder


def test_a_task_passed_positionally_is_refused_with_a_hint(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"got a lrsearch.Task: pass it by name, optimize\(task=task\)") as info:
        lrsearch.optimize(_task())
    assert len(str(info.value)) < 200  # no repr of the task


def test_a_user_named_artifacts_folder_is_made_as_mkdir_makes_it(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = lrsearch.optimize(_objective, n_trials=1, study_name="s", storage="s.log", artifacts="art")
    assert result.counts() == {"complete": 1} and Path("art").is_dir()


def test_the_default_folders_under_studies_are_still_made(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    lrsearch.optimize(_objective, n_trials=1, study_name="s", storage="studies/deep/s.log",
                      artifacts="studies/deep/art")
    assert Path("studies/deep/s.log").is_file() and Path("studies/deep/art").is_dir()


@pytest.mark.parametrize("storage", ["nowhere/s.log", "nowhere/s.db", "sqlite:///nowhere/s.db"])
def test_a_storage_in_a_missing_folder_is_refused(storage: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="storage 'nowhere/s.(log|db)' is in a folder that does not exist"):
        lrsearch.optimize(_objective, n_trials=1, study_name="s", storage=storage, artifacts=None)
    assert not Path("nowhere").exists()


def test_export_best_to_a_missing_folder_is_refused_and_makes_no_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = lrsearch.optimize(_objective, n_trials=2, study_name="s", storage="s.log", artifacts=None)
    missing = tmp_path / "nonexistent_dir" / "x.json"
    with pytest.raises(ValueError, match="is in a folder that does not exist"):
        result.export_best(missing)
    assert not missing.parent.exists()
    assert result.export_best("best.json").is_file() and result.export_best("studies/best.json").is_file()


def test_a_garbage_last_journal_line_is_a_value_error_naming_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    lrsearch.optimize(_objective, n_trials=1, study_name="s", storage="j.log", artifacts=None)
    with open("j.log", "a") as f:
        f.write("garbage\n")
    for _ in range(2):  # the first open used to pass, and the run then raised a bare JSONDecodeError
        with pytest.raises(ValueError, match="storage journal file 'j.log' holds a line Optuna cannot replay"):
            lrsearch.optimize(_objective, n_trials=1, study_name="s", storage="j.log", artifacts=None)


@pytest.mark.parametrize("make,message", [
    (lambda: lrsearch.LossModel(overfit="x"), "overfit must be True or False but got 'x'"),
    (lambda: lrsearch.LossModel(laws="area"), "laws must be a list of names (not a single string)"),
    (lambda: lrsearch.LossModel(focus="x"), "focus must be a real number"),
    (lambda: lrsearch.LossModel(focus=float("inf")), "focus must be finite"),
    (lambda: lrsearch.OptimizerSpec("sgd", weight_decay=1e308), "weight_decay must be in [0, 10] but got 1e+308"),
    (lambda: lrsearch.OptimizerSpec("sgd", ratios={"others": 1e308}), "ratios['others'] must be in (0, 1000]"),
    (lambda: lrsearch.OptimizerSpace(weight_decay=(1e-3, 1e308)), "weight_decay must have high <= 10"),
    (lambda: lrsearch.SearchSpace(families="cosine"), "families must be a list of names, None or 'all' "
                                                      "but got 'cosine'"),
    (lambda: lrsearch.SearchSpace(families=[3]), "families[0] must be a name (a str) but got 3"),
    (lambda: lrsearch.SearchSpace(warmup="no"), "warmup must be True or False but got 'no'"),
    (lambda: _task(device="bogus"), "device must be a torch device or its name"),
    (lambda: _task(model_fn=torch.nn.Linear(3, 1)), "model_fn must build a fresh model for each trial"),
    (lambda: _task(train_data=(torch.randn(16, 3),)), "train_data must be an (inputs, targets) pair of tensors"),
    (lambda: _task(val_data=(torch.randn(16, 3), torch.randn(8, 1))), "val_data must be an (inputs, targets) pair"),
    (lambda: _task(train_data=[(torch.randn(4, 3),)] * 3), "train_data's batches must be (inputs, targets) pairs"),
    (lambda: _task(train_data=iter([(torch.randn(4, 3), torch.randn(4, 1))])), "train_data must be (inputs, "
                                                                                "targets) tensors or a re-iterable"),
])
def test_bad_constructor_arguments_are_value_errors(make, message: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)

