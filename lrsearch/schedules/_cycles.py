"""Cyclic families: ``cosine_restarts`` (SGDR) and ``cyclic`` (CLR).

``cosine_restarts`` matches torch's ``CosineAnnealingWarmRestarts(T_0, T_mult)`` for integer
``cycle_mult`` and adds what torch lacks (pytorch#62640): a float ``cycle_mult``, a peak decay
``cycle_decay`` per cycle and a k-decay ``k`` within each cycle, as timm's ``CosineLRScheduler``
has (``cycle_mul``, ``cycle_decay``, ``k_decay``; ``min_ratio`` is not decayed, as timm's ``lr_min``).

With ``whole_steps=False`` and ``first_cycle_frac=1/k`` it is transformers'
``get_cosine_with_hard_restarts_schedule_with_warmup(num_cycles=k)``, whose cycles are fractions of a step.

``cyclic`` matches torch's ``CyclicLR``, with one deliberate change: ``gamma`` (``exp_range`` only)
is the amplitude factor *per cycle*, so the spec does not depend on the run length; torch's
per-iteration gamma is ``gamma ** (1 / cycle_steps)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrsearch.schedules._anneal import anneal_cos
from lrsearch.schedules._anneal import cycle_position
from lrsearch.schedules._params import K_DECAY
from lrsearch.schedules._params import MIN_RATIO
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import steps_of
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import register


P = Mapping[str, Any]


def _cosine_restarts(t: np.ndarray, total: int, p: P) -> np.ndarray:
    if p["whole_steps"]:  # torch's integer T_0
        first = float(max(1, steps_of(p["first_cycle_frac"], total)))
    else:  # HF's hard restarts: num_cycles equal cycles of total / num_cycles steps, a fraction
        first = max(p["first_cycle_frac"] * total, 1e-6)  # a millionth of a step: no 0/0 at 5e-324
    index, pos = cycle_position(t, first, p["cycle_mult"])
    peak = p["cycle_decay"] ** index
    # k-decay (timm k_decay): cos(pi t_cur**k / T_i**k) within each cycle.
    if p["k"] != 1.0:
        pos = pos ** p["k"]
    return anneal_cos(1.0, 0.0, pos) * (peak - p["min_ratio"]) + p["min_ratio"]


def _triangle(t: np.ndarray, total: int, p: P) -> tuple[np.ndarray, np.ndarray]:
    """Torch CyclicLR's position in the triangle and its amplitude scale, per step."""
    size = max(p["cycle_frac"] * total, 1.0)  # a cycle is at least one step long
    ratio = p["up_frac"]  # torch's step_size_up / (step_size_up + step_size_down)
    cycle = np.floor(1.0 + t / size)
    x = 1.0 + t / size - cycle
    height = np.where(x <= ratio, x / ratio, (x - 1.0) / (ratio - 1.0))
    mode = p["mode"]
    if mode == "triangular":
        scale = np.ones_like(t)
    elif mode == "triangular2":
        scale = 1.0 / 2.0 ** (cycle - 1.0)
    else:  # exp_range: per-cycle gamma, i.e. torch's gamma ** t with gamma = p.gamma ** (1/size)
        scale = p["gamma"] ** (t / size)
    return height, scale


def _cyclic(t: np.ndarray, total: int, p: P) -> np.ndarray:
    height, scale = _triangle(t, total, p)
    base = p["base_ratio"]
    return base + (1.0 - base) * height * scale


def _cyclic_momentum(t: np.ndarray, total: int, p: P) -> np.ndarray | None:
    if not p["cycle_momentum"]:
        return None
    height, scale = _triangle(t, total, p)
    return p["max_momentum"] - (p["max_momentum"] - p["base_momentum"]) * height * scale


def check_momenta(p: P) -> None:
    if p["cycle_momentum"] and p["base_momentum"] > p["max_momentum"]:
        raise ValueError(
            f"params.base_momentum must be <= params.max_momentum but got "
            f"{p['base_momentum']!r} > {p['max_momentum']!r}."
        )


def momentum_params(base: float, high: float) -> dict[str, Any]:
    """The momentum (or Adam beta1) cycling parameters torch's OneCycleLR and CyclicLR take."""
    return {
        "cycle_momentum": Choice(True, (True, False), doc="cycle momentum or Adam beta1"),
        "base_momentum": Float(base, 0.0, 1.0, high_open=True),
        "max_momentum": Float(high, 0.0, 1.0, high_open=True),
    }


register(
    Family(
        "cosine_restarts",
        "cosine with warm restarts (SGDR), cycle_mult and cycle_decay",
        {
            "first_cycle_frac": Float(0.25, 0.0, 1.0, low_open=True,
                                      search=FloatRange(0.05, 0.5, log=True),
                                      doc="length of the first cycle as a fraction of the run"),
            "cycle_mult": Float(1.0, 1.0, None, search=FloatRange(1.0, 3.0),
                                doc="each cycle is cycle_mult times longer than the last"),
            "cycle_decay": Float(1.0, 0.0, 1.0, low_open=True, search=FloatRange(0.5, 1.0),
                                 doc="each cycle's peak is cycle_decay times the last"),
            "min_ratio": MIN_RATIO,
            "k": K_DECAY,
            "whole_steps": Choice(True, (True, False),
                                  doc="round the first cycle to whole steps (torch T_0); false keeps "
                                      "the exact fraction (HF hard restarts: 1 / num_cycles)"),
        },
        _cosine_restarts,
        decays_late=True,
    )
)
register(
    Family(
        "cyclic",
        "triangular cycles between base_ratio and the peak (CLR)",
        {
            "mode": Choice("triangular", ("triangular", "triangular2", "exp_range"),
                           search=Categorical(("triangular", "triangular2", "exp_range"))),
            "base_ratio": Float(0.1, 0.0, 1.0, low_open=True,
                                search=FloatRange(0.1, 1 / 3, log=True),
                                doc="bottom of the cycle as a ratio of the peak"),
            "cycle_frac": Float(0.2, 0.0, 1.0, low_open=True,
                                search=FloatRange(0.05, 0.25, log=True),
                                doc="length of one full cycle as a fraction of the run"),
            "up_frac": Float(0.5, 0.0, 1.0, low_open=True, high_open=True,
                             doc="part of each cycle spent rising"),
            "gamma": Float(1.0, 0.0, 1.0, low_open=True, search=FloatRange(0.5, 1.0, when=("mode", "exp_range")),
                           doc="exp_range only: amplitude factor per cycle"),
            **momentum_params(0.8, 0.9),
        },
        _cyclic,
        momentum=_cyclic_momentum,
        rises=True,
        check=check_momenta,
    )
)
