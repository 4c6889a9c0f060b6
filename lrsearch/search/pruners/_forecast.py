"""``ForecastPruner``: prune a trial whose curve is heading, by the end of its schedule, to a value
worse than its peers' finals.

A learning curve under a decaying schedule keeps improving until its last step, so "has it
stopped improving?" (a plateau rule) never fires on it, and "is it behind the median *now*?"
(``MedianPruner``) stops late-decaying schedules (wsd, step) before their decay. This pruner asks
instead where the trial will *end*: at the trial's evaluation ``k`` of ``n`` it looks at the
completed peers of the same run length, and for each the drop from its value at ``k`` to its
final value. How much a curve still drops depends on how much its LR still has to anneal, so the
drops are fitted as ``drop = a + b * anneal``, where ``anneal`` is the LR multiplier at the
evaluation minus the one at the end of the run (0 for a constant LR, ~1 for a wsd run that has
not decayed yet). The trial's forecast final value is its current value plus the fitted drop for
its own anneal; it is pruned when that forecast, less ``margin`` residual standard deviations, is
still worse than the ``percentile`` of the peers' finals.

It never prunes at a run's last evaluation (the trial has finished), before ``min_fraction`` of
the run, with fewer than ``n_startup_trials`` peers, or when the trial's anneal lies beyond every
peer's (the fit would be an extrapolation). Each decision's numbers are kept for the
``prune_reason`` user attr. A non-finite value is pruned at once.

Once the study's loss law is fitted and has passed its held-out check (``use_model``), the
forecast is the law's instead (``lrsearch.search._transfer.forecast``); the peers still set the cut.
"""

from __future__ import annotations

import bisect
import math
import threading

import numpy as np
import optuna

from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch.schedules import Schedule
from lrsearch.search._lengths import trial_fraction
from lrsearch.search.pruners._plateau import _NOMINAL_STEPS
from lrsearch.search._transfer import forecast as law_forecast
from lrsearch.search._transfer import sign_of
from lrsearch.search._transfer import study_model
from lrsearch.search._view import Finished


def anneal_left(spec: object, done: float) -> float | None:
    """The LR multiplier at fraction ``done`` of the run minus the one at its end."""
    if not isinstance(spec, dict):
        return None
    try:
        schedule = Schedule.from_dict(spec)
    except ValueError:
        return None
    t = min(_NOMINAL_STEPS - 1, max(0, round(done * _NOMINAL_STEPS) - 1))
    m = schedule.multipliers(np.array([t, _NOMINAL_STEPS - 1]), _NOMINAL_STEPS)
    return float(m[0] - m[1])


