"""Annealing primitives in the spirit of fastai's ``callback/schedule.py``.

Each maps a position ``pos`` in [0, 1] to a value between ``start`` and ``end`` and works on floats
and numpy arrays alike. ``combine`` joins them piecewise, as fastai's ``combine_scheds`` does. Every
family in this package is built from these, so a shape is written once.

Note the orientation of ``anneal_poly``: like fastai's ``SchedPoly`` it is
``start + (end - start) * pos**power``, so a decay with ``power > 1`` changes slowly *first*. The
``poly`` family follows torch and timm instead, ``(1 - u)**power``, which changes fast first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence

import numpy as np

from lrsearch.schedules._params import steps_of


Annealer = Callable[[float, float, np.ndarray], np.ndarray]


def anneal_const(start: float, end: float, pos: np.ndarray) -> np.ndarray:
    """Hold ``start`` (fastai ``SchedNo``)."""
    return np.full_like(np.asarray(pos, dtype=float), start)


def anneal_linear(start: float, end: float, pos: np.ndarray) -> np.ndarray:
    """Straight line from ``start`` to ``end`` (fastai ``SchedLin``)."""
    return start + (end - start) * np.asarray(pos, dtype=float)


def anneal_cos(start: float, end: float, pos: np.ndarray) -> np.ndarray:
    """Half cosine from ``start`` to ``end`` (fastai ``SchedCos``, torch ``_annealing_cos``)."""
    return end + (start - end) / 2.0 * (np.cos(np.pi * np.asarray(pos, dtype=float)) + 1.0)


def anneal_exp(start: float, end: float, pos: np.ndarray) -> np.ndarray:
    """Geometric interpolation ``start * (end / start) ** pos`` (fastai ``SchedExp``); both > 0."""
    return start * (end / start) ** np.asarray(pos, dtype=float)


def anneal_poly(start: float, end: float, pos: np.ndarray, power: float = 1.0) -> np.ndarray:
    """``start + (end - start) * pos ** power`` (fastai ``SchedPoly`` orientation)."""
    return start + (end - start) * np.asarray(pos, dtype=float) ** power


ANNEALERS: dict[str, Annealer] = {
    "constant": anneal_const,
    "linear": anneal_linear,
    "cos": anneal_cos,
    "exp": anneal_exp,
}


def combine(
    pcts: Sequence[float], scheds: Sequence[Callable[[np.ndarray], np.ndarray]], pos: np.ndarray
) -> np.ndarray:
    """Evaluate phases ``scheds`` covering consecutive fractions ``pcts`` of [0, 1] at ``pos``.

    Like fastai's ``combine_scheds``: phase ``i`` sees its own position rescaled to [0, 1]; a
    position at a boundary belongs to the later phase; ``pos == 1`` is the end of the last phase.
    ``pcts`` must be positive and sum to 1 (the caller validates). Positions are fractions, so a
    boundary may fall between whole steps; the families use ``combine_steps``.
    """
    pos = np.asarray(pos, dtype=float)
    edges = np.concatenate([[0.0], np.cumsum(pcts)])
    edges[-1] = 1.0  # absorb rounding in the sum
    idx = np.clip(np.searchsorted(edges, pos, side="right") - 1, 0, len(scheds) - 1)
    out = np.empty_like(pos)
    for i, sched in enumerate(scheds):
        mask = idx == i
        if np.any(mask):
            local = (pos[mask] - edges[i]) / (edges[i + 1] - edges[i])
            out[mask] = sched(np.clip(local, 0.0, 1.0))
    return out


def phase_starts(pcts: Sequence[float], total: int) -> np.ndarray:
    """First step of each phase of a ``total``-step run, then ``total``: whole steps, non-decreasing.

    Phase ``i`` starts at ``steps_of(pcts[0] + ... + pcts[i - 1], total)`` (half up), the sum taken
    exactly (``math.fsum``) and computed once, so that 0.1 + 0.1 + 0.1 of 10 steps is step 3.
    """
    inner = [min(steps_of(math.fsum(pcts[:i]), total), total) for i in range(1, len(pcts))]
    return np.array([0, *inner, total], dtype=float)


def combine_steps(
    pcts: Sequence[float], scheds: Sequence[Callable[[np.ndarray], np.ndarray]], t: np.ndarray, total: int
) -> np.ndarray:
    """``combine`` on whole steps ``t`` of a ``total``-step run, for the families.

    Phase ``i`` covers the steps ``starts[i] <= t < starts[i + 1]`` of ``phase_starts`` and sees
    ``(t - starts[i]) / (starts[i + 1] - starts[i])``: its first step is exactly the phase's start
    value, and its end value is reached where the next phase begins. A phase shorter than half a
    step gets no step.
    """
    t = np.asarray(t, dtype=float)
    starts = phase_starts(pcts, total)
    idx = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(scheds) - 1)
    out = np.empty_like(t)
    for i, sched in enumerate(scheds):
        mask = idx == i
        if np.any(mask):
            width = max(starts[i + 1] - starts[i], 1.0)
            out[mask] = sched(np.clip((t[mask] - starts[i]) / width, 0.0, 1.0))
    return out


def combined_cos(
    pct: float, start: float, middle: float, end: float, pos: np.ndarray
) -> np.ndarray:
    """Cosine from ``start`` to ``middle`` over ``pct``, then to ``end`` (fastai ``combined_cos``)."""
    return combine(
        [pct, 1.0 - pct],
        [lambda p: anneal_cos(start, middle, p), lambda p: anneal_cos(middle, end, p)],
        pos,
    )


def _cycle_starts(index: np.ndarray, first: float, mult: float) -> np.ndarray:
    if mult == 1.0:
        return first * index
    # (mult**k - 1) / (mult - 1) first: 1 for k = 1 whatever mult, and +inf (never NaN) for a
    # cycle that starts past any float, which no step reaches.
    return first * ((mult**index - 1.0) / (mult - 1.0))


def cycle_position(t: np.ndarray, first: float, mult: float) -> tuple[np.ndarray, np.ndarray]:
    """The cycle index of steps ``t`` and their position in it, in [0, 1), for cycles of ``first``
    steps, each ``mult`` times longer than the last (SGDR, timm's ``cycle_mul``)."""
    if mult == 1.0:
        index = np.floor(t / first)
    else:
        # log1p(t (mult - 1) / first) / log(mult), in logs so a huge mult (up to the float max)
        # does not overflow: log(1 + e**x) = logaddexp(0, x); t = 0 is log(0) = -inf, index 0.
        with np.errstate(divide="ignore"):
            x = np.log(t / first) + np.log(mult - 1.0)
        index = np.floor(np.logaddexp(0.0, x) / np.log(mult))
    # The logarithm and the geometric sum both land a hair off an exact boundary (7.000000001 for
    # 7); settle it to within a billionth of a step so whole-step cycles start where torch's do.
    tol = 1e-9 * np.maximum(1.0, t)
    index = np.where(_cycle_starts(index + 1, first, mult) <= t + tol, index + 1, index)
    index = np.where(_cycle_starts(index, first, mult) > t + tol, index - 1, index)
    start = _cycle_starts(index, first, mult)
    length = first * mult**index
    return index, (t - start) / length
