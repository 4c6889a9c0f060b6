"""The optimizer in the search (opt-in): sampling, the LR ratio per family, groups, optimize end to end."""

from __future__ import annotations

import json
import math

import optuna
import pytest
import torch
import torch.nn.functional as F

import lrsearch
from lrsearch import OptimizerSpace
from lrsearch import SearchSpace
from lrsearch.optim import OPTIMIZERS
from lrsearch.optim import OptimizerSpec


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _task(groups: dict | None = None) -> lrsearch.Task:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(240, 6, generator=g)
    y = (x[:, :2].sum(1) > 0).long()

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    return lrsearch.Task(model, (x[:160], y[:160]), (x[160:], y[160:]), F.cross_entropy, epochs=2,
                         batch_size=32, groups=groups)


def _space(**kw) -> SearchSpace:
    return SearchSpace(families=["cosine", "constant"], lr=(1e-3, 1e-1),
                       optimizer=OptimizerSpace(("sgd", "adamw", "novograd"), **kw))


def test_suggest_samples_the_optimizer_conditionally_and_scales_the_peak() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    space = _space(weight_decay=(1e-5, 1e-1), group_ratios={"head": (0.01, 1.0)})
    seen = set()
    for _ in range(30):
        trial = study.ask()
        schedule = space.suggest(trial)
        spec = OptimizerSpec.from_dict(trial.user_attrs["optimizer"])
        seen.add(spec.name)
        assert trial.params["optimizer"] == spec.name
        ratio_keys = [k for k in trial.params if k.endswith(".lr_ratio")]
        if spec.name == "sgd":  # the reference: the LR range is its own, no ratio sampled
            assert ratio_keys == [] and schedule.lr == pytest.approx(trial.params["lr"])
        else:
            assert ratio_keys == [f"optimizer.{spec.name}.lr_ratio"]
            low, high = space.optimizer.ratio_range(spec.name)
            assert low <= trial.params[ratio_keys[0]] <= high
            assert schedule.lr == pytest.approx(trial.params["lr"] * trial.params[ratio_keys[0]])
        assert spec.weight_decay == (0.0 if trial.params["weight_decay_is_zero"] else trial.params["weight_decay"])
        assert spec.ratios["head"] == trial.params["group_ratio.head"]
        assert lrsearch.suggest_optimizer(trial) == spec  # the stored one, not a second sample
        study.tell(trial, 1.0)
    assert seen == {"sgd", "adamw", "novograd"}


def test_ratio_ranges_follow_typical_lrs() -> None:
    space = OptimizerSpace(("adamw", "sgd"))
    low, high = space.ratio_range("sgd")
    centre = OPTIMIZERS["sgd"].typical_lr / OPTIMIZERS["adamw"].typical_lr
    assert (low, high) == pytest.approx((centre / 10, centre * 10)) and centre > 1
    assert space.ratio_range("adamw") == (1.0, 1.0)


def test_default_space_samples_no_optimizer() -> None:
    trial = optuna.create_study().ask()
    SearchSpace(families=["cosine"]).suggest(trial)
    assert "optimizer" not in trial.user_attrs and not any("optimizer" in k for k in trial.params)
    assert lrsearch.suggest_optimizer(trial) is None


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(optimizers=()), "optimizers must be a non-empty list"),
    (dict(optimizers="sgd"), "optimizers must be a non-empty list"),
    (dict(optimizers=("sgd", "lion")), "optimizers must name families of .* but got 'lion'"),
    (dict(optimizers=("sgd", "sgd")), "must not repeat"),
    (dict(weight_decay=(0.1, 0.01)), r"weight_decay must satisfy 0 < low < high but got \(0.1, 0.01\)"),
    (dict(group_ratios={"head": 0.1}), r"group_ratios\['head'\] must be a \(low, high\) pair"),
])
def test_space_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OptimizerSpace(**kwargs)


