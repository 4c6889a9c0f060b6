"""The two law forms and their fit: a grid over the nonlinear exponents, non-negative least squares
for the coefficients (the loss is linear in them once the exponents are fixed).

Both laws get the same two extra terms, since a study's trials differ in peak LR and (for
multi-epoch tasks) in how many passes they make over the data:

- ``D * peak ** p``: what a higher peak LR costs that annealing does not give back (instability).
  With ``A * S1 ** -alpha`` it puts the best peak LR at ``T ** (-alpha / (alpha + p))``: the law
  itself says how the peak LR should move with the run length.
- optionally ``E * t``: loss that grows with the steps taken (over-fitting of many epochs).

``area``   (Tissue et al. 2024): ``L = L0 + A * S1 ** -alpha + C * ema_w + D * peak ** p [+ E t]``
``multipower`` (Luo et al. 2025): ``L = L0 + A * S1 ** -alpha - B * drop + D * peak ** p [+ E t]``
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrsearch.lossmodel._features import area
from lrsearch.lossmodel._features import drop
from lrsearch.lossmodel._features import ema


LAWS = ("area", "multipower")
ALPHA = tuple(float(a) for a in np.geomspace(0.05, 2.0, 10))
PEAK_POWER = (0.5, 1.0, 2.0, 3.0)
WINDOW = (1.0, 4.0, 16.0, 64.0, 256.0)  # steps
MPL_SHAPE = tuple(itertools.product((0.5, 1.0, 2.0), (0.0, 0.5), (1.0, 4.0, 16.0, 64.0)))  # beta, gamma, C


@dataclass(frozen=True)
class Run:
    """One observed run in the fit's units: LR per step (ratio of ``lr_ref``), evaluation points
    (steps done), values and their weights."""

    eta: np.ndarray
    t: np.ndarray
    y: np.ndarray
    w: np.ndarray


def shape_column(law: str, shape: tuple, eta: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The law's schedule-shape term (before its coefficient) after ``t`` steps."""
    if law == "area":
        return ema(eta, t, shape[0])
    return -drop(eta, t, *shape)


def shapes(law: str) -> list[tuple]:
    return [(w,) for w in WINDOW] if law == "area" else list(MPL_SHAPE)


def columns(eta: np.ndarray, t: np.ndarray, steps_ref: float, alpha: float, shape_col: np.ndarray, p: float,
            overfit: bool) -> np.ndarray:
    """Design matrix rows: ``1, S1 ** -alpha, shape term, peak ** p[, t]``."""
    s1 = np.maximum(area(eta, t) / steps_ref, 1e-9)
    peak = float(np.max(eta)) if len(eta) else 0.0
    cols = [np.ones(len(t)), s1 ** -alpha, shape_col, np.full(len(t), peak ** p)]
    if overfit:
        cols.append(t / steps_ref)
    return np.stack(cols, axis=1)


