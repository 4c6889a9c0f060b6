"""The study's own loss law in the search: schedule_for, predict, export, the law-based forecast
of ForecastPruner and the promotion ranking, on objectives that follow a known law (no training)."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

import lrsearch
from lrsearch import Schedule
from lrsearch.search._fidelity import Budget
from lrsearch.search._fidelity import Rungs
from lrsearch.search._transfer import choose
from lrsearch.search._transfer import study_model
from tests.lossmodel_tests.test_lossmodel import N_EVALS
from tests.lossmodel_tests.test_lossmodel import true_loss


optuna.logging.set_verbosity(optuna.logging.WARNING)
FULL = 100
SPACE = dict(families=["cosine", "wsd", "linear", "constant"], lr=(0.02, 0.3))


def law_objective(sign: float = 1.0):  # noqa: ANN201
    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        steps = lrsearch.run_length(trial, FULL)
        evals = np.array([round((k + 1) * steps / N_EVALS) for k in range(N_EVALS)])
        values = sign * true_loss(schedule, steps, evals)
        for k, v in enumerate(values):
            lrsearch.report(trial, float(v), k, n_evals=N_EVALS)
        return float(values[-1])

    return objective


def search(sign: float = 1.0, budget: float = 12) -> lrsearch.SearchResult:
    return lrsearch.optimize(law_objective(sign), budget=budget, space=lrsearch.SearchSpace(**SPACE),
                             direction="maximize" if sign < 0 else "minimize",
                             storage=optuna.storages.InMemoryStorage(), artifacts=None, heartbeat_interval=None)


@pytest.fixture(scope="module")
def result() -> lrsearch.SearchResult:
    return search()


def test_schedule_for_a_longer_run_beats_reusing_the_short_best(result: lrsearch.SearchResult) -> None:
    target = 3 * FULL
    chosen, reused = result.schedule_for(target), result.best_schedule
    at = np.array([target])
    assert true_loss(chosen, target, at)[0] <= true_loss(reused, target, at)[0] + 1e-9
    choice = result.choice_for(target)
    assert choice.schedule == chosen
    assert choice.predicted.value == pytest.approx(true_loss(chosen, target, at)[0], rel=0.02)
    assert choice.lr_shift is None or choice.lr_shift > -0.5
    assert choice.by == "law"  # the law passed its held-out check on curves it generated


def test_the_rule_moves_the_best_runs_peak_lr(result: lrsearch.SearchResult) -> None:
    choice = result.choice_for(3 * FULL, law=False)
    best = result.best_trial
    assert choice.by == "rule" and choice.source_trial == best.number
    assert choice.schedule == result.best_schedule.replace(lr=result.best_schedule.lr * 3 ** -0.16)
    assert result.choice_for(3 * FULL, law=True).by == "law"
    with pytest.raises(ValueError, match="law must be None, True or False"):
        result.choice_for(300, law="yes")  # type: ignore[arg-type]


def test_predict_and_curves(result: lrsearch.SearchResult) -> None:
    curves = result.curves()
    assert len(curves) >= 8
    for c in curves:
        assert max(c.steps) <= c.total_steps <= FULL
    s = Schedule("cosine", lr=0.1, warmup={"frac": 0.05})
    pred = result.predict(s, 300)
    assert pred.value == pytest.approx(true_loss(s, 300, np.array([300]))[0], rel=0.02)
    assert pred.std >= 0
    with pytest.raises(ValueError, match="total_steps"):
        result.schedule_for(0)


def test_export_records_the_run_length_it_was_chosen_for(result: lrsearch.SearchResult, tmp_path) -> None:  # noqa: ANN001
    path = result.export_best(tmp_path / "spec.json", total_steps=500)
    data = json.loads(path.read_text())
    assert data["chosen_for"]["total_steps"] == 500
    assert data["chosen_for"]["law"] in lrsearch.lossmodel.LAWS
    assert Schedule.from_json(path.read_text()) == result.schedule_for(500)
    plain = json.loads(result.export_best(tmp_path / "best.json").read_text())
    assert "chosen_for" not in plain and Schedule.from_dict(plain) == result.best_schedule
    with pytest.raises(ValueError, match="chosen_for"):
        Schedule.from_dict({**plain, "chosen_for": 3})


def test_a_maximized_metric_comes_back_in_its_own_sign() -> None:
    result = search(sign=-1.0, budget=8)
    s = Schedule("cosine", lr=0.1, warmup={"frac": 0.05})
    assert result.predict(s, 300).value == pytest.approx(-true_loss(s, 300, np.array([300]))[0], rel=0.02)
    assert result.choice_for(300).predicted.value < 0


def _add(study: optuna.Study, schedule: Schedule, steps: int = FULL, factor: float = 1.0) -> None:
    evals = np.array([round((k + 1) * steps / N_EVALS) for k in range(N_EVALS)])
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    values = sign * factor * true_loss(schedule, steps, evals)
    study.add_trial(optuna.trial.create_trial(
        value=float(values[-1]), intermediate_values={k: float(v) for k, v in enumerate(values)}, params={},
        distributions={}, user_attrs={"schedule": schedule.to_dict(), "n_evals": N_EVALS, "run_steps": steps,
                                      "full_steps": FULL}))


def _peers(study: optuna.Study, noise: float = 0.0) -> None:
    """Completed runs at 1/3 and full length; ``noise`` scales each run's curve at random."""
    rng = np.random.default_rng(0)
    for steps in (FULL // 3, FULL):
        for family in ("cosine", "wsd", "linear", "constant"):
            for lr in (0.06, 0.08, 0.1):
                _add(study, Schedule(family, lr=lr, warmup={"frac": 0.05}), steps, 1 + noise * rng.standard_normal())


def test_the_law_picks_the_same_schedule_for_a_maximized_metric() -> None:
    picks = []
    for direction in ("minimize", "maximize"):
        study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction=direction)
        _peers(study)  # the same runs; a maximized study reports the negated loss
        choice = lrsearch.SearchResult(study).choice_for(3 * FULL, law=True)
        picks.append((choice.schedule, choice.predicted.value))
    assert picks[0][0] == picks[1][0]
    assert picks[1][1] == pytest.approx(-picks[0][1])


