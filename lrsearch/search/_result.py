"""``SearchResult``: the best schedules of a study, as data first (tables, JSON), then plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import optuna

from lrsearch._checks import check_file_path
from lrsearch._checks import check_int
from lrsearch.lossmodel import Curve
from lrsearch.lossmodel import LossModel
from lrsearch.lossmodel import Prediction
from lrsearch.optim import OptimizerSpec
from lrsearch.schedules import Schedule
from lrsearch.search._fidelity import LR_SHIFT
from lrsearch.search._lengths import range_test_cost
from lrsearch.search._lengths import spent
from lrsearch.search._lengths import trial_cost
from lrsearch.search._lengths import trial_fraction
from lrsearch.search._transfer import Choice
from lrsearch.search._transfer import by_rule
from lrsearch.search._transfer import choose
from lrsearch.search._transfer import sign_of
from lrsearch.search._transfer import trusted
from lrsearch.search._transfer import study_curves


if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from lrsearch.search._space import SearchSpace

_COMPLETE, _PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


def trial_schedule(trial: optuna.trial.FrozenTrial) -> Schedule | None:
    """The schedule a trial ran, rebuilt from its ``schedule`` user attr (``None`` if absent)."""
    spec = trial.user_attrs.get("schedule")
    return Schedule.from_dict(spec) if isinstance(spec, dict) else None


def trial_optimizer(trial: optuna.trial.FrozenTrial) -> OptimizerSpec | None:
    """The optimizer a trial sampled (``SearchSpace(optimizer=...)``), from its ``optimizer`` user attr."""
    spec = trial.user_attrs.get("optimizer")
    return OptimizerSpec.from_dict(spec) if isinstance(spec, dict) else None


def run_label(fraction: float) -> str:
    """``full`` or ``1/9``-style labels of a run's length."""
    if fraction >= 1 - 1e-9:
        return "full"
    inverse = 1 / fraction
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 0.05 * inverse else f"{fraction:.3g}"


def key_params(schedule: Schedule) -> str:
    """Non-default params and the warmup, for tables."""
    parts = [schedule.key_params()] if schedule.key_params() else []
    if schedule.warmup["frac"] > 0:
        parts.append(f"warmup={schedule.warmup['shape']}:{schedule.warmup['frac']:.3f}")
    return ", ".join(parts)


