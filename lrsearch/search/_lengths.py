"""What a trial trained, read from its user attrs: its fraction of the full run, which rung it ran
at, what it cost in full-run equivalents, and what the study has spent. Every trial records
``fidelity``, ``run_steps``, ``full_steps`` and ``n_evals``, so these counts are rebuilt from the
storage and survive restarts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna


_states = optuna.trial.TrialState
_EPS = 1e-9


def trial_fraction(trial: optuna.trial.FrozenTrial) -> float:
    """The fraction of a full run ``trial`` was set to train (1.0 unless it used ``run_length``)."""
    attrs = trial.user_attrs
    run, full = attrs.get("run_steps"), attrs.get("full_steps")
    if isinstance(run, int) and isinstance(full, int) and full > 0:
        return min(1.0, run / full)
    return 1.0


def same_length(a: optuna.trial.FrozenTrial, b: optuna.trial.FrozenTrial) -> bool:
    """Whether two trials ran the same fraction of the full run (their values compare)."""
    fa, fb = trial_fraction(a), trial_fraction(b)
    return abs(fa - fb) <= 0.02 * max(fa, fb)


def planned_fraction(trial: optuna.trial.FrozenTrial) -> float:
    """The fraction a trial will train: its ``run_length`` if known, else the one it was given."""
    if "run_steps" in trial.user_attrs:
        return trial_fraction(trial)
    fidelity = trial.user_attrs.get("fidelity", 1.0)
    return float(fidelity) if isinstance(fidelity, (int, float)) and 0 < fidelity <= 1 else 1.0


def trial_cost(trial: optuna.trial.FrozenTrial) -> float:
    """Full-run equivalents ``trial`` trained: its fraction times how far through its run it got."""
    fraction = trial_fraction(trial)
    if trial.state == _states.COMPLETE:
        return fraction
    n_evals = trial.user_attrs.get("n_evals")
    if trial.intermediate_values and isinstance(n_evals, int) and n_evals > 0:
        return fraction * min(1.0, (max(trial.intermediate_values) + 1) / n_evals)
    return fraction if trial.state == _states.PRUNED and trial.intermediate_values else 0.0


def full_steps_of(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> int | None:
    """Steps of a full run, as the study knows them (set by a ``Task``, or by a ``run_length`` call)."""
    known = study.user_attrs.get("full_steps")
    if isinstance(known, int) and known > 0:
        return known
    for t in trials if trials is not None else study.get_trials(deepcopy=False):
        if isinstance(t.user_attrs.get("full_steps"), int):
            return int(t.user_attrs["full_steps"])
    return None


def range_test_cost(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> float:
    """The range test's steps in full-run equivalents (0 until a full run's length is known)."""
    steps, full = study.user_attrs.get("range_test_steps", 0), full_steps_of(study, trials)
    return steps / full if steps and full else 0.0


def spent(study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None, *,
          committed: bool = False) -> float:
    """Full-run equivalents the study has trained: finished trials and the range test; with
    ``committed``, also what waiting and running trials will train (their planned fraction)."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    return range_test_cost(study, trials) + sum(
        trial_cost(t) if t.state.is_finished() else planned_fraction(t) if committed else 0.0 for t in trials)


def _better(study: optuna.Study) -> Any:
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return (lambda t: -t.value) if maximize else (lambda t: t.value)  # type: ignore[operator]


def rung_of(trial: optuna.trial.FrozenTrial, fractions: Sequence[float]) -> int | None:
    """Index of the rung whose fraction ``trial`` trained (``None`` when it matches none)."""
    fraction, given = trial_fraction(trial), trial.user_attrs.get("fidelity")
    for i, f in enumerate(fractions):
        if abs(fraction - f) <= max(0.02 * f, 1.0 / max(1, trial.user_attrs.get("full_steps", 1))):
            return i
    for i, f in enumerate(fractions):  # run_length(epochs=...) rounds to whole epochs: 3 of 10 at 1/3
        if isinstance(given, (int, float)) and abs(given - f) <= _EPS and abs(fraction - f) <= 0.5 * f:
            return i
    return None
