"""ScheduleLR: param-group ratios, exact resume, holding past the end, plateau, momentum, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import LRScheduler

from lrsearch import Schedule
from lrsearch import ScheduleLR


def _model_and_opt(kind: str = "sgd", lr: float = 0.1):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    groups = [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": lr / 10}]
    if kind == "adam":
        return model, torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.98))
    return model, torch.optim.SGD(groups, lr=lr, momentum=0.9)


def _train_step(model, opt) -> None:
    x = torch.randn(16, 4)
    loss = model(x).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


def test_is_a_torch_lr_scheduler_and_sets_step_zero_at_once() -> None:
    _, opt = _model_and_opt()
    s = Schedule("cosine", lr=0.5, warmup={"frac": 0.1})
    sched = s.build(opt, 100)
    assert isinstance(sched, LRScheduler)
    assert opt.param_groups[0]["lr"] == s.lr_at(0, 100)
    assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups] == sched.get_lr()


def test_param_groups_keep_their_ratio_to_the_peak() -> None:
    model, opt = _model_and_opt()
    s = Schedule("onecycle", lr=0.02)
    sched = s.build(opt, 50)
    for t in range(50):
        lr0, lr1 = (g["lr"] for g in opt.param_groups)
        assert lr0 == pytest.approx(s.lr_at(t, 50), rel=1e-12)
        assert lr0 / lr1 == pytest.approx(10.0, rel=1e-12)
        _train_step(model, opt)
        sched.step()


def test_building_twice_keeps_the_ratios() -> None:
    _, opt = _model_and_opt()
    Schedule("cosine", lr=1.0, warmup={"frac": 0.5}).build(opt, 10)  # group lrs are now tiny
    sched = Schedule("constant", lr=0.3).build(opt, 10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.3, 0.03])
    assert sched.group_scales == pytest.approx([1.0, 0.1])


@pytest.mark.parametrize("family", ["cosine", "onecycle", "cyclic", "wsd", "cosine_restarts", "multistep"])
@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_resume_reproduces_the_uninterrupted_sequence(family: str, kind: str) -> None:
    total, stop = 1000, 300
    s = Schedule(family, lr=0.05, warmup=None if family in ("onecycle", "cyclic") else {"frac": 0.05})

    def record(opt):
        return [g["lr"] for g in opt.param_groups], [
            g["betas"][0] if kind == "adam" else g["momentum"] for g in opt.param_groups
        ]

    def run(model, opt, sched, steps: int, out: list) -> None:
        for _ in range(steps):
            out.append(record(opt))
            _train_step(model, opt)
            sched.step()

    straight: list = []
    model, opt = _model_and_opt(kind)
    run(model, opt, s.build(opt, total), total, straight)

    resumed: list = []
    model, opt = _model_and_opt(kind)
    sched = s.build(opt, total)
    run(model, opt, sched, stop, resumed)
    saved = json.loads(json.dumps(sched.state_dict()))  # plain data survives JSON
    opt_state = opt.state_dict()

    model2, opt2 = _model_and_opt(kind)
    opt2.load_state_dict(opt_state)
    sched2 = Schedule("constant", lr=9.0).build(opt2, 5)  # whatever it was built with
    sched2.load_state_dict(saved)
    assert record(opt2)[0] == straight[stop][0]  # loading sets the optimizer's LRs at once
    run(model2, opt2, sched2, total - stop, resumed)
    assert resumed == straight


def test_steps_past_the_end_hold_the_last_value() -> None:
    _, opt = _model_and_opt()
    s = Schedule("onecycle", lr=0.1)
    sched = s.build(opt, 20)
    for _ in range(40):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(s.lr_at(19, 20))


def test_plateau_step_metric_reduces_and_resumes() -> None:
    _, opt = _model_and_opt()
    s = Schedule("plateau", lr=0.1, params={"patience": 1, "factor": 0.5, "min_ratio": 0.2})
    sched = s.build(opt, 100)
    assert sched.accepts_metric
    lrs = []
    for m in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02])  # floor at min_ratio
    state = json.loads(json.dumps(sched.state_dict()))
    _, opt2 = _model_and_opt()
    sched2 = s.build(opt2, 100)
    sched2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.02)
    assert sched2.monitor.state_dict() == sched.monitor.state_dict()


def test_plateau_reduction_multiplies_the_warmup() -> None:
    _, opt = _model_and_opt()
    sched = Schedule("plateau", lr=0.1, params={"patience": 0}, warmup={"frac": 0.5}).build(opt, 10)
    sched.step(1.0)
    sched.step(2.0)  # no improvement with patience 0: reduce
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.1 * 0.4)


def test_adam_beta1_is_cycled_and_beta2_kept() -> None:
    _, opt = _model_and_opt("adam")
    s = Schedule("onecycle", lr=0.01)
    sched = s.build(opt, 30)
    for t in range(30):
        assert opt.param_groups[0]["betas"] == (pytest.approx(s.momentum_at(t, 30)), 0.98)
        opt.step()
        sched.step()


def test_tensor_lr_is_updated_in_place() -> None:
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.Adam([p], lr=torch.tensor(0.01))
    lr_tensor = opt.param_groups[0]["lr"]
    sched = Schedule("linear", lr=0.01).build(opt, 10)
    sched.step()
    assert opt.param_groups[0]["lr"] is lr_tensor
    assert float(lr_tensor) == pytest.approx(0.009)


def test_accepts_a_spec_dict() -> None:
    _, opt = _model_and_opt()
    sched = ScheduleLR(opt, {"family": "step", "lr": 0.2}, 10)
    assert sched.schedule == Schedule("step", lr=0.2)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda opt: Schedule("cosine").build(opt, 0), "total_steps must be >= 1 but got 0"),
        (lambda opt: ScheduleLR("sgd", Schedule("cosine"), 10), "optimizer must be a torch.optim.Optimizer but got str"),
        (lambda opt: Schedule("cosine").build(opt, 10, group_scales=[1.0]), "group_scales must have one value per param group (2)"),
        (lambda opt: Schedule("cosine").build(opt, 10, group_scales=[1.0, -1.0]), "group_scales must be >= 0"),
        (lambda opt: Schedule("cosine").build(opt, 10).step(0.5), "metric is only taken by the 'plateau' family but this schedule is 'cosine'"),
        (lambda opt: Schedule("cosine").build(opt, 10).load_state_dict({"step": 3}), "state_dict must be a ScheduleLR.state_dict()"),
        (lambda opt: ScheduleLR(opt, {"family": "nope"}, 10), "family must be one of"),
    ],
)
def test_bad_input(make, message: str) -> None:
    _, opt = _model_and_opt()
    with pytest.raises(ValueError) as info:
        make(opt)
    assert message in str(info.value)


def test_momentum_cycling_needs_momentum_or_betas() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adagrad([p], lr=0.1)
    with pytest.raises(ValueError, match="optimizer must have momentum or betas for family 'onecycle'"):
        Schedule("onecycle").build(opt, 10)
    Schedule("onecycle", params={"cycle_momentum": False}).build(opt, 10)  # fine without cycling


def test_no_warnings_when_stepping_like_torch_expects() -> None:
    # pytest runs with filterwarnings=error, so any torch call-order warning would fail here
    model, opt = _model_and_opt()
    sched = Schedule("cosine").build(opt, 5)
    for _ in range(5):
        _train_step(model, opt)
        sched.step()
    assert np.isfinite(opt.param_groups[0]["lr"])


def _lrs_after(sched: ScheduleLR, opt, steps: int = 3) -> list[list[float]]:
    out = []
    for _ in range(steps):
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    return out


def _good_state() -> dict:
    _, opt = _model_and_opt()
    sched = Schedule("plateau", lr=0.2, params={"patience": 1}).build(opt, 50)
    for m in (1.0, 2.0, 2.0):
        sched.step(m)
    return sched.state_dict()


BAD_STATES = [
    ("plateau_scale", 5, "plateau_scale must be in (0, 1] but got 5.0"),
    ("group_scales", None, "group_scales must have one value per param group (2) but got None"),
    ("group_scales", [1.0, float("inf")], "group_scales[1] must be finite"),
    ("plateau", 5, "plateau must be None or a PlateauMonitor.state_dict() but got 5"),
    ("plateau", {"patience": -1}, "plateau: patience must be >= 0 but got -1"),
    ("total_steps", 10**400, "total_steps must be <= 2**53"),
    ("total_steps", 0, "total_steps must be >= 1 but got 0"),
    ("step", "3", "step must be an integer but got '3'"),
    ("schedule", {"family": "cosine", "lr": 10**400}, "lr must be finite"),
    ("schedule", {"family": "constant", "lr": 1e308}, "param group 0 would run at lr * group_scales[0]"),
]


@pytest.mark.parametrize("key,value,message", BAD_STATES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD_STATES)])
def test_a_refused_state_names_its_key_and_changes_nothing(key: str, value, message: str) -> None:
    _, opt = _model_and_opt()
    sched = Schedule("step", lr=0.1, params={"step_frac": 0.1}).build(opt, 30)
    _, twin_opt = _model_and_opt()
    twin = Schedule("step", lr=0.1, params={"step_frac": 0.1}).build(twin_opt, 30)
    for s in (sched, twin):
        s.step()
    before = sched.state_dict()
    state = {**_good_state(), key: value}
    if key == "schedule" and value["lr"] == 1e308:
        state["group_scales"] = [2.0, 0.2]
    with pytest.raises(ValueError) as info:
        sched.load_state_dict(state)
    assert message in str(info.value)
    assert sched.state_dict() == before
    assert _lrs_after(sched, opt, 12) == _lrs_after(twin, twin_opt, 12)


def test_a_state_of_another_family_restores_the_saved_schedule() -> None:
    # The state is self-contained (spec, run length, step): loading it resumes the saved run, whatever
    # the scheduler was built with, as torch's load_state_dict replaces the scheduler's state.
    _, opt = _model_and_opt()
    cosine = Schedule("cosine", lr=0.3)
    saved = cosine.build(opt, 40)
    for _ in range(7):
        saved.step()
    _, opt2 = _model_and_opt()
    sched = Schedule("step", lr=0.1).build(opt2, 10)
    sched.load_state_dict(saved.state_dict())
    assert sched.schedule == cosine and sched.total_steps == 40
    assert opt2.param_groups[0]["lr"] == pytest.approx(cosine.lr_at(7, 40), rel=1e-12)
    sched.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(cosine.lr_at(8, 40), rel=1e-12)


def test_huge_run_lengths_are_a_value_error() -> None:
    _, opt = _model_and_opt()
    with pytest.raises(ValueError, match=r"total_steps must be <= 2\*\*53"):
        Schedule("cosine").build(opt, total_steps=10**400)
    with pytest.raises(ValueError, match=r"total_steps must be <= 2\*\*53"):
        Schedule("cosine").build(opt, total_steps=2**53 + 1)


def test_a_group_lr_that_overflows_is_refused() -> None:
    _, opt = _model_and_opt()  # groups at lr and lr / 10
    opt.param_groups[1]["initial_lr"] = 1.0  # ratio 10 to the default lr 0.1
    with pytest.raises(ValueError) as info:
        Schedule("constant", lr=1e308).build(opt, 10)
    assert "param group 1 would run at lr * group_scales[1] = 1e+308 * 10.0" in str(info.value)
    sched = Schedule("constant", lr=1e307).build(opt, 10)
    assert [g["lr"] for g in opt.param_groups] == [1e307, 1e308]
    assert sched.get_last_lr() == [1e307, 1e308]


# ------------------------------------------------------------------ a schedule per param group
GROUPED = Schedule("cosine", lr=0.1, warmup={"frac": 0.1},
                   groups={1: {"family": "onecycle", "params": {"cycle_momentum": True}}})


def test_each_group_runs_its_own_schedule_at_its_ratio() -> None:
    total = 200
    _, opt = _model_and_opt()  # groups at lr and lr / 10
    sched = GROUPED.build(opt, total)
    seen = []
    for _ in range(total):
        seen.append([(g["lr"], g["momentum"]) for g in opt.param_groups])
        opt.step()
        sched.step()
    lrs = np.array([[lr for lr, _ in row] for row in seen])
    np.testing.assert_allclose(lrs[:, 0], GROUPED.curve(total), rtol=1e-15)
    np.testing.assert_allclose(lrs[:, 1], GROUPED.for_group(1).curve(total) / 10, rtol=1e-15)
    assert GROUPED.for_group(1).family == "onecycle" and GROUPED.for_group(0) == GROUPED.replace(groups=None)
    momenta = np.array([[m for _, m in row] for row in seen])
    np.testing.assert_allclose(momenta[:, 1], GROUPED.for_group(1).momentum_curve(total))
    assert np.all(momenta[:, 0] == 0.9)  # the cosine group keeps the optimizer's momentum


def test_groups_match_per_group_torch_schedulers() -> None:
    # torch 2.13 has no per-group scheduler class (no ParamwiseScheduler): LambdaLR with one lambda
    # per group is its per-group form; here each group against its own torch scheduler, and LambdaLR.
    from torch.optim import lr_scheduler as tls

    total, q = 400, 100
    spec = Schedule("cosine", lr=0.1, groups=[None, {"family": "step", "params": {"gamma": 0.5, "step_frac": q / total}}])
    _, opt = _model_and_opt()
    ours = spec.build(opt, total)
    peers = [torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr) for lr in (0.1, 0.01)]
    torch_scheds = [tls.CosineAnnealingLR(peers[0], T_max=total), tls.StepLR(peers[1], q, gamma=0.5)]
    _, opt2 = _model_and_opt()
    lam = tls.LambdaLR(opt2, [lambda t: 0.5 * (1 + np.cos(np.pi * t / total)), lambda t: 0.5 ** (t // q)])
    for _ in range(total):
        mine = [g["lr"] for g in opt.param_groups]
        theirs = [p.param_groups[0]["lr"] for p in peers]
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
        np.testing.assert_allclose(mine, [g["lr"] for g in opt2.param_groups], rtol=1e-12)
        for o in (opt, opt2, *peers):
            o.step()
        for s in (ours, lam, *torch_scheds):
            s.step()


def test_grouped_state_dict_resumes_and_names_a_missing_group() -> None:
    total, stop = 300, 120
    _, opt = _model_and_opt()
    straight = GROUPED.build(opt, total)
    expected = []
    for _ in range(total):
        expected.append([g["lr"] for g in opt.param_groups])
        opt.step()
        straight.step()
    _, opt = _model_and_opt()
    sched = GROUPED.build(opt, total)
    for _ in range(stop):
        opt.step()
        sched.step()
    saved = json.loads(json.dumps(sched.state_dict()))
    assert saved["schedule"]["groups"]["1"]["family"] == "onecycle"
    _, opt2 = _model_and_opt()
    sched2 = Schedule("constant").build(opt2, 5)
    sched2.load_state_dict(saved)
    resumed = []
    for _ in range(total - stop):
        resumed.append([g["lr"] for g in opt2.param_groups])
        opt2.step()
        sched2.step()
    assert resumed == expected[stop:]
    one_group = torch.optim.SGD(torch.nn.Linear(2, 1).parameters(), lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match="schedule.groups names param group 1 but the optimizer has 1 param group"):
        GROUPED.build(one_group, 10)
    before = [g["lr"] for g in opt2.param_groups]
    with pytest.raises(ValueError, match="names param group 5"):
        sched2.load_state_dict({**saved, "schedule": {**saved["schedule"], "groups": {"5": {"family": "constant"}}}})
    assert [g["lr"] for g in opt2.param_groups] == before


def test_noise_above_the_peak_is_checked_for_overflow() -> None:
    _, opt = _model_and_opt()
    with pytest.raises(ValueError, match="overflows a float"):
        Schedule("constant", lr=1e308, noise={"range": [0.0], "pct": 0.9}).build(opt, 10)
    Schedule("constant", lr=1e308).build(opt, 10)  # without noise the peak is the largest LR
