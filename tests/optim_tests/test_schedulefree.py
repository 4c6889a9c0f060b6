"""Schedule-Free AdamW / SGD (``lrsearch.optim.ScheduleFree``) and the ``schedule_free`` family in the loop."""

from __future__ import annotations

import math

import pytest
import torch

import lrsearch
from lrsearch import Schedule
from lrsearch.optim import ScheduleFree
from lrsearch.optim import schedule_free


def _pair(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    b = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    b.load_state_dict(a.state_dict())
    return a, b


def _steps(pairs: list[tuple[torch.nn.Module, torch.optim.Optimizer]], peak: float, n: int = 25) -> None:
    gen = torch.Generator().manual_seed(1)
    for i in range(n):
        x = torch.randn(16, 5, generator=gen)
        for model, opt in pairs:
            for group in opt.param_groups:
                group["lr"] = peak * min(1.0, (i + 1) / 5)  # a warmup, as a schedule drives it
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()


@pytest.mark.parametrize("kind", ["adamw", "adam", "sgd"])
def test_matches_the_authors_reference_step_by_step(kind: str) -> None:
    sf = pytest.importorskip("schedulefree")
    ref_model, model = _pair()
    if kind == "sgd":
        ref = sf.SGDScheduleFreeReference(ref_model.parameters(), lr=0.1, momentum=0.8, weight_decay=0.01)
        mine = schedule_free(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.8, weight_decay=0.01))
    else:  # the reference decays AdamW-style; Adam's L2 form has no reference, so it is checked without decay
        wd = 0.1 if kind == "adamw" else 0.0
        ref = sf.AdamWScheduleFreeReference(ref_model.parameters(), lr=0.01, betas=(0.85, 0.99), weight_decay=wd)
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        mine = schedule_free(cls(model.parameters(), lr=0.01, betas=(0.85, 0.99), weight_decay=wd))
    ref.train()
    mine.train()
    _steps([(ref_model, ref), (model, mine)], peak=0.1 if kind == "sgd" else 0.01)
    for a, b in zip(ref_model.parameters(), model.parameters()):
        torch.testing.assert_close(b, a)  # y, the training point
    ref.eval()
    mine.eval()
    for a, b in zip(ref_model.parameters(), model.parameters()):
        torch.testing.assert_close(b, a)  # x, the average


