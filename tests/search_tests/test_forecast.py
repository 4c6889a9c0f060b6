"""ForecastPruner on constructed curves: where a trial is heading, judged against its peers at the
same fraction of the same run length."""

from __future__ import annotations

import optuna
import pytest

import lrsearch
from lrsearch import ForecastPruner
from lrsearch import PlateauPruner
from lrsearch import Schedule


optuna.logging.set_verbosity(optuna.logging.WARNING)
N = 10
COSINE = Schedule("cosine", lr=0.1)
WSD = Schedule("wsd", lr=0.1, params={"decay_frac": 0.2})


def _cosine_curve(end: float) -> list[float]:
    """Falls from 2.0 to ``end`` following the cosine's anneal."""
    import math

    return [end + (2.0 - end) * 0.5 * (1 + math.cos(math.pi * (k + 1) / N)) ** 1.0 for k in range(N)]


def _add(study: optuna.Study, curve: list[float], schedule: Schedule, fraction: float = 1.0) -> None:
    study.add_trial(optuna.trial.create_trial(
        value=curve[-1], intermediate_values=dict(enumerate(curve)), params={}, distributions={},
        user_attrs={"schedule": schedule.to_dict(), "n_evals": N, "run_steps": round(900 * fraction),
                    "full_steps": 900}))


def _first_prune(study: optuna.Study, curve: list[float], schedule: Schedule, fraction: float = 1.0) -> int | None:
    trial = study.ask()
    trial.set_user_attr("schedule", schedule.to_dict())
    trial.set_user_attr("run_steps", round(900 * fraction))
    trial.set_user_attr("full_steps", 900)
    for step, value in enumerate(curve):
        try:
            lrsearch.report(trial, value, step, n_evals=N)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return step
    study.tell(trial, curve[-1])
    return None


def _study(pruner: optuna.pruners.BasePruner, fraction: float = 1.0) -> optuna.Study:
    study = optuna.create_study(pruner=pruner)
    for end in (0.50, 0.52, 0.54, 0.56, 0.58):
        _add(study, _cosine_curve(end), COSINE, fraction)
    return study


def test_a_steadily_improving_trial_heading_above_the_median_is_pruned() -> None:
    # improves at every evaluation (a plateau rule never fires) but is heading to 0.9 > median 0.54
    curve = _cosine_curve(0.9)
    assert all(b < a for a, b in zip(curve, curve[1:]))
    study = _study(ForecastPruner())
    step = _first_prune(study, curve, COSINE)
    assert step is not None and step < N // 2
    reason = study.trials[-1].user_attrs["prune_reason"]
    assert reason.startswith("ForecastPruner:") and "forecast final" in reason and "5 peers" in reason
    assert _first_prune(_study(PlateauPruner(n_startup_trials=3)), curve, COSINE) is None


def test_a_trial_heading_below_the_median_runs_to_the_end() -> None:
    assert _first_prune(_study(ForecastPruner()), _cosine_curve(0.45), COSINE) is None


def test_late_decaying_schedule_is_not_stopped_before_its_decay() -> None:
    # a wsd run holds its LR until 80% and then drops to the best final value of all
    wsd = [2.0 - 0.1 * k for k in range(8)] + [0.8, 0.4]
    study = _study(ForecastPruner())
    assert _first_prune(study, wsd, WSD) is None  # no peer anneals that late: no forecast
    # once such peers exist the forecast includes their late drop and the trial still runs
    study = _study(ForecastPruner())
    _add(study, [2.0 - 0.1 * k for k in range(8)] + [0.9, 0.45], WSD)
    _add(study, [2.0 - 0.1 * k for k in range(8)] + [0.85, 0.42], WSD)
    assert _first_prune(study, wsd, WSD) is None
    # MedianPruner stops it while it trails at mid-run
    median = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=3))
    for end in (0.50, 0.52, 0.54, 0.56, 0.58):
        _add(median, _cosine_curve(end), COSINE)
    assert _first_prune(median, wsd, WSD) is not None


def test_never_pruned_at_the_last_evaluation() -> None:
    # good until its last evaluation, which every rule would prune: the run has finished by then
    curve = _cosine_curve(0.45)[:-1] + [9.0]
    for pruner in (ForecastPruner(), optuna.pruners.MedianPruner(n_startup_trials=1),
                   optuna.pruners.ThresholdPruner(upper=5.0)):
        study = _study(pruner)
        assert _first_prune(study, curve, COSINE) is None
        assert study.trials[-1].state == optuna.trial.TrialState.COMPLETE
    study = _study(optuna.pruners.ThresholdPruner(upper=5.0))  # the same value one evaluation earlier
    assert _first_prune(study, curve[:-2] + [9.0, 0.4], COSINE) == N - 2


def test_peers_of_other_run_lengths_are_not_compared() -> None:
    study = _study(ForecastPruner(), fraction=1 / 3)  # peers ran a third of the length
    assert _first_prune(study, _cosine_curve(0.9), COSINE, fraction=1 / 9) is None
    assert _first_prune(study, _cosine_curve(0.9), COSINE, fraction=1 / 3) is not None


def test_maximize_direction() -> None:
    study = optuna.create_study(pruner=ForecastPruner(), direction="maximize")
    for end in (0.50, 0.52, 0.54, 0.56, 0.58):
        _add(study, [-v for v in _cosine_curve(end)], COSINE)
    assert _first_prune(study, [-v for v in _cosine_curve(0.9)], COSINE) is not None
    assert _first_prune(study, [-v for v in _cosine_curve(0.45)], COSINE) is None


def test_non_finite_values_prune_at_once() -> None:
    study = _study(ForecastPruner())
    assert _first_prune(study, [2.0, float("nan")] + [1.0] * (N - 2), COSINE) == 1


@pytest.mark.parametrize("kwargs,word", [({"percentile": 101}, "percentile"), ({"margin": -1}, "margin"),
                                         ({"n_startup_trials": 1}, "n_startup_trials"),
                                         ({"min_fraction": 2}, "min_fraction")])
def test_bad_arguments(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        ForecastPruner(**kwargs)


def test_plateau_pruner_compares_peers_of_the_same_run_length_only() -> None:
    stalled = [2.0, 1.9] + [1.9] * (N - 2)  # stalls and trails every peer
    study = _study(PlateauPruner(patience=2, n_startup_trials=3), fraction=1 / 3)
    assert _first_prune(study, stalled, COSINE, fraction=1 / 9) is None
    assert _first_prune(study, stalled, COSINE, fraction=1 / 3) is not None
