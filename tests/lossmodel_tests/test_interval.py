"""A prediction's interval past the longest fitted run widens by the law's held-out error (the
rule ``studies/bench_coverage.py`` measured); within the fitted lengths it is the fit's own spread."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from lrsearch import Schedule
from lrsearch.lossmodel import LossModel
from tests.lossmodel_tests.test_lossmodel import curve_of


def _noisy(lengths=(33, 100)) -> list:
    rng = np.random.default_rng(0)
    return [curve_of(Schedule(f, lr=lr, warmup={"frac": 0.05}), total, 0.03, rng) for total in lengths
            for f in ("cosine", "wsd") for lr in (0.06, 0.1, 0.16)]


@pytest.fixture(scope="module")
def model() -> LossModel:
    return LossModel(focus=10.0).fit(_noisy())


def test_the_interval_widens_by_the_held_out_error_past_the_longest_run(model: LossModel) -> None:
    assert model.holdout_ratio == pytest.approx(100 / 33) and model.holdout_error > 0
    s = Schedule("cosine", lr=0.1, warmup={"frac": 0.05})
    for target in (300, 1000):
        pred = model.predict(s, target)
        beyond = 1.4826 * model.holdout_error * abs(pred.value) * math.log(target / 100) / math.log(100 / 33)
        assert pred.std >= beyond  # the held-out miss per length ratio, as a std, times the ratios beyond
        low, high = pred.interval()
        assert (low, high) == pytest.approx((pred.value - 2 * pred.std, pred.value + 2 * pred.std))
    assert model.predict(s, 1000).std > model.predict(s, 300).std


def test_no_widening_within_the_fitted_lengths_or_without_a_held_out_check(model: LossModel) -> None:
    s = Schedule("wsd", lr=0.1, warmup={"frac": 0.05})
    plain = copy.copy(model)
    plain.holdout_error = None  # as with one run length: nothing measured to widen by
    assert model.predict(s, 100) == plain.predict(s, 100) and model.predict(s, 50) == plain.predict(s, 50)
    assert model.predict(s, 300).std > plain.predict(s, 300).std
    one = LossModel().fit(_noisy(lengths=(100,)))
    assert one.holdout_error is None and one.holdout_ratio is None


def test_a_tiny_held_out_error_still_widens_by_the_floor(model: LossModel) -> None:
    """A law that predicted its own longest runs almost exactly is no proof for runs 10x longer: the
    widening uses at least ``EXTRAPOLATION_FLOOR`` per held-out length ratio."""
    from lrsearch.lossmodel._model import EXTRAPOLATION_FLOOR

    s = Schedule("cosine", lr=0.1, warmup={"frac": 0.05})
    exact = copy.copy(model)
    exact.holdout_error = 1e-6
    pred = exact.predict(s, 1000)
    floor = 1.4826 * EXTRAPOLATION_FLOOR * abs(pred.value) * math.log(1000 / 100) / math.log(100 / 33)
    assert pred.std >= floor
    assert exact.predict(s, 100) == model.predict(s, 100)  # within the fitted lengths: no widening at all
    wide = copy.copy(model)
    wide.holdout_error = 5 * EXTRAPOLATION_FLOOR  # above the floor the held-out error itself is used
    beyond = 1.4826 * wide.holdout_error * abs(wide.predict(s, 1000).value) * math.log(10) / math.log(100 / 33)
    assert wide.predict(s, 1000).std >= beyond > floor
