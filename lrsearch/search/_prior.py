"""The range test as a prior on the peak LR, not a wall.

A range test's ``search_range()`` (the *core*) is where the best peak LRs usually sit, but not
always: on held-out work (an LSTM trained with SGD and gradient clipping, a transformer LM with
AdamW) every family's best LR lay above it. So a search seeded by a range test samples the peak
LR over the core widened by tails, ``TAIL_BELOW`` decades below and ``TAIL_ABOVE`` above (within
the test's sweep), and keeps the core as a *prior*: the sampler's first, random trials
(``STARTUP_TRIALS``) draw their LR from a log-normal centred on the core whose standard deviation
is half the core's width in decades (two thirds of the draws land in the core, the rest reach
into the tails), instead of uniformly over the whole range. After them TPE models the widened
range from what the trials measured, so an incumbent near an edge pulls its proposals past the
core. ``studies/bench_grid.md`` has where each family's grid-best LR sat against the core: over
7 tasks x 6 families, at 0.46 / 0.68 / 0.85 of the core's width (quartiles; 0 its low end, 1 its
high), from 0.13 to 1.48 (the LSTM, all 6 families above the core). A prior at 0.7 fits those
better, but over the 7 tasks x budgets 2/4/8 x 3 seeds of studies/bench_anytime.py it lowered the
regret on 3 tasks and raised it on 3 (docs/benchmarks.md), so the plain centre stays.

``PriorSampler`` wraps any sampler and changes only that: the ``lr`` of trials sampled before
``STARTUP_TRIALS`` trials finished. Seeds (enqueued at the range test's suggestions) are fixed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial
from optuna.trial import TrialState


#: Decades the searched LR range reaches below and above a range test's ``search_range()``.
TAIL_BELOW = 0.5
TAIL_ABOVE = 1.0
#: Where the prior sits on a range test's range (0 its low end, 1 its high, in log) and its spread
#: (a share of the range's width): see the module docstring.
PRIOR_AT = 0.5
PRIOR_SIGMA = 0.5
#: Trials the default sampler draws before TPE models the space (its ``n_startup_trials``).
STARTUP_TRIALS = 10


@dataclass(frozen=True)
class LRPrior:
    """A log-normal belief about the best peak LR: ``centre`` (an LR) and ``sigma`` (decades)."""

    centre: float
    sigma: float

    @classmethod
    def around(cls, low: float, high: float) -> LRPrior:
        """On the range ``[low, high]``: its centre ``PRIOR_AT`` of the way up in log, sigma
        ``PRIOR_SIGMA`` of its width (in decades)."""
        width = math.log10(high / low)
        return cls(low * 10 ** (PRIOR_AT * width), max(PRIOR_SIGMA * width, 0.1))

    @classmethod
    def from_dict(cls, data: Any) -> LRPrior | None:
        """The prior a study attr holds (``describe()``), or ``None`` when it holds none."""
        try:
            prior = cls(float(data["centre"]), float(data["sigma_decades"]))
        except (TypeError, KeyError, ValueError):
            return None
        ok = math.isfinite(prior.centre) and prior.centre > 0 and math.isfinite(prior.sigma) and prior.sigma > 0
        return prior if ok else None

    def within(self, low: float, high: float) -> LRPrior:
        """The same belief with its centre moved inside ``[low, high]`` (an explicit range's walls)."""
        return LRPrior(min(max(self.centre, low), high), self.sigma)

    def draw(self, rng: np.random.RandomState, low: float, high: float) -> float:
        """One LR from the log-normal truncated to ``[low, high]`` (uniform if it misses them)."""
        lo, hi = math.log10(low), math.log10(high)
        for _ in range(64):
            x = rng.normal(math.log10(self.centre), self.sigma)
            if lo <= x <= hi:
                return float(min(max(10**x, low), high))
        return float(min(max(10 ** rng.uniform(lo, hi), low), high))

    def describe(self) -> dict[str, float]:
        return {"centre": self.centre, "sigma_decades": self.sigma}


def widened(core: tuple[float, float], sweep: tuple[float, float]) -> tuple[float, float]:
    """``core`` with its tails (``TAIL_BELOW`` / ``TAIL_ABOVE`` decades), kept within ``sweep``."""
    low, high = core[0] / 10**TAIL_BELOW, core[1] * 10**TAIL_ABOVE
    low, high = max(low, min(sweep[0], core[0])), min(high, max(sweep[1], core[1]))
    return low, max(high, low)


class PriorSampler(optuna.samplers.BaseSampler):
    """``base`` with the ``param`` of startup trials drawn from ``prior`` (see the module docstring).

    Startup: fewer than ``n_startup_trials`` trials complete or pruned, as TPE counts them.
    """

    def __init__(self, base: optuna.samplers.BaseSampler, prior: LRPrior | None, *,
                 n_startup_trials: int = STARTUP_TRIALS, param: str = "lr", seed: int | None = None) -> None:
        self.base, self.prior, self.param = base, prior, param
        self.n_startup_trials = n_startup_trials
        self._rng = np.random.RandomState(seed)

    def reseed_rng(self) -> None:
        self._rng.seed()
        self.base.reseed_rng()

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.base.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        if (self.prior is not None and param_name == self.param and isinstance(param_distribution, FloatDistribution)
                and param_distribution.log and self._in_startup(study)):
            return self.prior.draw(self._rng, param_distribution.low, param_distribution.high)
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def _in_startup(self, study: optuna.Study) -> bool:
        done = study._get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED), use_cache=True)
        return len(done) < self.n_startup_trials

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)


def default_sampler(seed: int, prior: LRPrior | None = None) -> optuna.samplers.BaseSampler:
    """TPE, multivariate and grouped (it decomposes the space per family), seeded; with a ``prior``,
    its startup trials draw the peak LR from it (``PriorSampler``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        tpe = optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed, n_startup_trials=STARTUP_TRIALS)
    return tpe if prior is None else PriorSampler(tpe, prior, seed=seed)
