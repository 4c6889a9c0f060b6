"""Parity with torch.optim.lr_scheduler configured equivalently, at every step, to 1e-6 relative.

Each case builds a torch scheduler and the equivalent ``Schedule`` and compares the LR (and the
momentum or Adam beta1 where torch cycles it) that the optimizer sees at every step of the run.
The closing note and README quote ``max_rel_error`` per scheduler from ``parity_table()``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

from lrsearch import Schedule


LR = 0.1
RTOL = 1e-6


def _opt(kind: str = "sgd") -> torch.optim.Optimizer:
    p = torch.nn.Parameter(torch.zeros(1))
    if kind == "adam":
        return torch.optim.Adam([p], lr=LR)
    return torch.optim.SGD([p], lr=LR, momentum=0.9)


def _run_torch(make: Callable[[torch.optim.Optimizer], object], total: int, kind: str = "sgd"):
    opt = _opt(kind)
    sched = make(opt)
    lrs, moms = [], []
    for t in range(total):
        g = opt.param_groups[0]
        lrs.append(g["lr"])
        moms.append(g["betas"][0] if kind == "adam" else g["momentum"])
        if t < total - 1:
            opt.step()
            sched.step()  # type: ignore[attr-defined]
    return np.array(lrs), np.array(moms)


def _run_ours(schedule: Schedule, total: int, kind: str = "sgd"):
    opt = _opt(kind)
    sched = schedule.build(opt, total)
    lrs, moms = [], []
    for _ in range(total):
        g = opt.param_groups[0]
        lrs.append(g["lr"])
        moms.append(g["betas"][0] if kind == "adam" else g["momentum"])
        opt.step()
        sched.step()
    return np.array(lrs), np.array(moms)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


T = 997  # odd, so that fractions of the run are not round numbers


def _cases() -> list[tuple[str, Callable, Schedule, str, bool]]:
    """(name, torch factory, equivalent schedule, optimizer kind, compare momentum)."""
    cases = [
        ("StepLR", lambda o: tls.StepLR(o, step_size=150, gamma=0.3),
         Schedule("step", LR, {"gamma": 0.3, "step_frac": 150 / T}), "sgd", False),
        ("MultiStepLR", lambda o: tls.MultiStepLR(o, milestones=[300, 700, 900], gamma=0.5),
         Schedule("multistep", LR, {"gamma": 0.5, "milestones": [300 / T, 700 / T, 900 / T]}), "sgd", False),
        ("ExponentialLR", lambda o: tls.ExponentialLR(o, gamma=0.01 ** (1 / T)),
         Schedule("exponential", LR, {"min_ratio": 0.01}), "sgd", False),
        ("CosineAnnealingLR", lambda o: tls.CosineAnnealingLR(o, T_max=T, eta_min=LR * 0.05),
         Schedule("cosine", LR, {"min_ratio": 0.05}), "sgd", False),
        ("CosineAnnealingLR eta_min=0", lambda o: tls.CosineAnnealingLR(o, T_max=T),
         Schedule("cosine", LR), "sgd", False),
        ("CosineAnnealingWarmRestarts T_mult=1",
         lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=200, T_mult=1, eta_min=LR * 0.01),
         Schedule("cosine_restarts", LR, {"first_cycle_frac": 200 / T, "min_ratio": 0.01}), "sgd", False),
        ("CosineAnnealingWarmRestarts T_mult=2",
         lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=50, T_mult=2),
         Schedule("cosine_restarts", LR, {"first_cycle_frac": 50 / T, "cycle_mult": 2.0}), "sgd", False),
        ("PolynomialLR power=2", lambda o: tls.PolynomialLR(o, total_iters=T, power=2.0),
         Schedule("poly", LR, {"power": 2.0}), "sgd", False),
        ("PolynomialLR power=0.5", lambda o: tls.PolynomialLR(o, total_iters=T, power=0.5),
         Schedule("poly", LR, {"power": 0.5}), "sgd", False),
    ]
    for anneal in ("cos", "linear"):
        for three in (False, True):
            for kind in ("sgd", "adam"):
                cases.append((
                    f"OneCycleLR {anneal}{' three_phase' if three else ''} ({kind})",
                    lambda o, a=anneal, th=three: tls.OneCycleLR(
                        o, max_lr=LR, total_steps=T, pct_start=0.25, anneal_strategy=a,
                        three_phase=th, div_factor=20.0, final_div_factor=1e3),
                    Schedule("onecycle", LR, {"pct_start": 0.25, "anneal": anneal, "three_phase": three,
                                              "div_factor": 20.0, "final_div_factor": 1e3}),
                    kind, True,
                ))
    up, down = 60, 90
    for mode in ("triangular", "triangular2", "exp_range"):
        for kind in ("sgd", "adam"):
            cases.append((
                f"CyclicLR {mode} ({kind})",
                lambda o, m=mode: tls.CyclicLR(o, base_lr=LR / 8, max_lr=LR, step_size_up=up,
                                               step_size_down=down, mode=m,
                                               gamma=0.5 ** (1 / (up + down))),
                Schedule("cyclic", LR, {"mode": mode, "base_ratio": 1 / 8, "cycle_frac": (up + down) / T,
                                        "up_frac": up / (up + down), "gamma": 0.5}),
                kind, True,
            ))
    return cases


CASES = _cases()


@pytest.mark.parametrize("name,make,schedule,kind,momentum", CASES, ids=[c[0] for c in CASES])
def test_parity_with_torch(name, make, schedule, kind, momentum) -> None:
    torch_lrs, torch_moms = _run_torch(make, T, kind)
    our_lrs, our_moms = _run_ours(schedule, T, kind)
    assert _rel(our_lrs, torch_lrs) < RTOL
    np.testing.assert_allclose(schedule.curve(T), our_lrs, rtol=1e-12, atol=0)
    if momentum:
        assert _rel(our_moms, torch_moms) < RTOL


def _plateau_metrics() -> list[float]:
    rng = np.random.default_rng(3)
    # improves, stalls (with noise), improves a little, stalls again, then NaN and inf
    values = list(np.linspace(1.0, 0.5, 8)) + list(0.5 + 0.01 * rng.random(12))
    values += list(np.linspace(0.49, 0.45, 4)) + [0.46] * 10 + [float("nan"), float("inf")] * 3
    return values


PLATEAU_SETTINGS = [
    {"mode": "min", "factor": 0.5, "patience": 2, "threshold": 1e-4, "threshold_mode": "rel", "cooldown": 0},
    {"mode": "min", "factor": 0.1, "patience": 0, "threshold": 0.01, "threshold_mode": "abs", "cooldown": 2},
    {"mode": "max", "factor": 0.3, "patience": 3, "threshold": 1e-3, "threshold_mode": "rel", "cooldown": 1},
]


def _run_plateau(settings: dict) -> tuple[np.ndarray, np.ndarray]:
    """LRs after each metric, (ours, torch's), for ReduceLROnPlateau configured as ``settings``."""
    metrics = _plateau_metrics()
    if settings["mode"] == "max":  # an accuracy-like metric: positive (negative ones differ on purpose)
        metrics = [2.0 - m for m in metrics]
    min_ratio = 0.002
    opt_t, opt_o = _opt(), _opt()
    torch_sched = tls.ReduceLROnPlateau(opt_t, min_lr=LR * min_ratio, **settings)
    ours = Schedule("plateau", LR, {**settings, "min_ratio": min_ratio}).build(opt_o, 100)
    torch_lrs, our_lrs = [], []
    for m in metrics:
        torch_sched.step(m)
        ours.step(m)
        torch_lrs.append(opt_t.param_groups[0]["lr"])
        our_lrs.append(opt_o.param_groups[0]["lr"])
    return np.array(our_lrs), np.array(torch_lrs)


@pytest.mark.parametrize("settings", PLATEAU_SETTINGS)
def test_reduce_lr_on_plateau_parity(settings: dict) -> None:
    ours, theirs = _run_plateau(settings)
    assert _rel(ours, theirs) < RTOL
    assert len(set(theirs.tolist())) > 2  # the sequence really reduced the LR more than once


def parity_table() -> list[tuple[str, float]]:
    """(torch scheduler, max relative LR error) for every case: quoted in README and notes."""
    rows = []
    for name, make, schedule, kind, _ in CASES:
        rows.append((name, _rel(_run_ours(schedule, T, kind)[0], _run_torch(make, T, kind)[0])))
    for settings in PLATEAU_SETTINGS:
        name = "ReduceLROnPlateau " + ", ".join(f"{k}={v}" for k, v in settings.items() if k != "factor")
        rows.append((name, _rel(*_run_plateau(settings))))
    return rows


if __name__ == "__main__":  # python -m tests.training_tests.test_torch_parity prints the table
    for name, err in parity_table():
        print(f"| {name} | {err:.1e} |")
