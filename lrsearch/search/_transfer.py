"""The loss model fitted to a study's own trials, and what the search does with it: rank runs for
promotion by their predicted full-length value, forecast a running trial's final value, and choose
the schedule for a run of any length (``SearchResult.schedule_for``).

A trial's curve is read from its user attrs (``schedule``, ``run_steps``, ``n_evals``) and its
intermediate values: evaluation ``k`` of ``n_evals`` sits after ``round((k + 1) * run_steps /
n_evals)`` optimizer steps, as ``lrsearch.train`` evaluates, or after ``min(run_steps, (k + 1) *
eval_every)`` when the trial has the user attr ``eval_every`` (a ``Task`` with ``eval_every``). A maximized metric is modelled negated.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any

import optuna

from lrsearch.lossmodel import Curve
from lrsearch.lossmodel import LossModel
from lrsearch.lossmodel import Prediction
from lrsearch.lossmodel import predictable
from lrsearch.schedules import Schedule
from lrsearch.search._lengths import trial_fraction
from lrsearch.search._view import Finished


MIN_CURVES = 8  # completed runs before the search fits a model
#: The search acts on the law (pruning, promotion) only when it predicted the study's longest runs'
#: final values from the shorter runs within this median relative error (``holdout_error``).
TRUST = 0.02
#: The largest exponent by which the law may move a peak LR with the run length (lr ~ T ** -shift):
#: reported best-LR exponents lie within [0, 0.5] (convex theory: 0.5; our runs: median 0.17).
MAX_SHIFT = 0.5
_states = optuna.trial.TrialState


def sign_of(study: optuna.Study) -> float:
    return -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0


def trial_curve(trial: optuna.trial.FrozenTrial, sign: float = 1.0) -> Curve | None:
    """The curve a trial reported, or ``None`` when it lacks a schedule, a run length or evaluations."""
    attrs = trial.user_attrs
    spec, run, n = attrs.get("schedule"), attrs.get("run_steps", attrs.get("full_steps")), attrs.get("n_evals")
    if not isinstance(spec, dict) or not isinstance(run, int) or not isinstance(n, int) or n < 1 or run < 1:
        return None
    items = sorted((k, v) for k, v in trial.intermediate_values.items() if 0 <= k < n and math.isfinite(v))
    if not items:
        return None
    try:
        schedule = Schedule.from_dict(spec)
    except ValueError:
        return None
    if not predictable(schedule):
        return None
    every = attrs.get("eval_every")
    if isinstance(every, int) and every >= 1:
        steps = tuple(min(run, (k + 1) * every) for k, _ in items)
    else:
        steps = tuple(min(run, max(1, round((k + 1) * run / n))) for k, _ in items)
    return Curve(schedule, run, steps, tuple(sign * v for _, v in items))


def study_curves(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> list[Curve]:
    """Curves of the finished (completed and pruned) trials, in trial order."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    sign = sign_of(study)
    curves = [trial_curve(t, sign) for t in trials if t.state in (_states.COMPLETE, _states.PRUNED)]
    return [c for c in curves if c is not None]


#: The study's law is refitted when its completed runs have grown by this factor since the last
#: fit (8, 16, 32, ...): a fit costs about as much as the runs it reads, so its cost per trial
#: stays flat as the study grows (studies/bench_overhead.py).
REFIT_GROWTH = 2.0
#: A fit reads at most this many curves, evenly spaced in trial order, so that one fit's cost (about
#: linear in its curves) is bounded however large the study grows.
MAX_FIT_CURVES = 256