class ForecastPruner(optuna.pruners.BasePruner):
    """Prune trials forecast to end worse than their peers, judged at the same fraction of the run.

    Example:
        >>> result = lrsearch.optimize(objective, pruner=lrsearch.ForecastPruner(percentile=50))

    Trials are compared with completed peers of the same run length (``lrsearch.run_length``)
    and the same number of evaluations (``n_evals`` given to ``lrsearch.report``).

    Args:
        percentile: The cut among the peers' final values (50: the median; lower prunes more).
        margin: Residual standard deviations of the forecast the trial is given the benefit of.
        n_startup_trials: Completed peers needed before any pruning.
        min_fraction: No pruning before this fraction of the run.
        use_model: Once the study's loss law is fitted (``lrsearch.lossmodel``, from 8 completed
            runs) and has passed its held-out check (``SearchResult.loss_model``), forecast with
            it instead: the law's final value for the trial's own schedule and run length,
            shifted by the trial's distance from the law at its last evaluation; its standard
            deviation is the margin's unit.
    """

    def __init__(self, percentile: float = 50.0, margin: float = 1.0, n_startup_trials: int = 4,
                 min_fraction: float = 0.25, use_model: bool = True) -> None:
        self.use_model = bool(use_model)
        self.percentile = check_float("percentile", percentile)
        if not 0 <= self.percentile <= 100:
            raise ValueError(f"percentile must be in [0, 100] but got {percentile!r}.")
        self.margin = check_float("margin", margin)
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0 but got {margin!r}.")
        self.n_startup_trials = check_int("n_startup_trials", n_startup_trials, low=2)
        self.min_fraction = check_float("min_fraction", min_fraction)
        if not 0 <= self.min_fraction <= 1:
            raise ValueError(f"min_fraction must be in [0, 1] but got {min_fraction!r}.")
        self.reasons: dict[int, str] = {}
        self._anneal: dict[tuple[str, int, float], float | None] = {}  # specs are fixed once set
        self._index: dict[tuple[int, str], tuple[Finished, dict]] = {}  # per study: its peers, as they completed
        self._lock = threading.Lock()

    def _anneal_left(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial, done: float) -> float | None:
        key = (study.study_name, trial.number, done)
        if key not in self._anneal:
            self._anneal[key] = anneal_left(trial.user_attrs.get("schedule"), done)
        return self._anneal[key]

    def _peers(self, study: optuna.study.Study, trials: list[optuna.trial.FrozenTrial], sign: float,
               trial: optuna.trial.FrozenTrial, n_evals: int, step: int) -> tuple[list, list, list]:
        """The completed peers of ``trial`` at evaluation ``step`` (same ``n_evals``, same run
        length), in trial order: their anneal left there, their drop from there to their final
        value, and that final value. Each peer is indexed once, as it completes (``Finished``),
        by its ``n_evals`` and run fraction, so a report does not rescan the study."""
        with self._lock:
            looked, groups = self._index.setdefault((id(study._storage), study.study_name), (Finished(), {}))
            start_over, finished, _ = looked.new(trials)
            if start_over:
                groups.clear()
            for peer in finished:
                n = peer.user_attrs.get("n_evals")
                if (peer.state != optuna.trial.TrialState.COMPLETE or not isinstance(n, int) or peer.value is None
                        or not math.isfinite(peer.value)):
                    continue
                group = groups.setdefault((n, trial_fraction(peer)), {})
                for k, v in peer.intermediate_values.items():
                    x = self._anneal_left(study, peer, (k + 1) / n) if math.isfinite(v) else None
                    if x is not None:
                        cols = group.setdefault(k, ([], [], [], []))
                        at = bisect.bisect(cols[0], peer.number)
                        for col, item in zip(cols, (peer.number, x, sign * (peer.value - v), sign * peer.value)):
                            col.insert(at, item)
            mine = trial_fraction(trial)
            parts = [g[step] for (n, f), g in groups.items()
                     if n == n_evals and step in g and abs(f - mine) <= 0.02 * max(f, mine)]  # same_length
        if len(parts) == 1:
            return list(parts[0][1]), list(parts[0][2]), list(parts[0][3])
        merged = sorted(item for part in parts for item in zip(*part))  # in trial order, as one list
        return [m[1] for m in merged], [m[2] for m in merged], [m[3] for m in merged]

    def prune(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> bool:
        values = trial.intermediate_values
        if not values:
            return False
        step = max(values)
        value = values[step]
        if not math.isfinite(value):
            self.reasons[trial.number] = f"ForecastPruner: non-finite value {value} at evaluation {step}"
            return True
        n_evals = trial.user_attrs.get("n_evals")
        if not isinstance(n_evals, int) or step >= n_evals - 1 or (step + 1) / n_evals < self.min_fraction:
            return False
        done = (step + 1) / n_evals
        mine = self._anneal_left(study, trial, done)
        if mine is None:
            return False
        sign = sign_of(study)
        # the trial list Optuna cached when this trial started, as its own pruners read it
        cached = study._get_trials(deepcopy=False, use_cache=True)
        xs, drops, finals = self._peers(study, cached, sign, trial, n_evals, step)
        if len(xs) < self.n_startup_trials or mine > max(xs) + 0.05:
            return False
        x, y = np.array(xs), np.array(drops)
        if np.ptp(x) > 1e-6:
            b, a = np.polyfit(x, y, 1)
            resid = y - (a + b * x)
            dof = max(1, len(x) - 2)
        else:
            b, a = 0.0, float(np.mean(y))
            resid, dof = y - a, max(1, len(x) - 1)
        sigma = float(math.sqrt(float(np.sum(resid ** 2)) / dof))
        forecast = sign * value + a + b * mine
        how = f"anneal left {mine:.2f}, {len(xs)} peers"
        model = study_model(study, cached) if self.use_model else None
        by_law = law_forecast(model, trial, sign) if model is not None else None
        if by_law is not None:  # the loss law's forecast for this very schedule, when fitted
            forecast, sigma = by_law
            how = f"loss law fitted on {model.n_curves} runs"  # type: ignore[union-attr]
        cut = float(np.percentile(finals, self.percentile))
        if forecast - self.margin * sigma <= cut:
            return False
        self.reasons[trial.number] = (
            f"ForecastPruner: at evaluation {step + 1}/{n_evals} value {value:.6g}, forecast final "
            f"{sign * forecast:.6g} (+/- {sigma:.3g}, {how}) is worse than "
            f"the peers' {self.percentile:g}th-percentile final {sign * cut:.6g}"
        )
        return True
