"""Decays from the peak: constant (and schedule_free, constant under a Schedule-Free optimizer), linear,
cosine, poly, exponential, tanh, inverse_sqrt, and the hold-then-decay families wsd and flat_cos
(monotone, but for a cosine with ``cycles > 0.5``).

Progress is ``u = t / total`` (torch's ``CosineAnnealingLR(T_max=total)`` and ``PolynomialLR``
convention, also HF's and timm's), so the last step sits at ``u = (total - 1) / total`` and a
decay to ``min_ratio`` gets there only at ``u = 1``. Torch's cosine is periodic past ``T_max``;
here steps past the run hold the last value (see ``Schedule.lr_at``). ``wsd`` and ``flat_cos`` hold
the peak for a whole number of steps (``round(hold * total)``, half up) and their first decay step
is exactly the peak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrsearch.schedules._anneal import anneal_const
from lrsearch.schedules._anneal import anneal_cos
from lrsearch.schedules._anneal import anneal_exp
from lrsearch.schedules._anneal import anneal_linear
from lrsearch.schedules._anneal import anneal_poly
from lrsearch.schedules._anneal import combine_steps
from lrsearch.schedules._anneal import cycle_position
from lrsearch.schedules._params import K_DECAY
from lrsearch.schedules._params import MIN_RATIO
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import steps_of
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import register


P = Mapping[str, Any]


def flat(t: np.ndarray, total: int, p: P) -> np.ndarray:
    return np.ones_like(t)


def _linear(t: np.ndarray, total: int, p: P) -> np.ndarray:
    return anneal_linear(1.0, p["min_ratio"], t / total)


def _cosine(t: np.ndarray, total: int, p: P) -> np.ndarray:
    # k-decay (timm ``k_decay``, arXiv 2004.05909): k > 1 keeps the LR high for longer.
    # cycles is HF's num_cycles, cos(2 pi cycles u): 0.5 is one half-wave (2 * 0.5 * x == x exactly,
    # so the default is bit-identical to the plain form); less stops above min_ratio, more rises again.
    return anneal_cos(1.0, p["min_ratio"], 2.0 * p["cycles"] * (t / total) ** p["k"])


def _poly(t: np.ndarray, total: int, p: P) -> np.ndarray:
    # torch/timm orientation: min + (peak - min) * (1 - u**k) ** power (timm k_decay; u**1.0 is u);
    # with first_cycle_frac < 1, timm's PolyLRScheduler restarts (cycle_mul, cycle_decay). At the
    # defaults u = t / total exactly: one cycle of total steps.
    first = float(max(1, steps_of(p["first_cycle_frac"], total)))
    index, u = cycle_position(t, first, p["cycle_mult"])
    peak = p["cycle_decay"] ** index
    return anneal_poly(p["min_ratio"], peak, 1.0 - u ** p["k"], p["power"])


def _exponential(t: np.ndarray, total: int, p: P) -> np.ndarray:
    # min_ratio ** u, i.e. torch's ExponentialLR with gamma = min_ratio ** (1 / total).
    return anneal_exp(1.0, p["min_ratio"], t / total)


def _inverse_sqrt(t: np.ndarray, total: int, p: P) -> np.ndarray:
    timescale = p["timescale_frac"] * total
    return 1.0 / np.sqrt(1.0 + t / timescale)


def _tanh(t: np.ndarray, total: int, p: P) -> np.ndarray:
    # timm TanhLRScheduler, one cycle: lr_min + (peak - lr_min) (1 - tanh(lb (1 - u) + ub u)) / 2.
    u = t / total
    return p["min_ratio"] + (1.0 - p["min_ratio"]) * 0.5 * (1.0 - np.tanh(p["lb"] * (1.0 - u) + p["ub"] * u))


def _one_minus_sqrt(start: float, end: float, pos: np.ndarray) -> np.ndarray:
    return anneal_poly(start, end, pos, 0.5)


DECAY_SHAPES = {"linear": anneal_linear, "cosine": anneal_cos, "1-sqrt": _one_minus_sqrt}


def hold_then_decay(t: np.ndarray, total: int, hold_frac: float, shape: str, min_ratio: float) -> np.ndarray:
    """Hold the peak for ``hold_frac`` of the run (whole steps, half up), then decay with ``shape``:
    the first decay step is exactly the peak."""
    decay = DECAY_SHAPES[shape]
    return combine_steps(
        [hold_frac, 1.0 - hold_frac],
        [lambda q: anneal_const(1.0, 1.0, q), lambda q: decay(1.0, min_ratio, q)],
        t,
        total,
    )


def _wsd(t: np.ndarray, total: int, p: P) -> np.ndarray:
    return hold_then_decay(t, total, 1.0 - p["decay_frac"], p["decay_shape"], p["min_ratio"])


def _flat_cos(t: np.ndarray, total: int, p: P) -> np.ndarray:
    return hold_then_decay(t, total, p["pct_start"], "cosine", p["min_ratio"])


register(Family("constant", "hold the peak LR", {}, flat))
register(Family("schedule_free", "hold the peak LR under a Schedule-Free optimizer (its average decays)", {}, flat,
                schedule_free=True))
register(Family("linear", "linear decay to min_ratio (D2Z when 0)", {"min_ratio": MIN_RATIO}, _linear))
register(
    Family(
        "cosine",
        "half-cosine decay to min_ratio, optional k-decay",
        {
            "min_ratio": MIN_RATIO,
            "k": Float(1.0, 0.0, None, low_open=True, search=FloatRange(0.5, 3.0, log=True),
                       doc="k-decay exponent on progress; k > 1 holds the LR high longer"),
            "cycles": Float(0.5, 0.0, 1e6, low_open=True,
                            doc="cosine cycles over the run (HF num_cycles); 0.5 ends at min_ratio"),
        },
        _cosine,
    )
)
register(
    Family(
        "poly",
        "polynomial decay (1 - u**k)**power to min_ratio, optional restarts (timm poly)",
        {
            "power": Float(1.0, 0.0, None, low_open=True, search=FloatRange(0.5, 2.0, log=True)),
            "min_ratio": MIN_RATIO,
            "k": K_DECAY,
            "first_cycle_frac": Float(1.0, 0.0, 1.0, low_open=True, hide_default=True,
                                      doc="restarts (timm t_initial): first cycle as a fraction of the run"),
            "cycle_mult": Float(1.0, 1.0, None, hide_default=True, doc="each cycle cycle_mult times longer"),
            "cycle_decay": Float(1.0, 0.0, 1.0, low_open=True, hide_default=True,
                                 doc="each cycle's peak cycle_decay times the last"),
        },
        _poly,
    )
)
register(
    Family(
        "exponential",
        "geometric decay reaching min_ratio at the end of the run",
        {
            "min_ratio": Float(0.01, 0.0, 1.0, low_open=True, search=FloatRange(1e-3, 0.1, log=True),
                               doc="ratio of the peak reached at the end of the run"),
        },
        _exponential,
    )
)
register(
    Family(
        "tanh",
        "tanh decay from lb to ub to min_ratio (timm tanh)",
        {
            "lb": Float(-7.0, None, 0.0, high_open=True, search=FloatRange(-9.0, -4.0),
                        doc="tanh argument at the start"),
            "ub": Float(3.0, 0.0, None, search=FloatRange(1.0, 5.0), doc="tanh argument at the end"),
            "min_ratio": MIN_RATIO,
        },
        _tanh,
        decays_late=True,  # lb = -7 holds ~the peak for the first third of the run
    )
)
register(
    Family(
        "inverse_sqrt",
        "1 / sqrt(1 + t / timescale) after warmup (Transformer)",
        {
            "timescale_frac": Float(0.05, 0.0, None, low_open=True,
                                    search=FloatRange(0.01, 0.1, log=True),
                                    doc="timescale as a fraction of the run"),
        },
        _inverse_sqrt,
    )
)
register(
    Family(
        "wsd",
        "warmup-stable-decay: hold the peak, decay over the last decay_frac",
        {
            "decay_frac": Float(0.2, 0.0, 1.0, low_open=True, search=FloatRange(0.05, 0.3)),
            "decay_shape": Choice("1-sqrt", tuple(DECAY_SHAPES),
                                  search=Categorical(tuple(DECAY_SHAPES))),
            "min_ratio": MIN_RATIO,
        },
        _wsd,
        decays_late=True,
    )
)
register(
    Family(
        "flat_cos",
        "hold the peak until pct_start, then cosine to min_ratio (fastai fit_flat_cos)",
        {
            "pct_start": Float(0.75, 0.0, 1.0, low_open=True, high_open=True,
                               search=FloatRange(0.5, 0.85)),
            "min_ratio": MIN_RATIO,
        },
        _flat_cos,
        decays_late=True,
    )
)
