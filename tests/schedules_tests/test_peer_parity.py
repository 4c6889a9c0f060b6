"""Parity with peer schedules torch has no twin for, step for step at 37, 1000 and 10000 steps.

- transformers' cosine with a ``num_cycles`` off the half-waves and its hard restarts (run here);
- timm's ``TanhLRScheduler`` (one cycle, no warmup), against its formula written out below: timm
  does not import without torchvision, which is not installed.

Warmup is compared separately: HF's and timm's linear warmup give ``t / W`` at step ``t`` (the first
step at exactly 0), lrsearch's ``(t + 1) / W``, i.e. lrsearch is the peer one step ahead during
warmup; after warmup both clocks restart at W and agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrsearch import Schedule


transformers = pytest.importorskip("transformers")

LR = 0.1
RTOL = 1e-9
LENGTHS = (37, 1000, 10000)


def _rel(ours: np.ndarray, peer: np.ndarray) -> float:
    return float(np.max(np.abs(ours - peer) / np.maximum(np.abs(peer), 1e-300)))


def _hf(factory, total: int, **kwargs) -> np.ndarray:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    sched = factory(opt, num_training_steps=total, **kwargs)
    return np.array([LR * sched.lr_lambdas[0](t) for t in range(total)])


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("cycles", [0.3, 0.75, 1.7, 0.5, 2.0])
def test_hf_cosine_num_cycles(total: int, cycles: float) -> None:
    peer = _hf(transformers.get_cosine_schedule_with_warmup, total, num_warmup_steps=0, num_cycles=cycles)
    ours = Schedule("cosine", LR, {"cycles": cycles}).curve(total)
    assert _rel(ours, peer) <= RTOL


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("cycles", [0.3, 0.75, 1.7])
def test_hf_cosine_with_min_lr_num_cycles(total: int, cycles: float) -> None:
    peer = _hf(transformers.get_cosine_with_min_lr_schedule_with_warmup, total, num_warmup_steps=0,
               num_cycles=cycles, min_lr_rate=0.05)
    ours = Schedule("cosine", LR, {"cycles": cycles, "min_ratio": 0.05}).curve(total)
    assert _rel(ours, peer) <= RTOL


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("k", [1, 2, 3, 5, 7])
def test_hf_hard_restarts(total: int, k: int) -> None:
    peer = _hf(transformers.get_cosine_with_hard_restarts_schedule_with_warmup, total,
               num_warmup_steps=0, num_cycles=k)
    ours = Schedule("cosine_restarts", LR, {"first_cycle_frac": 1 / k, "whole_steps": False}).curve(total)
    assert _rel(ours, peer) <= RTOL


@pytest.mark.parametrize("total", LENGTHS)
def test_hf_warmup_is_one_step_behind(total: int) -> None:
    w = max(1, round(0.1 * total))
    peer = _hf(transformers.get_cosine_schedule_with_warmup, total, num_warmup_steps=w, num_cycles=0.75)
    s = Schedule("cosine", LR, {"cycles": 0.75}, warmup={"frac": w / total})
    assert s.warmup_steps(total) == w
    ours = s.curve(total)
    assert _rel(ours[w:], peer[w:]) <= RTOL  # the decay, on the same clock
    np.testing.assert_allclose(ours[: w - 1], peer[1:w], rtol=RTOL)  # warmup: one step ahead
    assert peer[0] == 0.0 and ours[0] == LR / w


def _timm_tanh(total: int, lr_min: float, lb: float = -7.0, ub: float = 3.0) -> np.ndarray:
    # timm/scheduler/tanh_lr.py, TanhLRScheduler._get_lr (timm 1.0.x), t_initial=total,
    # cycle_limit=1, warmup_t=0, t_in_epochs=False (stepped with step_update(t)):
    #   tr = t_curr / t_i
    #   lr_min + 0.5 * (lr_max - lr_min) * (1 - math.tanh(lb * (1. - tr) + ub * tr))
    import math

    out = []
    for t in range(total):
        tr = t / total
        out.append(lr_min + 0.5 * (LR - lr_min) * (1 - math.tanh(lb * (1.0 - tr) + ub * tr)))
    return np.array(out)


@pytest.mark.parametrize("total", LENGTHS)
@pytest.mark.parametrize("lb,ub,min_ratio", [(-7.0, 3.0, 0.0), (-7.0, 3.0, 0.01), (-5.0, 4.5, 0.001)])
def test_timm_tanh(total: int, lb: float, ub: float, min_ratio: float) -> None:
    peer = _timm_tanh(total, LR * min_ratio, lb, ub)
    ours = Schedule("tanh", LR, {"lb": lb, "ub": ub, "min_ratio": min_ratio}).curve(total)
    assert _rel(ours, peer) <= RTOL


def test_tanh_bounds_and_cycles_bound() -> None:
    with pytest.raises(ValueError, match=r"params.lb must be in \(-inf, 0\) but got 3.0"):
        Schedule("tanh", params={"lb": 3.0})
    with pytest.raises(ValueError, match=r"params.ub must be in \[0, inf\) but got -1.0"):
        Schedule("tanh", params={"ub": -1.0})
    with pytest.raises(ValueError, match=r"params.cycles must be in \(0, 1e\+06\] but got 1e\+300"):
        Schedule("cosine", params={"cycles": 1e300})


@pytest.mark.parametrize("mult", [1.0, 2.0])
def test_fractional_restarts_with_a_vanishing_first_cycle_stay_finite(mult: float) -> None:
    s = Schedule("cosine_restarts", lr=1.0, params={"first_cycle_frac": 5e-324, "cycle_mult": mult,
                                                     "whole_steps": False})
    ratios = s.multipliers(np.arange(50), 50)
    assert np.all(np.isfinite(ratios)) and np.all((ratios >= 0) & (ratios <= 1))
