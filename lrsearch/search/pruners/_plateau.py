"""The schedule-aware ``PlateauPruner``.

``PlateauPruner`` judges a trial the way ReduceLROnPlateau judges a metric, through the same
``PlateauMonitor``: it prunes a trial that has not improved for ``patience`` evaluations (by the
monitor's threshold rules) *and* is worse than its peers (of the same run length) at the same step.
It is schedule-aware:
a family that holds a high LR and decays late (wsd, flat_cos, step, multistep, cosine restarts
mid-cycle; ``Family.decays_late``) is not judged while its LR is still above ``protect_below`` of
its peak, since such schedules look worse than decaying ones until they decay.
"""

from __future__ import annotations

import math

import numpy as np
import optuna

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch._plateau import PlateauMonitor
from lrsearch.schedules import Schedule
from lrsearch.search._lengths import same_length


_NOMINAL_STEPS = 1000  # resolution at which a spec is read when only the run's fraction is known


def protected(trial: optuna.trial.FrozenTrial, step: int, protect_below: float) -> bool:
    """Whether ``trial``'s schedule still holds its LR high at evaluation ``step`` (decays late)."""
    spec, n_evals = trial.user_attrs.get("schedule"), trial.user_attrs.get("n_evals")
    if not isinstance(spec, dict) or not isinstance(n_evals, int) or n_evals < 1:
        return False
    try:
        schedule = Schedule.from_dict(spec)
    except ValueError:
        return False
    if not schedule.spec_family.decays_late:
        return False
    t = min(_NOMINAL_STEPS - 1, max(0, round((step + 1) / n_evals * _NOMINAL_STEPS) - 1))
    return float(schedule.multipliers(np.array([t]), _NOMINAL_STEPS)[0]) > protect_below


class PlateauPruner(optuna.pruners.BasePruner):
    """Prune trials that have plateaued and trail their peers, unless their schedule decays late.

    Example:
        >>> study = optuna.create_study(pruner=lrsearch.PlateauPruner(patience=2))

    Args:
        patience: Evaluations without improvement (ReduceLROnPlateau's rules) before a trial
            counts as stalled.
        threshold, threshold_mode: What counts as an improvement, as in ``PlateauMonitor``.
        percentile: A stalled trial is pruned when its best value so far is worse than this
            percentile of the completed trials' values at the same step (50: the median).
        n_startup_trials: Completed trials with a value at the step needed before any pruning.
        n_warmup_steps: No pruning before this step (non-finite values excepted).
        protect_below: Late-decaying families are not judged while their LR multiplier is above
            this ratio of the peak.
    """

    def __init__(
        self,
        patience: int = 2,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        percentile: float = 50.0,
        n_startup_trials: int = 4,
        n_warmup_steps: int = 1,
        protect_below: float = 0.5,
    ) -> None:
        self.patience = check_int("patience", patience, low=0)
        self.threshold = check_float("threshold", threshold)
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0 but got {threshold!r}.")
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.percentile = check_float("percentile", percentile)
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100] but got {percentile!r}.")
        self.n_startup_trials = check_int("n_startup_trials", n_startup_trials, low=0)
        self.n_warmup_steps = check_int("n_warmup_steps", n_warmup_steps, low=0)
        self.protect_below = check_float("protect_below", protect_below)
        self.reasons: dict[int, str] = {}  # trial number -> why it was pruned (read by ``report``)
        if not 0 <= self.protect_below <= 1:
            raise ValueError(f"protect_below must be in [0, 1] but got {protect_below!r}.")

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        values = trial.intermediate_values
        if not values:
            return False
        steps = sorted(values)
        step = steps[-1]
        if not math.isfinite(values[step]):
            return True
        if step < self.n_warmup_steps or protected(trial, step, self.protect_below):
            return False
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        monitor = PlateauMonitor("max" if maximize else "min", 10**9, self.threshold, self.threshold_mode)
        for s in steps:
            monitor.update(values[s])
        if monitor.num_bad_evals < self.patience:
            return False
        peers = [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if step in t.intermediate_values and math.isfinite(t.intermediate_values[step]) and same_length(t, trial)
        ]
        if len(peers) < max(1, self.n_startup_trials):
            return False
        cut = float(np.percentile(peers, 100 - self.percentile if maximize else self.percentile))
        stalled = monitor.best < cut if maximize else monitor.best > cut
        if stalled:  # the rule and its numbers, for the trial's prune_reason
            self.reasons[trial.number] = (
                f"PlateauPruner: {monitor.num_bad_evals} evaluations without improvement (patience "
                f"{self.patience}) and its best {monitor.best:.4g} is worse than the peers' "
                f"{self.percentile:g}th-percentile {cut:.4g} at step {step} ({len(peers)} peers)")
        return stalled