class _RanksFamilies:
    """A stand-in law: predicts 1.0 for cosine and 0.5 for any other family (lower is better)."""

    def best_lr(self, schedule: Schedule, total_steps: int, within=None):  # noqa: ANN001, ANN201
        return schedule.lr, lrsearch.Prediction(1.0 if schedule.family == "cosine" else 0.5, 0.0)


def test_choose_takes_the_law_s_lowest_prediction_in_either_direction() -> None:
    for direction in ("minimize", "maximize"):
        study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), direction=direction)
        _add(study, Schedule("cosine", lr=0.08, warmup={"frac": 0.05}), factor=0.5)  # the best observed run
        _add(study, Schedule("wsd", lr=0.08, warmup={"frac": 0.05}))
        choice = choose(study, _RanksFamilies(), 3 * FULL, 0.16)  # type: ignore[arg-type]
        assert choice.schedule.family == "wsd", direction
        assert choice.predicted.value == (0.5 if direction == "minimize" else -0.5)


def test_forecast_pruner_uses_the_law_once_fitted() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), pruner=lrsearch.ForecastPruner())
    _peers(study)
    assert study_model(study) is not None
    trial = study.ask()
    schedule = Schedule("wsd", lr=0.08, warmup={"frac": 0.05})
    trial.set_user_attr("schedule", schedule.to_dict())
    trial.set_user_attr("run_steps", FULL)
    trial.set_user_attr("full_steps", FULL)
    evals = np.array([round((k + 1) * FULL / N_EVALS) for k in range(N_EVALS)])
    values = 1.3 * true_loss(schedule, FULL, evals)  # well behind the law for its schedule
    with pytest.raises(optuna.TrialPruned):
        for k, v in enumerate(values):
            lrsearch.report(trial, float(v), k, n_evals=N_EVALS)
    assert "loss law fitted on" in trial.user_attrs["prune_reason"]


def test_the_search_ignores_a_law_that_failed_its_held_out_check() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    _peers(study, noise=0.2)  # runs scattered 20% around the law: its extrapolation misses
    model = lrsearch.SearchResult(study).loss_model()
    assert model.holdout_error > 0.02
    assert study_model(study) is None
    key = Budget(Rungs(), budget=None)._rank_key(study, study.get_trials())
    assert all(key(t) == t.value for t in study.get_trials())


def test_promotion_ranks_short_runs_by_their_predicted_full_length_value() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    study.set_user_attr("full_steps", FULL)
    _peers(study)
    trials = study.get_trials()
    model = study_model(study, trials)
    key = Budget(Rungs(), budget=None)._rank_key(study, trials)
    for t in trials:
        assert key(t) == pytest.approx(model.predict(Schedule.from_dict(t.user_attrs["schedule"]), FULL).value)
    plain = Budget(Rungs(), budget=None, use_model=False)._rank_key(study, trials)
    assert all(plain(t) == t.value for t in trials)


def test_the_rule_chooses_even_without_enough_runs_for_a_law(tmp_path) -> None:  # noqa: ANN001
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    _add(study, Schedule("cosine", lr=0.08, warmup={"frac": 0.05}), FULL // 3)
    result = lrsearch.SearchResult(study)
    choice = result.choice_for(FULL)
    assert choice.by == "rule" and choice.schedule.lr == pytest.approx(0.08 * (FULL / (FULL // 3)) ** -0.16)
    data = json.loads(result.export_best(tmp_path / "s.json", total_steps=FULL).read_text())
    assert data["chosen_for"] == {"total_steps": FULL, "by": "rule", "source_trial": 0, "lr_shift": 0.16,
                                  "trusted": False, "prediction": "no prediction (no loss law fitted)"}
    with pytest.raises(ValueError, match="at least 4 runs"):
        result.choice_for(FULL, law=True)
    with pytest.raises(ValueError, match="no completed trial"):
        lrsearch.SearchResult(optuna.create_study(storage=optuna.storages.InMemoryStorage())).choice_for(FULL)