class StudyModel:
    """A study's loss model, refitted as trials finish (each time the completed runs have grown by
    ``REFIT_GROWTH``): cheap to ask on every report. Thread-safe."""

    def __init__(self, laws: Sequence[str] = ("area",)) -> None:
        self.laws = tuple(laws)
        self._model: LossModel | None = None
        self._at = 0
        self._lock = threading.Lock()
        self._looked, self._complete = Finished(), 0

    def get(self, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> LossModel | None:
        trials = study.get_trials(deepcopy=False) if trials is None else trials
        with self._lock:
            start_over, finished, _ = self._looked.new(trials)  # counted as they finish, not every call
            self._complete = (0 if start_over else self._complete) + sum(t.state == _states.COMPLETE for t in finished)
            complete = self._complete
            if complete < MIN_CURVES:
                return self._model
            if self._model is None or complete >= REFIT_GROWTH * self._at:
                curves = study_curves(study, trials)
                if len(curves) > MAX_FIT_CURVES:
                    picks = {round(i * (len(curves) - 1) / (MAX_FIT_CURVES - 1)) for i in range(MAX_FIT_CURVES)}
                    curves = [c for i, c in enumerate(curves) if i in picks]
                try:
                    self._model = LossModel(laws=self.laws, overfit=False).fit(curves)
                except ValueError:
                    return self._model
                self._at = complete
            return self._model


_MODELS: dict[tuple[int, str], StudyModel] = {}
_MODELS_LOCK = threading.Lock()


def study_model(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> LossModel | None:
    """The study's shared online model, the one the promotion rule and ``ForecastPruner`` read:
    ``None`` until ``MIN_CURVES`` runs completed, and while it is not trusted (its held-out
    extrapolation from the shorter runs to the longest missed by more than ``TRUST``)."""
    key = (id(study._storage), study.study_name)
    with _MODELS_LOCK:
        holder = _MODELS.setdefault(key, StudyModel())
    model = holder.get(study, trials)
    return model if trusted(model) else None


def trusted(model: LossModel | None) -> bool:
    return model is not None and model.holdout_error is not None and model.holdout_error <= TRUST


def forecast(model: LossModel, trial: optuna.trial.FrozenTrial, sign: float) -> tuple[float, float] | None:
    """A running trial's final value (in the model's sign) and its std: the model's prediction for
    its schedule and run length, shifted by how far its last evaluation sits from the model's."""
    curve = trial_curve(trial, sign)
    if curve is None:
        return None
    try:
        now, final = model.predict_curve(curve.schedule, curve.total_steps, [curve.steps[-1], curve.total_steps])
    except ValueError:  # no finite prediction for this schedule: no forecast
        return None
    return curve.values[-1] - now.value + final.value, final.std


@dataclass(frozen=True)
class Choice:
    """What ``schedule_for`` chose: the schedule, the prediction, and where it came from.

    ``predicted`` is NaN unless it can be trusted (``trusted``: the law passed its held-out check,
    ``holdout_error <= TRUST``, and its value is finite); ``prediction`` says it in words, and
    ``law_predicted`` keeps the law's own value whatever its trust (``None`` without a law)."""

    schedule: Schedule
    predicted: Prediction
    total_steps: int
    source_trial: int
    source_lr: float
    lr_shift: float | None
    by: str = "law"  # "law": ranked and LR moved by the loss law; "rule": the best run, LR by the rule
    trusted: bool = False
    holdout_error: float | None = None
    law_predicted: Prediction | None = None

    def judged(self, model: LossModel | None) -> Choice:
        """This choice with ``model``'s trust applied (``SearchResult.choice_for``)."""
        ok = trusted(model) and math.isfinite(self.predicted.value) and math.isfinite(self.predicted.std)
        return replace(self, predicted=self.predicted if ok else Prediction(math.nan, math.nan), trusted=ok,
                       holdout_error=None if model is None else model.holdout_error,
                       law_predicted=None if model is None else self.predicted)

    @property
    def prediction(self) -> str:
        """The predicted final value in words: a number only when it can be trusted, and then with the
        error it claims (the interval's half-width; the held-out check measures only the study's own
        lengths, and a longer target misses by more: ``EXTRAPOLATION_FLOOR``)."""
        if self.trusted:
            low, high = self.predicted.interval()
            half = (high - low) / 2 / abs(self.predicted.value) if self.predicted.value else math.inf
            return f"{self.predicted.value:.4g} +/- {half:.0%} (interval {low:.4g} to {high:.4g})"
        if self.law_predicted is None:
            return "no prediction (no loss law fitted)"
        if not (math.isfinite(self.law_predicted.value) and math.isfinite(self.law_predicted.std)):
            return "no prediction (the law's value is not finite)"
        if self.holdout_error is None:
            return "untrusted (no held-out error: the runs have one length)"
        if not math.isfinite(self.holdout_error):
            return "untrusted (its held-out predictions were not finite)"
        return f"untrusted (held-out error {self.holdout_error:.1%}, above the {TRUST:.0%} it must meet)"

    @property
    def how(self) -> str:
        """How the choice was made, in words."""
        if self.by == "law":
            return f"the loss law ranked the top runs and moved trial {self.source_trial}'s peak LR"
        return f"trial {self.source_trial}'s schedule, peak LR moved by the rule (the law is not trusted)"

    def record(self, model: LossModel | None) -> dict[str, Any]:
        """The ``chosen_for`` entry of an exported spec: ``prediction`` in words, and the numbers
        ``predicted`` and ``std`` only when trusted."""
        out: dict[str, Any] = {"total_steps": self.total_steps, "by": self.by, "source_trial": self.source_trial,
                               "lr_shift": self.lr_shift, "trusted": self.trusted, "prediction": self.prediction}
        if model is not None:
            held = model.holdout_error
            out.update(law=model.describe()["law"], holdout_error=held if held is None or math.isfinite(held) else None)
        if self.trusted:
            out.update(predicted=self.predicted.value, std=self.predicted.std)
        return out


def candidates(study: optuna.Study, share: float = 0.25,
               least: int = 3) -> list[tuple[optuna.trial.FrozenTrial, Curve]]:
    """The completed runs of the longest length the study ran and their curves, best first: the top
    ``share`` (at least ``least``). The law re-ranks these and moves their LR; it does not pick a
    schedule the runs themselves ranked low (its errors are largest far from the best)."""
    sign = sign_of(study)
    done = [(t, c) for t in study.get_trials(deepcopy=False, states=(_states.COMPLETE,))
            if t.value is not None and math.isfinite(t.value) and (c := trial_curve(t, sign)) is not None]
    if not done:
        return []
    longest = max(trial_fraction(t) for t, _ in done)
    done = sorted(((t, c) for t, c in done if trial_fraction(t) >= longest * 0.98), key=lambda tc: sign * tc[0].value)
    return done[:max(least, math.ceil(share * len(done)))]


def _by_shift(curve: Curve, total_steps: int, lr_shift: float) -> float:
    return curve.schedule.lr * (total_steps / curve.total_steps) ** -lr_shift


def by_rule(study: optuna.Study, model: LossModel | None, total_steps: int, lr_shift: float) -> Choice | None:
    """The best completed run of the longest length, its peak LR moved by ``lr_shift`` (predicted
    by ``model`` if there is one; NaN without)."""
    picked = candidates(study, share=0.0, least=1)
    if not picked:
        return None
    trial, curve = picked[0]
    lr = _by_shift(curve, total_steps, lr_shift)
    pred = Prediction(math.nan, math.nan)  # none without a model, or where the law has no finite value
    if model is not None:
        with contextlib.suppress(ValueError):
            pred = model.predict(curve.schedule.replace(lr=lr), total_steps)
    return Choice(curve.schedule.replace(lr=lr), Prediction(sign_of(study) * pred.value, pred.std), total_steps,
                  trial.number, curve.schedule.lr, lr_shift if curve.total_steps != total_steps else None, "rule")


def choose(study: optuna.Study, model: LossModel, total_steps: int, lr_shift: float) -> Choice | None:
    """The schedule with the lowest predicted final value at ``total_steps`` (in the model's sign:
    the best for a maximized metric too): each top run's schedule (its family and shape kept) with
    its peak LR moved to the model's best, or by ``lr_shift`` where the law's best is off its data."""
    sign = sign_of(study)
    best: tuple[float, Choice] | None = None
    seen: set[str] = set()
    for t, curve in candidates(study):
        shape = curve.schedule.replace(lr=1.0).to_json()
        if shape in seen:
            continue
        seen.add(shape)
        ran, lr0 = curve.total_steps, curve.schedule.lr
        # the peak LR moves against the length, by an exponent between 0 and MAX_SHIFT (the law picks it)
        found = model.best_lr(curve.schedule, total_steps, within=(lr0, lr0 * (total_steps / ran) ** -MAX_SHIFT))
        if found is None:  # the law's optimum is off its data: the default rule moves the LR
            lr = _by_shift(curve, total_steps, lr_shift)
            try:
                found = lr, model.predict(curve.schedule.replace(lr=lr), total_steps)
            except ValueError:  # no finite prediction for this schedule: not a candidate
                continue
        lr, pred = found
        if best is None or pred.value < best[0]:
            shift = -math.log(lr / lr0) / math.log(total_steps / ran) if ran != total_steps and lr0 > 0 else None
            best = pred.value, Choice(curve.schedule.replace(lr=lr), Prediction(sign * pred.value, pred.std),
                                      total_steps, t.number, lr0, shift)
    return None if best is None else best[1]
