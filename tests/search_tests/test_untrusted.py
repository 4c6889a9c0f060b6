"""A prediction shows as a number only when it can be trusted: an untrusted law says so (with its
held-out error) in ``choice_for``, ``export_best``'s ``chosen_for`` and ``lrsearch report``; a
non-finite prediction is an error or "no prediction", never a held-out error of 0."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

import lrsearch
from lrsearch import Schedule
from lrsearch.cli._study import _write_transfer
from lrsearch.lossmodel import Curve
from lrsearch.lossmodel import LossModel
from lrsearch.search._transfer import Choice
from lrsearch.search._transfer import choose
from lrsearch.search._transfer import forecast
from tests.lossmodel_tests.test_lossmodel import curve_of
from tests.search_tests.test_transfer import FULL
from tests.search_tests.test_transfer import _add
from tests.search_tests.test_transfer import _peers


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(noise: float) -> lrsearch.SearchResult:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    _peers(study, noise=noise)  # noise 0.2: runs scattered 20% around the law, which then misses
    return lrsearch.SearchResult(study)


@pytest.fixture(scope="module")
def untrusted() -> lrsearch.SearchResult:
    return _study(0.2)


@pytest.fixture(scope="module")
def trusted() -> lrsearch.SearchResult:
    return _study(0.0)


def test_an_untrusted_choice_gives_no_number_and_says_why(untrusted: lrsearch.SearchResult) -> None:
    held = untrusted.loss_model().holdout_error
    assert held > 0.02
    for law in (None, True, False):
        choice = untrusted.choice_for(3 * FULL, law=law)
        assert not choice.trusted and math.isnan(choice.predicted.value) and math.isnan(choice.predicted.std)
        assert choice.prediction == f"untrusted (held-out error {held:.1%}, above the 2% it must meet)"
        assert math.isfinite(choice.law_predicted.value) and choice.holdout_error == held


def test_a_trusted_choice_keeps_its_number(trusted: lrsearch.SearchResult) -> None:
    choice = trusted.choice_for(3 * FULL)
    assert choice.trusted and choice.by == "law" and choice.predicted == choice.law_predicted
    low, high = choice.predicted.interval()
    assert low < choice.predicted.value < high
    half = (high - low) / 2 / abs(choice.predicted.value)
    assert choice.prediction == f"{choice.predicted.value:.4g} +/- {half:.0%} (interval {low:.4g} to {high:.4g})"


def test_export_writes_no_predicted_number_for_an_untrusted_law(untrusted, trusted, tmp_path) -> None:  # noqa: ANN001
    data = json.loads(untrusted.export_best(tmp_path / "u.json", total_steps=3 * FULL).read_text())["chosen_for"]
    assert "predicted" not in data and "std" not in data and data["trusted"] is False
    assert data["prediction"].startswith("untrusted (held-out error ") and data["holdout_error"] > 0.02
    data = json.loads(trusted.export_best(tmp_path / "t.json", total_steps=3 * FULL).read_text())["chosen_for"]
    assert data["trusted"] is True and math.isfinite(data["predicted"]) and data["std"] >= 0


def test_report_target_steps_prints_untrusted_not_a_bare_number(untrusted, trusted, tmp_path, capsys) -> None:  # noqa: ANN001
    _write_transfer(untrusted, tmp_path, "u", 3 * FULL)
    out = capsys.readouterr().out
    assert "predicted final: untrusted (held-out error " in out and "interval" not in out
    _write_transfer(trusted, tmp_path, "t", 3 * FULL)
    assert "(interval " in capsys.readouterr().out
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    _add(study, Schedule("cosine", lr=0.08, warmup={"frac": 0.05}))  # one run: the rule, no law
    _write_transfer(lrsearch.SearchResult(study), tmp_path, "one", 3 * FULL)
    assert "predicted final: no prediction (no loss law fitted) (curves must hold at least 4" in capsys.readouterr().out


def test_constant_runs_at_a_subnormal_lr_are_refused_not_trusted_at_zero_error() -> None:
    curves = [Curve(Schedule("constant", lr=5e-324), total, (total // 2, total), (1.0, 1.0))
              for total in (30, 30, 30, 30, 100, 100)]
    with pytest.raises(ValueError, match=r"curves must have peak LRs >= 2.225e-308 .* but got 5e-324"):
        LossModel().fit(curves)


def _few() -> list[Curve]:
    return [curve_of(Schedule(f, lr=lr, warmup={"frac": 0.05}), total) for total in (33, 100)
            for f in ("cosine", "wsd") for lr in (0.06, 0.1, 0.16)]


def test_a_non_finite_prediction_is_an_error() -> None:
    model = LossModel().fit(_few())
    with pytest.raises(ValueError, match=r"no prediction: the law gives cosine\(lr=1e\+300\) .* non-finite"):
        model.predict(Schedule("cosine", lr=1e300), 300)


class _BlindHoldout(LossModel):
    """Its held-out fits (on the shorter runs) predict NaN; the final fit is the real one."""

    def _fit(self, law, overfit, runs):  # noqa: ANN001, ANN202
        fit = super()._fit(law, overfit, runs)
        held_out = max(len(r.eta) for r in runs) < self.steps_ref  # fitted on the shorter runs only
        return SimpleNamespace(predict=lambda eta, t: np.full(len(t), np.nan)) if held_out else fit


def test_non_finite_held_out_predictions_score_an_infinite_error() -> None:
    model = _BlindHoldout(focus=10.0).fit(_few())  # every run fitted
    assert model.holdout_error == math.inf and set(model.holdout.values()) == {math.inf}
    assert "not finite" in _study_choice_text(model)


def _study_choice_text(model: LossModel) -> str:
    pick = Choice(Schedule("cosine", lr=0.1), lrsearch.Prediction(1.0, 0.1), 300, 0, 0.1, None)
    return pick.judged(model).prediction


class _NoValueFor:
    """A stand-in law with no finite value for cosine (its predict raises, as LossModel's does)."""

    def best_lr(self, schedule: Schedule, total_steps: int, within=None) -> None:  # noqa: ANN001
        return None

    def predict(self, schedule: Schedule, total_steps: int) -> lrsearch.Prediction:
        if schedule.family == "cosine":
            raise ValueError("no prediction")
        return lrsearch.Prediction(0.5, 0.0)

    def predict_curve(self, schedule: Schedule, total_steps: int, steps) -> list:  # noqa: ANN001
        raise ValueError("no prediction")


def test_the_search_skips_a_schedule_the_law_cannot_predict() -> None:
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    _add(study, Schedule("cosine", lr=0.08, warmup={"frac": 0.05}), factor=0.5)  # the best observed run
    _add(study, Schedule("wsd", lr=0.08, warmup={"frac": 0.05}))
    assert choose(study, _NoValueFor(), 3 * FULL, 0.16).schedule.family == "wsd"  # type: ignore[arg-type]
    assert forecast(_NoValueFor(), study.trials[0], 1.0) is None  # type: ignore[arg-type]
