"""Parity with peer schedules that run on torch, step for step at 37, 1000 and 10000 steps:

- pytorch_warmup's ``LinearWarmup`` and ``ExponentialWarmup`` over torch's ``CosineAnnealingLR`` and
  ``StepLR``, in their documented loop (``optimizer.step(); with warmup.dampening(): sched.step()``):
  the ``warmup.overlay`` spec;
- torch's ``ChainedScheduler`` of chainable schedulers: the ``product`` family;
- torch schedulers stepped once per epoch (``CosineAnnealingLR(T_max=N)``, ``MultiStepLR``): ``stairs``;
- MONAI's ``WarmupCosineSchedule(end_lr=...)``: ``floor`` (run when MONAI is installed; its formula
  written out below otherwise). Its warmup is one step behind ours (``t / W`` against ``(t + 1) / W``),
  as HF's and timm's (test_peer_parity.py): pinned below.

The tolerance is 1e-9 relative everywhere (the largest error measured is printed by
``python tests/schedules_tests/test_peer_torch.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

from lrsearch import Schedule


try:
    import pytorch_warmup
except ImportError:  # the test extra installs it; the other peers here need only torch (and MONAI)
    pytorch_warmup = None

LR = 0.1
RTOL = 1e-9
LENGTHS = (37, 1000, 10000)


def _rel(ours: np.ndarray, peer: np.ndarray) -> float:
    return float(np.max(np.abs(ours - peer) / np.maximum(np.abs(peer), 1e-300)))


def _opt() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)


def _drive(opt: torch.optim.Optimizer, total: int, step: Callable[[], None]) -> np.ndarray:
    """The LR each optimizer step of a ``total``-step run used, ``step()`` after each."""
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        step()
    return np.array(out)


# --------------------------------------------------------------------------- pytorch_warmup
SCHEDS = {
    "cosine": (lambda opt, total: tls.CosineAnnealingLR(opt, T_max=total), lambda total: ("cosine", {})),
    "step": (lambda opt, total: tls.StepLR(opt, step_size=max(1, total // 4), gamma=0.5),
             lambda total: ("step", {"gamma": 0.5, "step_frac": max(1, total // 4) / total})),
}
WARMUPS = {"linear": "LinearWarmup", "exp_tau": "ExponentialWarmup"}


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("sched", list(SCHEDS))
@pytest.mark.parametrize("shape", list(WARMUPS))
def test_pytorch_warmup_overlay(total: int, sched: str, shape: str) -> None:
    if pytorch_warmup is None:
        pytest.skip("pytorch_warmup is not installed (pip install pytorch-warmup)")
    make_torch, make_ours = SCHEDS[sched]
    period = max(2, round(0.1 * total))
    opt = _opt()
    torch_sched = make_torch(opt, total)
    warmup = getattr(pytorch_warmup, WARMUPS[shape])(opt, warmup_period=period)

    def step() -> None:
        with warmup.dampening():
            torch_sched.step()

    peer = _drive(opt, total, step)
    family, params = make_ours(total)
    s = Schedule(family, LR, params, warmup={"frac": period / total, "shape": shape, "overlay": True})
    assert s.warmup_steps(total) == period
    assert _rel(s.curve(total), peer) <= RTOL


def test_overlay_is_not_a_delay() -> None:
    # the phase warmup delays the decay (it ends at the run's end), the overlay multiplies it
    phase = Schedule("linear", 1.0, warmup={"frac": 0.5}).curve(10)
    overlay = Schedule("linear", 1.0, warmup={"frac": 0.5, "overlay": True}).curve(10)
    np.testing.assert_allclose(phase, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2])
    np.testing.assert_allclose(overlay, [0.2, 0.36, 0.48, 0.56, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    # pytorch_warmup's ExponentialWarmup(tau): w(t) = 1 - exp(-(t + 1) / tau) over the whole run
    expo = Schedule("linear", 1.0, warmup={"frac": 0.3, "shape": "exp_tau", "overlay": True}).curve(10)
    t = np.arange(10)
    np.testing.assert_allclose(expo, (1 - t / 10) * (1 - np.exp(-(t + 1) / 3)), rtol=1e-15)


# --------------------------------------------------------------------------- ChainedScheduler
def _constant_then_one(frac: float, factor: float) -> dict:
    return {"family": "constant", "warmup": {"frac": frac, "shape": "constant", "start_ratio": factor}}


def _linear_then_one(frac: float, start: float) -> dict:
    return {"family": "piecewise", "params": {"phases": [
        {"frac": frac, "anneal": "linear", "start": start, "end": 1.0},
        {"frac": 1.0 - frac, "anneal": "constant", "start": 1.0, "end": 1.0}]}}


def _chains(total: int) -> dict[str, tuple[Callable, list[dict]]]:
    q, w = total // 4, max(1, total // 10)
    m = [total // 3, 2 * total // 3]
    return {
        "constant*exponential": (
            lambda o: [tls.ConstantLR(o, factor=0.5, total_iters=q), tls.ExponentialLR(o, gamma=0.999)],
            [_constant_then_one(q / total, 0.5), {"family": "exponential", "params": {"min_ratio": 0.999**total}}]),
        "linear*step*multistep": (
            lambda o: [tls.LinearLR(o, start_factor=0.2, total_iters=w), tls.StepLR(o, q, gamma=0.7),
                       tls.MultiStepLR(o, milestones=m, gamma=0.5)],
            [_linear_then_one(w / total, 0.2), {"family": "step", "params": {"gamma": 0.7, "step_frac": q / total}},
             {"family": "multistep", "params": {"gamma": 0.5, "milestones": [x / total for x in m]}}]),
        "warmup*cosine": (
            lambda o: [tls.LinearLR(o, start_factor=0.1, total_iters=w), tls.CosineAnnealingLR(o, T_max=total)],
            [_linear_then_one(w / total, 0.1), {"family": "cosine"}]),
    }


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("case", ["constant*exponential", "linear*step*multistep", "warmup*cosine"])
def test_chained_scheduler_is_a_product(total: int, case: str) -> None:
    make, factors = _chains(total)[case]
    opt = _opt()
    chained = tls.ChainedScheduler(make(opt), optimizer=opt)
    peer = _drive(opt, total, chained.step)
    ours = Schedule("product", LR, {"factors": factors}).curve(total)
    assert _rel(ours, peer) <= RTOL


def test_product_errors_name_the_nested_path() -> None:
    bad = {"factors": [{"family": "cosine"}, {"family": "step", "params": {"gamma": 2.0}}]}
    with pytest.raises(ValueError, match=r"^params.factors\[1\].params.gamma must be in \(0, 1\] but got 2.0"):
        Schedule("product", params=bad)
    with pytest.raises(ValueError, match=r"^params.factors\[0\] has an unknown key 'lr'"):
        Schedule("product", params={"factors": [{"family": "cosine", "lr": 1.0}]})
    with pytest.raises(ValueError, match=r"^params.factors\[0\].family must not be 'plateau'"):
        Schedule("product", params={"factors": [{"family": "plateau"}]})
    with pytest.raises(ValueError, match=r"^params.factors\[0\] cycles momentum"):
        Schedule("product", params={"factors": [{"family": "onecycle"}]})
    with pytest.raises(ValueError, match=r"^params.factors must be a non-empty list"):
        Schedule("product", params={"factors": []})
    with pytest.raises(ValueError, match=r"^params.factors\[0\].warmup.frac must be in \[0, 1\)"):
        Schedule("product", params={"factors": [{"family": "cosine", "warmup": {"frac": 2}}]})


# --------------------------------------------------------------------------- per-epoch stairs
@pytest.mark.parametrize("epochs,per_epoch", [(37, 1), (10, 100), (100, 100)])
def test_stairs_are_a_scheduler_stepped_per_epoch(epochs: int, per_epoch: int) -> None:
    total = epochs * per_epoch
    milestones = [epochs // 3, 2 * epochs // 3]
    cases = [
        (lambda o: tls.CosineAnnealingLR(o, T_max=epochs), Schedule("cosine", LR, stairs=epochs)),
        (lambda o: tls.MultiStepLR(o, milestones=milestones, gamma=0.1),
         Schedule("multistep", LR, {"milestones": [m / epochs for m in milestones]}, stairs=epochs)),
    ]
    for make, ours in cases:
        opt = _opt()
        sched = make(opt)
        peer = []
        for _ in range(epochs):
            peer += [opt.param_groups[0]["lr"]] * per_epoch
            for _ in range(per_epoch):
                opt.step()
            sched.step()
        assert _rel(ours.curve(total), np.array(peer)) <= RTOL
        lrs = ours.curve(total).reshape(epochs, per_epoch)
        assert np.all(lrs == lrs[:, :1])  # constant within each epoch


def test_stairs_of_an_uneven_run_and_at_huge_steps() -> None:
    s = Schedule("linear", 1.0, stairs=4)
    np.testing.assert_array_equal(s.curve(10), [1, 1, 1, 0.75, 0.75, 0.5, 0.5, 0.5, 0.25, 0.25])
    big = 2**53
    assert s.lr_at(big - 1, big) == 0.25 and s.lr_at(big // 4 - 1, big) == 1.0
    assert s.lr_at(big // 4, big) == 0.75


# --------------------------------------------------------------------------- MONAI end_lr
def _monai_formula(total: int, warmup: int, end_lr: float, cycles: float, mult: float) -> np.ndarray:
    # monai/optimizers/lr_scheduler.py, WarmupCosineSchedule (MONAI 1.6): lr_lambda, then get_lr's
    # max(end_lr, lr) once the step is past warmup
    out = []
    for step in range(total):
        if step < warmup:
            out.append(LR * (mult + (1 - mult) * step / max(1.0, warmup)))
            continue
        progress = (step - warmup) / max(1, total - warmup)
        out.append(max(end_lr, LR * max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))))
    return np.array(out)


def _monai(total: int, warmup: int, end_lr: float, cycles: float, mult: float) -> np.ndarray:
    try:
        from monai.optimizers import WarmupCosineSchedule
    except ImportError:
        return _monai_formula(total, warmup, end_lr, cycles, mult)
    opt = _opt()
    sched = WarmupCosineSchedule(opt, warmup, total, end_lr=end_lr, cycles=cycles, warmup_multiplier=mult)
    return _drive(opt, total, sched.step)


MONAI_CASES = [(0.0, 0.5, 0.0), (0.01, 0.5, 0.0), (0.003, 0.7, 0.1), (0.02, 1.5, 0.0)]


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("end_lr,cycles,mult", MONAI_CASES)
def test_monai_end_lr_is_a_floor(total: int, end_lr: float, cycles: float, mult: float) -> None:
    w = max(1, round(0.1 * total))
    peer = _monai(total, w, end_lr, cycles, mult)
    np.testing.assert_allclose(peer, _monai_formula(total, w, end_lr, cycles, mult), rtol=1e-12)
    s = Schedule("cosine", LR, {"cycles": cycles}, warmup={"frac": w / total, "start_ratio": mult},
                 floor=end_lr / LR)
    ours = s.curve(total)
    assert _rel(ours[w:], peer[w:]) <= RTOL  # after warmup: the same clock, the same floor
    np.testing.assert_allclose(ours[: w - 1], peer[1:w], rtol=RTOL)  # warmup: one step ahead
    assert peer[0] == LR * mult and ours[0] == LR * (mult + (1 - mult) / w)
    if end_lr > 0:
        assert ours[w:].min() >= end_lr * (1 - 1e-15) and np.any(ours[w:] == end_lr)


def test_floor_holds_off_during_warmup() -> None:
    s = Schedule("linear", 1.0, warmup={"frac": 0.5, "start_ratio": 0.0}, floor=0.5)
    np.testing.assert_allclose(s.curve(10), [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.8, 0.6, 0.5, 0.5])