def test_eval_holds_the_lr_weighted_average_of_the_z_iterates() -> None:
    """Without a reference package: x is the average of z_1..z_T weighted by (max LR so far)^2, and
    train() restores y = beta1 x + (1 - beta1) z exactly."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4))
    opt = ScheduleFree([w], lr=0.1, betas=(0.9, 0.999), adaptive=False)
    zs, weights, lr_max = [], [], 0.0
    for i in range(12):
        opt.param_groups[0]["lr"] = 0.1 * min(1.0, (i + 1) / 4)
        lr_max = max(lr_max, opt.param_groups[0]["lr"])
        opt.zero_grad()
        (w ** 2).sum().backward()
        opt.step()
        zs.append(opt.state[w]["z"].clone())
        weights.append(lr_max ** 2)
    y = w.detach().clone()
    opt.eval()
    expected = sum(wt * z for wt, z in zip(weights, zs)) / sum(weights)
    torch.testing.assert_close(w.detach(), expected)
    assert not opt.training
    opt.train()
    torch.testing.assert_close(w.detach(), y)
    with pytest.raises(RuntimeError, match="train mode"):
        opt.eval()
        opt.step()


def test_conversion_keeps_groups_and_refuses_what_it_cannot_convert() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    base = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.01, "name": "body"},
                            {"params": model[1].parameters()}], lr=0.1, momentum=0.0, weight_decay=1e-4)
    opt = schedule_free(base)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1]
    assert opt.param_groups[0]["name"] == "body"
    assert opt.param_groups[0]["betas"][0] == 0.9  # SGD without momentum takes Schedule-Free's 0.9
    assert not opt.param_groups[0]["adaptive"] and not opt.param_groups[0]["decoupled"]
    assert schedule_free(opt) is opt
    with pytest.raises(ValueError, match="AdamW, Adam or SGD.*RMSprop"):
        schedule_free(torch.optim.RMSprop(model.parameters()))
    with pytest.raises(ValueError, match="amsgrad"):
        schedule_free(torch.optim.Adam(model.parameters(), amsgrad=True))
    for bad, match in (({"lr": -1.0}, "lr must be >= 0"), ({"betas": (0.9, 1.0)}, "betas must be two numbers"),
                       ({"weight_decay": float("nan")}, "weight_decay")):
        with pytest.raises(ValueError, match=match):
            ScheduleFree(model.parameters(), **bad)


def _task() -> tuple[lrsearch.Task, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    x = torch.randn(256, 6)
    y = x @ torch.randn(6) + 0.05 * torch.randn(256)
    task = lrsearch.Task(model_fn=lambda: torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(),
                                                              torch.nn.Linear(16, 1), torch.nn.Flatten(0)),
                         train_data=(x[:192], y[:192]), val_data=(x[192:], y[192:]),
                         loss_fn=torch.nn.functional.mse_loss, epochs=4, batch_size=32, threads=1)
    return task, (x, y)


def test_the_family_needs_a_schedule_free_optimizer_and_the_loop_converts() -> None:
    schedule = Schedule("schedule_free", lr=0.03, warmup={"frac": 0.1})
    assert schedule.lr_at(0, 100) < 0.01  # the warmup composes as for every family
    assert schedule.lr_at(99, 100) == pytest.approx(0.03)  # held: the average is the decay
    with pytest.raises(ValueError, match="optimizer must be Schedule-Free for the schedule_free family.*AdamW"):
        schedule.build(torch.optim.AdamW(torch.nn.Linear(2, 2).parameters()), 10)
    assert "schedule_free" not in lrsearch.SearchSpace().families  # opt-in
    assert "schedule_free" in lrsearch.SearchSpace(families=["cosine", "schedule_free"]).families

    task, (x, y) = _task()
    run = lrsearch.train(task, schedule, seed=0)
    # the returned model holds the average x (eval mode), the weights the last evaluation judged
    with torch.no_grad():
        final = torch.nn.functional.mse_loss(run.model(x[192:]), y[192:]).item()
    assert final == pytest.approx(run.values[-1], rel=1e-5)
    assert run.values[-1] < run.values[0] < float(torch.var(y[192:]))


def test_the_framework_callbacks_refuse_the_family_with_a_clear_error() -> None:
    """The Lightning / transformers callbacks build through ``build_for_trial`` on the framework's own
    optimizer, which is not converted: a searched ``schedule_free`` trial fails loudly there."""
    import optuna

    from lrsearch.integrations import build_for_trial

    trial = optuna.create_study().ask()
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="Schedule-Free.*lrsearch.optim.schedule_free"):
        build_for_trial(trial, Schedule("schedule_free", lr=1e-3), opt, 100)
    sched, steps = build_for_trial(trial, Schedule("schedule_free", lr=1e-3), schedule_free(opt), 100)
    assert steps == 100 and sched.get_last_lr() == [pytest.approx(1e-3)]


def test_a_search_that_names_the_family_trains_it_through_the_task_loop() -> None:
    import optuna

    space = lrsearch.SearchSpace(families=["cosine", "schedule_free"], lr=(1e-3, 1e-1))
    result = lrsearch.optimize(task=_task()[0], n_trials=6, rungs=None, space=space, seed=0,
                               pruner=optuna.pruners.NopPruner(), storage=optuna.storages.InMemoryStorage(),
                               artifacts=None, heartbeat_interval=None)
    done = result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    free = [t for t in done if t.params["family"] == "schedule_free"]
    assert len(done) == 6 and free and all(math.isfinite(t.value) for t in free)
    spec = lrsearch.Schedule.from_dict(free[0].user_attrs["schedule"])
    assert spec.family == "schedule_free"  # the stored spec retrains as the trial trained
    assert lrsearch.train(_task()[0], spec, seed=0).final == pytest.approx(free[0].value, rel=1e-6)


def test_the_population_trains_a_schedule_free_member_one_at_a_time_as_train_does() -> None:
    task = _task()[0]
    schedules = [Schedule("schedule_free", lr=0.02, warmup={"frac": 0.05}), Schedule("cosine", lr=0.02)]
    with pytest.warns(lrsearch.PopulationWarning, match="schedule_free.*Schedule-Free.*not batched"):
        results = lrsearch.train_population(task, schedules, seeds=0)
    assert results[0].values == pytest.approx(lrsearch.train(task, schedules[0], seed=0).values, rel=1e-6)


def test_no_averaging_tail_on_top_of_the_optimizers_own_average() -> None:
    with pytest.raises(ValueError, match="tail must be None for family 'schedule_free'"):
        Schedule("schedule_free", lr=1e-3, tail={"kind": "swa"})
    import optuna

    space = lrsearch.SearchSpace(families=["schedule_free", "cosine"], lr=(1e-3, 1e-1), tail=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: lrsearch.suggest_schedule(t, space).lr, n_trials=30)
    free = [t for t in study.trials if t.params["family"] == "schedule_free"]
    assert free and all("tail" not in t.params for t in free)
    assert any("tail" in t.params for t in study.trials if t.params["family"] == "cosine")