def test_optimize_trains_each_trials_optimizer_and_exports_it(tmp_path) -> None:
    space = _space(weight_decay=(1e-5, 1e-1), group_ratios={"head": (0.1, 1.0)})
    result = lrsearch.optimize(task=_task({"head": "2.*"}), n_trials=8, rungs=None, space=space,
                               pruner=optuna.pruners.NopPruner(),
                               storage=optuna.storages.InMemoryStorage(), artifacts=None, heartbeat_interval=None)
    trials = result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 8 and all("optimizer" in t.user_attrs for t in trials)
    assert result.study.user_attrs["search_space"]["optimizer"]["optimizers"] == ["sgd", "adamw", "novograd"]
    best = result.best_optimizer
    assert isinstance(best, OptimizerSpec) and best.to_dict() == result.best_trial.user_attrs["optimizer"]
    assert best.describe() in result.table()
    data = json.loads(result.export_best(tmp_path / "best.json").read_text())
    assert OptimizerSpec.from_dict(data["optimizer"]) == best
    assert lrsearch.Schedule.from_dict(data) == result.best_schedule  # the note does not break the spec


def test_train_uses_the_optimizer_spec_with_the_tasks_groups() -> None:
    task = _task({"head": "2.*"})
    spec = OptimizerSpec("nesterov", weight_decay=1e-4, ratios={"head": 0.25})
    seen = []
    original = OptimizerSpec.build

    def spy(self, model, lr=1e-3, groups=None):  # noqa: ANN001, ANN202
        opt = original(self, model, lr, groups)
        seen.append(opt)
        return opt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(OptimizerSpec, "build", spy)
        out = lrsearch.train(task, lrsearch.Schedule("constant", lr=0.05), optimizer=spec)
    (opt,) = seen
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and math.isfinite(out.final)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.0125, 0.05])  # the ratio held to the end


def test_group_ratio_needs_a_task_group() -> None:
    space = _space(group_ratios={"head": (0.1, 1.0)})
    with pytest.raises(ValueError, match="group_ratios names the group 'head' but the task's groups define none"):
        lrsearch.optimize(task=_task(), n_trials=1, space=space, storage=optuna.storages.InMemoryStorage(),
                          artifacts=None, heartbeat_interval=None)
    with pytest.raises(ValueError, match=r"groups\['head'\] must be a pattern"):
        _task({"head": 3})


def test_seeds_start_from_the_reference_optimizer() -> None:
    space = _space(weight_decay=(1e-5, 1e-1))
    params = space.seed_params("cosine", 0.01)
    assert params["optimizer"] == "sgd" and params["weight_decay_is_zero"] is True
    study = optuna.create_study()
    study.enqueue_trial(params)
    trial = study.ask()
    schedule = space.suggest(trial)
    assert lrsearch.suggest_optimizer(trial) == OptimizerSpec("sgd", 0.0) and schedule.lr == pytest.approx(0.01)


def test_population_trains_searched_optimizers_one_at_a_time_and_says_so() -> None:
    space = _space(weight_decay=(1e-5, 1e-1))
    with pytest.warns(lrsearch.PopulationWarning, match="searched optimizers"):
        result = lrsearch.optimize(task=_task(), n_trials=4, rungs=None, space=space, population=4,
                                   pruner=optuna.pruners.NopPruner(), storage=optuna.storages.InMemoryStorage(),
                                   artifacts=None, heartbeat_interval=None)
    trials = result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 4 and all("optimizer" in t.user_attrs for t in trials)
    # each trial trained with its own optimizer: the same spec retrained alone gives its value
    best = result.best_trial
    again = lrsearch.train(_task(), result.best_schedule, optimizer=result.best_optimizer)
    assert again.final == pytest.approx(best.value, rel=1e-6)


def test_dashboard_notes_name_each_trials_optimizer(tmp_path) -> None:
    from optuna_dashboard import get_note

    from lrsearch.reports import trial_note

    space = _space(weight_decay=(1e-5, 1e-1), group_ratios={"head": (0.1, 1.0)})
    result = lrsearch.optimize(task=_task({"head": "2.*"}), n_trials=3, rungs=None, space=space,
                               pruner=optuna.pruners.NopPruner(), storage=optuna.storages.InMemoryStorage(),
                               artifacts=str(tmp_path / "artifacts"), heartbeat_interval=None)
    for t in result.study.trials:
        spec = OptimizerSpec.from_dict(t.user_attrs["optimizer"])
        note = trial_note(t)
        assert f"- **Optimizer:** `{spec.name}`" in note and f"head x{spec.ratios['head']:.3g}" in note
    assert f"with `{result.best_optimizer.describe()}`" in get_note(result.study)
