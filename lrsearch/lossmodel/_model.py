"""``LossModel``: a loss law over schedules fitted to observed runs; predicts any schedule's loss at
any step of a run of any length, with an uncertainty, and the peak LR a schedule wants there.

Which law: both forms (``area``, ``multipower``; each with and without the over-fitting term) are
fitted to the shorter runs and judged on predicting the longest runs' final values (a held-out
extrapolation in run length, the model's own error estimate: ``holdout_error``); the best one is
refitted on every run. With one run length there is nothing to judge by, and ``area`` without the
over-fitting term (the fewest exponents) is used. A form whose held-out predictions are not finite
scores an infinite error, never 0; a fit that is not finite is refused, and a schedule the law
gives no finite value for gets no prediction (a ``ValueError``), never a NaN.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrsearch._checks import check_bool
from lrsearch._checks import check_int
from lrsearch._checks import check_names
from lrsearch._checks import check_positive
from lrsearch._checks import show
from lrsearch.lossmodel._laws import LAWS
from lrsearch.lossmodel._laws import LawFit
from lrsearch.lossmodel._laws import Run
from lrsearch.lossmodel._laws import fit_law
from lrsearch.lossmodel._laws import refit
from lrsearch.schedules import Schedule


UNPREDICTABLE = ("plateau",)  # families whose LR depends on the metric, unknown before the run
MIN_RUNS = 4
_BOOTSTRAP = 24
INTERVAL_Z = 2.0  # a prediction's interval: value +/- INTERVAL_Z * std
_MAD_TO_STD = 1.4826  # a median absolute error as a normal standard deviation
#: The least relative error an extrapolation past the longest fitted run is given per held-out length
#: ratio, whatever the held-out check measured: a law that predicted its own longest runs within 0.6%
#: missed by 2.5% at 3x and 6.8% at 10x on the one-pass LM (``studies/bench_onepass.py --short 30``).
EXTRAPOLATION_FLOOR = 0.03


@dataclass(frozen=True)
class Curve:
    """One observed run: the schedule, its length, the steps at which it was evaluated (steps
    done, ``1 .. total_steps``) and the values there (a loss: lower is better)."""

    schedule: Schedule
    total_steps: int
    steps: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Prediction:
    """A predicted value and its standard deviation (fit residuals, the bootstrap spread and,
    beyond the longest fitted run, the held-out error: see ``LossModel.predict_curve``)."""

    value: float
    std: float

    def interval(self, z: float = INTERVAL_Z) -> tuple[float, float]:
        """``(value - z * std, value + z * std)``; the default ``z`` is the rule measured to cover
        held-out long runs (``studies/bench_coverage.py``)."""
        return self.value - z * self.std, self.value + z * self.std


def predictable(schedule: Schedule) -> bool:
    """Whether the model can predict ``schedule``: its LR curve is known before the run."""
    return schedule.family not in UNPREDICTABLE


def _check_curve(curve: Curve) -> None:
    if not isinstance(curve, Curve):
        raise ValueError(f"curves must hold Curve objects but got {type(curve).__name__}.")
    if len(curve.steps) != len(curve.values) or not curve.steps:
        raise ValueError(f"a curve's steps and values must be non-empty and of equal length but got "
                         f"{len(curve.steps)} and {len(curve.values)}.")
    if any(not 1 <= s <= curve.total_steps for s in curve.steps):
        raise ValueError(f"a curve's steps must lie in [1, total_steps={curve.total_steps}] but got {curve.steps}.")


def _focus(curves: list[Curve], focus: float) -> list[Curve]:
    best: dict[int, float] = {}
    for c in curves:
        best[c.total_steps] = min(best.get(c.total_steps, math.inf), c.values[-1])
    return [c for c in curves if c.values[-1] - best[c.total_steps] <= focus * abs(best[c.total_steps])]


class LossModel:
    """A loss law over schedules, fitted with ``fit(curves)``.

    Example:
        >>> model = LossModel().fit(curves)
        >>> model.predict(Schedule("cosine", lr=0.1), total_steps=3000)
        Prediction(value=0.412, std=0.006)

    Args:
        laws: Law forms to choose between (``"area"``, ``"multipower"``).
        overfit: Also try each law with a term growing with the steps taken (``None``: try both).
        focus: Fit only runs whose final value is within this share of the best final value of
            their run length (``0.25``: 25% worse at most): the law describes runs that train
            well, and the search needs it near the best, not where runs diverge.
        seed: For the bootstrap.
    """

    def __init__(self, laws: Sequence[str] = LAWS, overfit: bool | None = None, focus: float = 0.25,
                 seed: int = 0) -> None:
        laws = check_names("laws", laws)
        self.focus = check_positive("focus", focus)
        if not laws or any(law not in LAWS for law in laws):
            raise ValueError(f"laws must be a non-empty subset of {LAWS} but got {show(laws)}.")
        if overfit is not None:
            check_bool("overfit", overfit)
        seed = check_int("seed", seed, low=0)
        self.laws, self.overfit, self.seed = laws, overfit, seed
        self.fit_: LawFit | None = None
        self.holdout_error: float | None = None
        self.holdout: dict[str, float] = {}
        self.holdout_ratio: float | None = None
        self.lr_ref = self.steps_ref = 1.0
        self.lr_span = (0.0, math.inf)
        self._boot: list[LawFit] = []
        self._resid = 0.0
        self.n_curves = 0

    # ------------------------------------------------------------------------------------ fitting

    def _run(self, curve: Curve) -> Run:
        eta = curve.schedule.curve(curve.total_steps) / self.lr_ref
        t = np.asarray(curve.steps, dtype=np.int64)
        # the final value is what is predicted: it weighs 1, earlier evaluations 0.1 * (t / T)^2
        frac = t / curve.total_steps
        return Run(eta, t, np.asarray(curve.values, dtype=float), np.where(t >= curve.total_steps, 1.0,
                                                                           0.1 * frac ** 2))

    def _fit(self, law: str, overfit: bool, runs: Sequence[Run]) -> LawFit:
        return fit_law(law, runs, self.steps_ref, overfit)

    def _forms(self) -> list[tuple[str, bool]]:
        flags = (False, True) if self.overfit is None else (self.overfit,)
        return [(law, flag) for law in self.laws for flag in flags]

    def fit(self, curves: Sequence[Curve]) -> LossModel:
        """Fit to ``curves`` (at least ``MIN_RUNS`` predictable ones with finite values)."""
        curves = _focus([c for c in curves if _check_curve(c) is None and predictable(c.schedule)
                         and all(math.isfinite(v) for v in c.values)], self.focus)
        if len(curves) < MIN_RUNS:
            raise ValueError(f"curves must hold at least {MIN_RUNS} runs with a known LR curve and finite values "
                             f"but got {len(curves)}.")
        peaks = np.array([c.schedule.lr for c in curves])
        if peaks.min() < sys.float_info.min:  # a subnormal LR: LR ratios (the law's inputs) overflow
            raise ValueError(f"curves must have peak LRs >= {sys.float_info.min:.4g} (normal floats) "
                             f"but got {float(peaks.min())!r}.")
        self.lr_ref = float(np.exp(np.mean(np.log(peaks))))
        self.lr_span = (float(peaks.min()), float(peaks.max()))
        self.steps_ref = float(max(c.total_steps for c in curves))
        runs = [self._run(c) for c in curves]
        lengths = np.array([c.total_steps for c in curves], dtype=float)
        longest = lengths >= lengths.max() * 0.98
        forms = self._forms()
        self.holdout, self.holdout_error, self.holdout_ratio = {}, None, None
        train = [r for r, keep in zip(runs, ~longest) if keep]
        if longest.sum() >= 1 and len(train) >= MIN_RUNS:
            self.holdout_ratio = float(lengths.max() / lengths[~longest].max())
            test = [r for r, keep in zip(runs, longest) if keep]
            for law, flag in forms:
                f = self._fit(law, flag, train)
                errors = [abs(f.predict(r.eta, r.t[-1:])[0] - r.y[-1]) / abs(r.y[-1]) for r in test]
                error = float(np.median(errors))  # a non-finite prediction is no match: inf, never 0
                self.holdout[f"{law}{'+overfit' if flag else ''}"] = error if math.isfinite(error) else math.inf
            best = min(self.holdout, key=self.holdout.get)  # type: ignore[arg-type]
            self.holdout_error = self.holdout[best]
            chosen = (best.split("+")[0], best.endswith("+overfit"))
        else:  # one run length: nothing to judge by; the fewest exponents
            chosen = forms[0] if ("area", False) not in forms else ("area", False)
        self.fit_ = self._fit(*chosen, runs)
        resid = [f - r.y[-1] for r in runs for f in self.fit_.predict(r.eta, r.t[-1:])]
        self._resid = float(np.sqrt(np.mean(np.square(resid))))
        if not (math.isfinite(self._resid) and np.all(np.isfinite(self.fit_.coef))):
            self.fit_ = None
            raise ValueError(f"curves must give the law a finite fit but its {chosen[0]} form fitted on "
                             f"{len(runs)} runs predicts non-finite values for them.")
        rng = np.random.default_rng(self.seed)
        self._boot = [refit(self.fit_, [runs[i] for i in rng.integers(0, len(runs), len(runs))])
                      for _ in range(_BOOTSTRAP)]
        self.n_curves = len(runs)
        return self

    # --------------------------------------------------------------------------------- predicting

    def _require(self) -> LawFit:
        if self.fit_ is None:
            raise ValueError("the model must be fitted first: call fit(curves).")
        return self.fit_

    def _eta(self, schedule: Schedule, total_steps: int) -> np.ndarray:
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule but got {type(schedule).__name__}.")
        if not predictable(schedule):
            raise ValueError(f"schedule must have an LR curve known before the run but the {schedule.family!r} "
                             "family's LR depends on the metric.")
        return schedule.curve(check_int("total_steps", total_steps, low=1)) / self.lr_ref

    def predict_curve(self, schedule: Schedule, total_steps: int, steps: Sequence[int]) -> list[Prediction]:
        """Predictions after each of ``steps`` (steps done) of a ``total_steps`` run of ``schedule``."""
        fit = self._require()
        with np.errstate(over="ignore"):  # an overflowing LR ratio is caught below as no prediction
            eta = self._eta(schedule, total_steps)
        t = np.asarray([check_int("steps", s, low=1) for s in steps], dtype=np.int64)
        if np.any(t > total_steps):
            raise ValueError(f"steps must be <= total_steps={total_steps} but got {list(steps)!r}.")
        with np.errstate(all="ignore"):
            try:
                x = fit.design(eta, t)
            except OverflowError:  # a peak LR far past the fitted ones: its features overflow
                x = np.full((len(t), len(fit.coef)), np.nan)
            mean = x @ fit.coef
            boot = np.stack([x @ b.coef for b in self._boot]) if self._boot else np.zeros((1, len(t)))
            std = np.sqrt(boot.var(axis=0) + self._resid ** 2 + self._beyond(total_steps, mean) ** 2)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            raise ValueError(f"no prediction: the law gives {schedule.describe()} at total_steps={total_steps} "
                             f"a non-finite value (its runs' peak LRs span {self.lr_span[0]:.3g} to "
                             f"{self.lr_span[1]:.3g}).")
        return [Prediction(float(m), float(s)) for m, s in zip(mean, std)]

    def _beyond(self, total_steps: int, mean: np.ndarray) -> np.ndarray | float:
        """The extrapolation term of the std past the longest fitted run: the held-out error (the
        law's median relative miss over ``holdout_ratio``, as a std; at least ``EXTRAPOLATION_FLOOR``)
        per ``holdout_ratio`` of length, growing with ``log(total_steps / longest) / log(holdout_ratio)``."""
        if total_steps <= self.steps_ref or self.holdout_error is None or not self.holdout_ratio:
            return 0.0
        reach = math.log(total_steps / self.steps_ref) / math.log(self.holdout_ratio)
        return _MAD_TO_STD * max(self.holdout_error, EXTRAPOLATION_FLOOR) * np.abs(mean) * reach

    def predict(self, schedule: Schedule, total_steps: int, at: int | None = None) -> Prediction:
        """The value after ``at`` steps (default: the end) of a ``total_steps`` run of ``schedule``."""
        return self.predict_curve(schedule, total_steps, [total_steps if at is None else at])[0]

    def best_lr(self, schedule: Schedule, total_steps: int, points: int = 49,
                within: tuple[float, float] | None = None) -> tuple[float, Prediction] | None:
        """The peak LR that minimises ``schedule``'s predicted final value at ``total_steps`` (its
        shape kept) and the prediction there, searched among the fitted runs' peak LRs (and
        ``within`` these bounds, if given). ``None`` when the minimum lies at an edge of the fitted
        runs' peak LRs (the law would be extrapolating in the LR, where it is weakest)."""
        fit = self._require()
        points = check_int("points", points, low=2)
        span_low, span_high = self.lr_span
        want_low, want_high = (min(within), max(within)) if within is not None else (0.0, math.inf)
        low, high = max(span_low, want_low), min(span_high, want_high)
        if low > high:
            return None
        lrs = np.geomspace(low, high, points) if high > low else np.array([low])
        values = [fit.predict(self._eta(schedule.replace(lr=float(lr)), total_steps), np.array([total_steps]))[0]
                  for lr in lrs]
        values = np.where(np.isfinite(values), values, np.inf)  # a non-finite value is no optimum
        if not np.isfinite(values).any():
            return None
        k = int(np.argmin(values))
        # an optimum on an edge the data set (not the requested bounds) is an extrapolation
        if (k == 0 and span_low >= want_low) or (k == len(lrs) - 1 and span_high <= want_high):
            return None
        lr = float(lrs[k])
        return lr, self.predict(schedule.replace(lr=lr), total_steps)

    def describe(self) -> dict[str, Any]:
        """The chosen law, its exponents and coefficients, and the held-out errors."""
        fit = self._require()
        return {**fit.describe(), "lr_ref": self.lr_ref, "steps_ref": self.steps_ref, "curves": self.n_curves,
                "holdout_error": self.holdout_error, "holdout": dict(self.holdout), "residual": self._resid}