def nnls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted least squares with every coefficient ``>= 0`` (the intercept ``L0`` too when every
    value is positive: a loss has a non-negative floor): the unconstrained solution if feasible,
    else the best over the subsets of active columns."""
    sw = np.sqrt(w)
    xw, yw = x * sw[:, None], y * sw
    n = x.shape[1]
    floor = bool(np.all(y > 0))
    best: tuple[np.ndarray, float] | None = None
    for size in range(n - 1, -1, -1):
        for free in itertools.combinations(range(1, n), size):
            cols = (0, *free)
            coef, *_ = np.linalg.lstsq(xw[:, cols], yw, rcond=None)
            if np.any(coef[1:] < 0) or (floor and coef[0] < 0):
                if not (floor and coef[0] < 0 and np.all(coef[1:] >= 0)):
                    continue
                coef, *_ = np.linalg.lstsq(xw[:, free], yw, rcond=None) if free else (np.zeros(0),)
                coef = np.concatenate([[0.0], coef])  # the floor at 0
                if np.any(coef[1:] < 0):
                    continue
            full = np.zeros(n)
            full[list(cols)] = coef
            sse = float(np.sum((xw @ full - yw) ** 2))
            if best is None or sse < best[1]:
                best = (full, sse)
        if best is not None and size == n - 1:
            return best  # the unconstrained fit is feasible: nothing smaller fits better
    if best is None:  # unreachable: the intercept alone is always feasible
        raise RuntimeError("no feasible fit")
    return best


@dataclass(frozen=True)
class LawFit:
    """A fitted law: its form, exponents and coefficients ``(L0, A, C or B, D[, E])``."""

    law: str
    alpha: float
    shape: tuple
    p: float
    overfit: bool
    coef: np.ndarray
    sse: float
    steps_ref: float

    def design(self, eta: np.ndarray, t: np.ndarray) -> np.ndarray:
        return columns(eta, t, self.steps_ref, self.alpha, shape_column(self.law, self.shape, eta, t), self.p,
                       self.overfit)

    def predict(self, eta: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self.design(eta, t) @ self.coef

    def describe(self) -> dict[str, Any]:
        names = ["L0", "A", "C" if self.law == "area" else "B", "D"] + (["E"] if self.overfit else [])
        shape = {"window": self.shape[0]} if self.law == "area" else dict(zip(("beta", "gamma", "c"), self.shape))
        return {"law": self.law, "alpha": self.alpha, "peak_power": self.p, **shape, "overfit": self.overfit,
                **{k: float(v) for k, v in zip(names, self.coef)}}


def fit_law(law: str, runs: Sequence[Run], steps_ref: float, overfit: bool, refine: int = 24) -> LawFit:
    """The best fit of ``law`` to ``runs`` (weighted squared error): a grid over the exponents,
    then ``alpha`` refined by golden-section search for the ``refine`` best (shape, power) pairs."""
    y = np.concatenate([r.y for r in runs])
    w = np.concatenate([r.w for r in runs])
    # what ``columns`` computes per run that does not depend on the exponents, once for all runs
    s1 = np.concatenate([np.maximum(area(r.eta, r.t) / steps_ref, 1e-9) for r in runs])
    peaks = [float(np.max(r.eta)) if len(r.eta) else 0.0 for r in runs]
    sizes = [len(r.t) for r in runs]
    ones = np.ones(len(y))
    late = np.concatenate([r.t / steps_ref for r in runs]) if overfit else None
    peak_cols = {p: np.repeat([peak ** p for peak in peaks], sizes) for p in PEAK_POWER}

    def at(alpha: float, shape: tuple, p: float, shape_col: np.ndarray) -> LawFit:
        cols = [ones, s1 ** -alpha, shape_col, peak_cols[p]]
        x = np.stack(cols if late is None else [*cols, late], axis=1)  # ``columns`` of every run, stacked
        coef, sse = nnls(x, y, w)
        return LawFit(law, alpha, shape, p, overfit, coef, sse, steps_ref)

    grid: list[tuple[LawFit, np.ndarray]] = []
    for shape in shapes(law):
        shape_cols = np.concatenate([shape_column(law, shape, r.eta, r.t) for r in runs])
        for p in PEAK_POWER:
            fits = [at(alpha, shape, p, shape_cols) for alpha in ALPHA]
            grid.append((min(fits, key=lambda f: f.sse), shape_cols))
    grid.sort(key=lambda item: item[0].sse)
    best = grid[0][0]
    for fit, shape_cols in grid[:refine]:
        k = ALPHA.index(fit.alpha)
        lo, hi = math.log(ALPHA[max(0, k - 1)]), math.log(ALPHA[min(len(ALPHA) - 1, k + 1)])
        g = (math.sqrt(5) - 1) / 2
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        fa, fb = at(math.exp(a), fit.shape, fit.p, shape_cols), at(math.exp(b), fit.shape, fit.p, shape_cols)
        for _ in range(20):
            if fa.sse < fb.sse:
                hi, b, fb = b, a, fa
                a = hi - g * (hi - lo)
                fa = at(math.exp(a), fit.shape, fit.p, shape_cols)
            else:
                lo, a, fa = a, b, fb
                b = lo + g * (hi - lo)
                fb = at(math.exp(b), fit.shape, fit.p, shape_cols)
        best = min((best, fa, fb), key=lambda f: f.sse)
    return best


def refit(fit: LawFit, runs: Sequence[Run]) -> LawFit:
    """``fit``'s exponents with coefficients solved again on ``runs`` (a bootstrap sample)."""
    x = np.concatenate([fit.design(r.eta, r.t) for r in runs])
    coef, sse = nnls(x, np.concatenate([r.y for r in runs]), np.concatenate([r.w for r in runs]))
    return LawFit(fit.law, fit.alpha, fit.shape, fit.p, fit.overfit, coef, sse, fit.steps_ref)