class SearchResult:
    """The outcome of ``lrsearch.optimize``: the study and what it found.

    Attributes:
        study: The Optuna study (in its storage: open it with optuna-dashboard).
        space: The ``SearchSpace`` that was searched.
        interrupted: ``True`` when a Ctrl-C ended the search early: this is the result so far;
            calling ``optimize`` again with the same ``study_name`` and ``storage`` resumes it.
    """

    def __init__(self, study: optuna.Study, space: SearchSpace | None = None, *, interrupted: bool = False) -> None:
        self.study = study
        self.space = space
        self.interrupted = interrupted
        self._model: tuple[int, LossModel] | None = None

    def __repr__(self) -> str:
        """One line: the best full-length run (family, value, peak LR, trial), the trials, the budget spent."""
        try:
            best, schedule = self.best_trial, self.best_schedule
            found = (f"{schedule.family} {self.best_value:.4g} at peak LR {schedule.lr:.3g} (trial {best.number}, "
                     f"{run_label(trial_fraction(best))} run)")
        except ValueError:
            found = "none yet"
        budget = self.study.user_attrs.get("budget")
        of = f" of {budget:g}" if isinstance(budget, (int, float)) else ""
        return (f"SearchResult(study={self.study.study_name!r}, best={found}, trials: {self.counts_text() or 'none'}, "
                f"spent {self.spent:.2f}{of} full runs{', interrupted' if self.interrupted else ''})")

    @property
    def _complete(self) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self.study.get_trials(deepcopy=False, states=(_COMPLETE,))
                if t.value is not None and math.isfinite(t.value) and "schedule" in t.user_attrs]

    def _ranked(self, trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
        """Longest runs first (values of shorter runs do not compare), then by value."""
        maximize = self.study.direction == optuna.study.StudyDirection.MAXIMIZE
        return sorted(trials, key=lambda t: (-round(trial_fraction(t), 6),
                                             -t.value if maximize else t.value))  # type: ignore[operator]

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial:
        """The best completed trial among the longest runs (full length once one has finished)."""
        trials = self._complete
        if not trials:
            raise ValueError(f"study {self.study.study_name!r} has no completed trial with a schedule yet.")
        return self._ranked(trials)[0]

    @property
    def spent(self) -> float:
        """Full-run equivalents of training the study has spent (range test included)."""
        return spent(self.study)

    def spent_trace(self) -> list[tuple[float, float]]:
        """``(budget spent, best full-length value so far)`` after each finished trial, in order.

        The best is ``inf`` (``-inf`` when maximizing) until a full-length trial completes; the
        range test's cost is counted from the start.
        """
        maximize = self.study.direction == optuna.study.StudyDirection.MAXIMIZE
        trials = [t for t in self.study.get_trials(deepcopy=False) if t.state.is_finished()]
        trials.sort(key=lambda t: (t.datetime_complete is None, t.datetime_complete or 0, t.number))
        used, best, out = range_test_cost(self.study), -math.inf if maximize else math.inf, []
        for t in trials:
            used += trial_cost(t)
            if t.state == _COMPLETE and t.value is not None and math.isfinite(t.value) and trial_fraction(t) >= 1:
                best = max(best, t.value) if maximize else min(best, t.value)
            out.append((used, best))
        return out

    @property
    def best_schedule(self) -> Schedule:
        """The best completed trial's schedule."""
        return Schedule.from_dict(self.best_trial.user_attrs["schedule"])  # _complete keeps only these

    @property
    def best_optimizer(self) -> OptimizerSpec | None:
        """The best trial's optimizer when the search sampled one (``OptimizerSpace``), else ``None``."""
        return trial_optimizer(self.best_trial)

    @property
    def best_value(self) -> float:
        return float(self.best_trial.value)  # type: ignore[arg-type]

    def top(self, k: int = 5, *, include_pruned: bool = False) -> list[dict[str, Any]]:
        """The ``k`` best trials as rows: number, family, lr, key params, value, evals run, state,
        run length (``run``: ``full``, ``1/3``, ...).

        Completed trials are ranked longest runs first, then by value; with ``include_pruned``
        pruned ones follow, ranked the same way by their last reported value.
        """
        k = check_int("k", k, low=1)
        ranked = self._ranked(self._complete)
        if include_pruned:
            pruned = [t for t in self.study.get_trials(deepcopy=False, states=(_PRUNED,))
                      if t.value is not None and "schedule" in t.user_attrs]
            ranked += self._ranked(pruned)
        rows = []
        for t in ranked[:k]:
            schedule = Schedule.from_dict(t.user_attrs["schedule"])  # ranked trials all carry one
            optimizer = trial_optimizer(t)
            params = ", ".join(p for p in (key_params(schedule), optimizer and optimizer.describe()) if p)
            rows.append({
                "number": t.number, "family": schedule.family, "lr": schedule.lr,
                "params": params, "value": t.value,
                "evals_run": len(t.intermediate_values), "state": t.state.name.lower(),
                "run": run_label(trial_fraction(t)),
                "seed": t.user_attrs.get("seed", ""),
            })
        return rows

    def table(self, k: int = 5, *, include_pruned: bool = False) -> str:
        """``top(k)`` as a Markdown table."""
        lines = ["| # | trial | family | peak lr | key params | run | value | evals | state |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for i, r in enumerate(self.top(k, include_pruned=include_pruned), 1):
            lines.append(f"| {i} | {r['number']} | {r['family']} | {r['lr']:.3g} | {r['params'] or '-'} | "
                         f"{r['run']} | {r['value']:.4g} | {r['evals_run']} | {r['state']} |")
        return "\n".join(lines)

    def counts(self) -> dict[str, int]:
        """Trials by state (complete, pruned, fail, running, waiting; ``duplicate``: a seed attempt
        pruned before it trained because another attempt of that seed ran)."""
        out: dict[str, int] = {}
        for t in self.study.get_trials(deepcopy=False):
            state = "duplicate" if "duplicate_of" in t.user_attrs else t.state.name.lower()
            out[state] = out.get(state, 0) + 1
        return out

    def counts_text(self) -> str:
        """``counts()`` as one line: ``"9 complete, 8 pruned"``."""
        return ", ".join(f"{n} {state}" for state, n in sorted(self.counts().items()))

    def curves(self) -> list[Curve]:
        """Every finished trial's reported curve (schedule, run length, steps, values; a maximized
        metric negated): what ``loss_model`` is fitted to."""
        return study_curves(self.study)

    def loss_model(self) -> LossModel:
        """The loss law fitted to every finished trial's curve (refitted when trials were added):
        the form (``area`` or ``multipower``, with or without an over-fitting term) that best
        predicts the longest runs from the shorter ones; ``holdout_error`` is that error."""
        curves = study_curves(self.study)
        if self._model is None or self._model[0] != len(curves):
            self._model = (len(curves), LossModel().fit(curves))
        return self._model[1]

    def predict(self, schedule: Schedule, total_steps: int) -> Prediction:
        """``schedule``'s predicted final value for a run of ``total_steps`` optimizer steps, with
        its standard deviation (the study's direction kept: a maximized metric comes back as is);
        ``.interval()`` is its interval. A number whatever the law's trust: ``choice_for`` says it."""
        pred = self.loss_model().predict(schedule, total_steps)
        return Prediction(sign_of(self.study) * pred.value, pred.std)

    def choice_for(self, total_steps: int, law: bool | None = None) -> Choice:
        """``schedule_for`` with its prediction and origin (``by``, trial, its peak LR, the shift).

        The prediction is a number only when it can be trusted (the law passed its held-out check
        and its value is finite); else ``predicted`` is NaN and ``prediction`` says why in words
        (``"untrusted (held-out error 32.0%, ...)"``, ``"no prediction (...)"``)."""
        total_steps = check_int("total_steps", total_steps, low=1)
        if law not in (None, True, False):
            raise ValueError(f"law must be None, True or False but got {law!r}.")
        try:
            model: LossModel | None = self.loss_model()
        except ValueError:  # too few runs for a law: the rule still chooses
            if law:
                raise
            model = None
        rungs = self.study.user_attrs.get("rungs")
        shift = float(rungs.get("lr_shift", LR_SHIFT) if isinstance(rungs, dict) else LR_SHIFT)
        use_law = trusted(model) if law is None else law
        picked = (choose if use_law else by_rule)(self.study, model, total_steps, shift)
        if picked is None and use_law and law is None:  # the law has no finite value for any candidate
            picked = by_rule(self.study, model, total_steps, shift)
        if picked is None:
            raise ValueError(f"study {self.study.study_name!r} has no completed trial with a predictable schedule.")
        return picked.judged(model)

    def schedule_for(self, total_steps: int, law: bool | None = None) -> Schedule:
        """The best schedule for a run of ``total_steps`` optimizer steps.

        By the loss law (``law=True``): every top completed run's schedule with its peak LR moved
        to the law's best at that length, and the one with the lowest predicted final value (so the
        law picks the family too). By the rule (``law=False``): the best run of the longest length,
        its peak LR times ``(total_steps / its steps) ** -lr_shift`` (``Rungs.lr_shift``, measured).
        ``None`` (default): the law when it passed its held-out check (it predicted the longest runs
        from the shorter ones within 2%), else the rule. ``choice_for`` says which was used.
        """
        return self.choice_for(total_steps, law).schedule

    def export_best(self, path: str | Path, total_steps: int | None = None, law: bool | None = None) -> Path:
        """Write the best schedule's spec as JSON; ``Schedule.from_json`` rebuilds it. With
        ``total_steps``, the schedule chosen for that run length (``schedule_for``), the spec's
        ``chosen_for`` recording the length, the prediction in words (``prediction``; the numbers
        ``predicted`` and ``std`` only when ``trusted``) and the model's error estimate.
        When the search sampled optimizers, the best trial's is the key ``optimizer`` (a note that
        ``Schedule`` ignores; ``OptimizerSpec.from_dict`` reads it). The file's folder must exist, as
        for ``open`` (only lrsearch's own ``studies/`` is made when missing)."""
        path = Path(check_file_path("path", path, create=True))  # as open: a missing folder is an error
        if total_steps is None:
            data = self.best_schedule.to_dict()
        else:
            choice = self.choice_for(total_steps, law)
            data = {**choice.schedule.to_dict(), "chosen_for": choice.record(self._model[1] if self._model else None)}
        optimizer = self.best_optimizer
        if optimizer is not None:
            data["optimizer"] = optimizer.to_dict()
        path.write_text(json.dumps(data, indent=2) + "\n")
        return path

    def plot_schedules(self, k: int = 5, total_steps: int = 1000, **kwargs: Any) -> Figure:
        """The ``k`` best completed trials' LR curves over a run of ``total_steps`` (at most 10):
        full-length runs solid with their values, short screening runs dashed and labelled with
        their length (``1/3 run``)."""
        from lrsearch.reports import plot_runs

        runs = []
        for r in self.top(k):
            label = f"#{r['number']} {r['family']} {r['value']:.4g}" + ("" if r["run"] == "full" else f" ({r['run']} run)")
            runs.append((label, trial_schedule(self.study.trials[r["number"]]), r["run"]))
        return plot_runs(runs, total_steps, **kwargs)

    def plot_history(self, **kwargs: Any) -> Figure:
        """Each trial's value by trial number, coloured by state, with the best so far."""
        from lrsearch.reports import plot_history

        return plot_history(self.study, **kwargs)
