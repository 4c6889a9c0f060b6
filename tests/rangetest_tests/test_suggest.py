"""Suggestion rules against analytic curves and against literal ports of their sources."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from lrsearch import RangeTestResult
from lrsearch.rangetest._result import NOISY_SNR
from lrsearch.rangetest._result import RANGE_ABOVE
from lrsearch.rangetest._result import RANGE_BELOW
from lrsearch.rangetest._suggest import centred
from lrsearch.rangetest._suggest import ema
from lrsearch.rangetest._suggest import fastai_reference
from lrsearch.rangetest._suggest import midpoint
from lrsearch.rangetest._suggest import minimum
from lrsearch.rangetest._suggest import slide
from lrsearch.rangetest._suggest import steep
from lrsearch.rangetest._suggest import steepest
from lrsearch.rangetest._suggest import torch_lr_finder_reference
from lrsearch.rangetest._suggest import valley


def fastai_valley_literal(lrs, losses):
    """fastai's double loop, line for line (the oracle for the vectorised version)."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def fastai_slide_literal(lrs, losses, lr_diff=15, thresh=0.005):
    grad = np.gradient(losses)
    r, l = -1, -1 - lr_diff
    local = lrs[l]
    while l >= -len(losses) and abs(grad[r] - grad[l]) > thresh:
        local = lrs[l]
        r -= 1
        l -= 1
    return float(local)


LOG_LRS = np.linspace(-7, 1, 161)
LRS = 10.0**LOG_LRS


def _sigmoid_drop(mu: float, width: float = 0.5) -> np.ndarray:
    return 2.0 - 1.0 / (1.0 + np.exp(-(LOG_LRS - mu) / width))


@pytest.mark.parametrize("mu", [-5.0, -3.0, -1.5])
def test_steep_and_steepest_find_the_inflection(mu: float) -> None:
    losses = _sigmoid_drop(mu)
    step = LOG_LRS[1] - LOG_LRS[0]
    assert abs(np.log10(steep(LRS, losses)) - mu) <= step
    assert abs(np.log10(steepest(LRS, losses)) - mu) <= step


def test_steepest_on_sin_is_pi_like_lightnings_test() -> None:
    lrs = np.linspace(0.1, 6.0, 600)
    assert steepest(lrs, np.sin(lrs)) == pytest.approx(np.pi, abs=0.01)


def test_minimum_is_a_tenth_of_the_lowest_point() -> None:
    losses = (LOG_LRS + 2.0) ** 2
    assert minimum(LRS, losses) == pytest.approx(1e-3, rel=1e-9)


def test_valley_is_the_middle_of_a_monotone_descent() -> None:
    losses = np.concatenate([np.linspace(3, 1, 100), np.linspace(1.1, 5, 61)])
    assert valley(LRS, losses) == fastai_valley_literal(LRS, losses)
    idx = int(np.flatnonzero(LRS == valley(LRS, losses))[0])
    assert 45 <= idx <= 51  # about half way down the 100-point descent


@pytest.mark.parametrize("ours,literal", [(valley, fastai_valley_literal), (slide, fastai_slide_literal)])
@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.floats(0.0, 5.0), min_size=16, max_size=80))
def test_rules_match_fastais_loops(ours, literal, values) -> None:
    losses = np.asarray(values)
    lrs = np.logspace(-6, 0, len(losses))
    assert ours(lrs, losses) == literal(lrs, losses)


def test_rules_refuse_too_few_points() -> None:
    one = np.array([1.0])
    assert valley(one, one) is None and steep(one, one) is None and steepest(one, one) is None
    assert slide(LRS[:10], LRS[:10]) is None


def test_ema_is_bias_corrected_and_matches_fastais_smoother() -> None:
    assert np.allclose(ema(np.full(50, 3.0), 0.02), 3.0)
    raw = np.random.default_rng(0).random(30)
    beta, avg, expected = 0.98, 0.0, []
    for k, x in enumerate(raw, start=1):  # fastai AvgSmoothLoss
        avg = beta * avg + (1 - beta) * x
        expected.append(avg / (1 - beta**k))
    np.testing.assert_allclose(ema(raw, 0.02), expected, rtol=1e-12)


def test_reference_pipelines_trim_like_their_libraries() -> None:
    raw = _sigmoid_drop(-2.0) + 0.01 * np.random.default_rng(1).standard_normal(len(LRS))
    ref = fastai_reference(LRS, raw, num_iter=len(LRS))
    lrs_trim = LRS[len(LRS) // 10 : -5]
    assert all(v is None or lrs_trim[0] <= v or k == "minimum" for k, v in ref.items())
    assert torch_lr_finder_reference(LRS, raw) in LRS[10:-5]


def _result(losses, **config):
    return RangeTestResult.from_arrays(LRS[: len(losses)], losses, num_iter=len(losses), start_lr=LRS[0],
                                       end_lr=LRS[-1], **config)


@pytest.mark.parametrize("mu", [-4.0, -2.5])
@pytest.mark.parametrize("points", [81, 241])
def test_midpoint_is_the_centre_of_a_symmetric_drop(mu: float, points: int) -> None:
    x = np.linspace(-7, 1, points)
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(x - mu) / 0.3)) + np.where(x > mu + 2, (x - mu - 2) * 5, 0)
    assert abs(np.log10(midpoint(10.0**x, losses)) - mu) <= 1.01 * (x[1] - x[0])
    assert midpoint(10.0**x[:2], losses[:2]) is None


def test_centred_smoothing_has_no_lag() -> None:
    x = np.linspace(-7, 1, 161)
    y = np.abs(x + 3.0)  # a V with its bottom at 1e-3
    assert np.log10(10.0 ** x[int(np.argmin(centred(10.0**x, y)))]) == pytest.approx(-3.0, abs=0.06)
    assert np.argmin(ema(y, 0.05)) > np.argmin(y) + 5  # the EMA's minimum lags to the right


def _sweep(points: int, mu_at_reference: float, noise: float = 0.0, seed: int = 0) -> RangeTestResult:
    """A synthetic sweep whose drop sits where the cumulative LR matches the reference sweep's."""
    x = np.linspace(-7, 1, points)
    shift = np.log10((points - 1) / 99)  # k times denser sweeps drop k times lower
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(x - mu_at_reference + shift) / 0.3))
    losses = losses + np.where(x > mu_at_reference - shift + 1.5, (x - mu_at_reference + shift - 1.5) * 8, 0)
    losses = losses + noise * np.random.default_rng(seed).standard_normal(points)
    return RangeTestResult.from_arrays(10.0**x, losses, num_iter=points, start_lr=1e-7, end_lr=10.0)


def test_search_range_is_the_normalised_midpoint_and_ignores_sweep_density() -> None:
    r100, r300 = _sweep(100, -2.0), _sweep(300, -2.0)
    for r in (r100, r300):
        low, high = r.search_range()
        h = r.suggestion("midpoint")
        assert low == pytest.approx(h / 10**RANGE_BELOW) and high == pytest.approx(h * 10**RANGE_ABOVE)
        assert np.log10(high / low) == pytest.approx(RANGE_BELOW + RANGE_ABOVE)
        assert RANGE_BELOW + RANGE_ABOVE <= 1.5
        assert not r.flags["noisy"]
    # the 3x denser sweep drops 0.48 decades lower, yet gives the same range to within a step
    assert abs(np.log10(r100.search_range()[0] / r300.search_range()[0])) < 0.1
    assert set(r100.suggestions()) == {"valley", "slide", "minimum", "steep", "steepest", "midpoint"}


def test_noisy_curves_are_flagged_and_widen_the_range() -> None:
    clean, noisy = _sweep(100, -2.0), _sweep(100, -2.0, noise=0.6)
    assert clean.signal_to_noise > 10 and noisy.signal_to_noise < NOISY_SNR
    assert noisy.flags["noisy"] and any("mostly noise" in w for w in noisy.warnings)
    lo, hi = noisy.search_range()
    assert np.log10(hi / lo) > RANGE_BELOW + RANGE_ABOVE


def test_search_range_is_clipped_to_the_sweep_and_falls_back_to_it() -> None:
    losses = np.concatenate([np.full(150, 2.0), np.linspace(2.0, 1.0, 11)])  # drops at the very end
    low, high = _result(losses).search_range()
    assert high == LRS[-1] and low < high
    short = RangeTestResult.from_arrays(LRS[:2], [1.0, 0.9], start_lr=1e-7, end_lr=10.0, num_iter=100)
    assert short.search_range() == (1e-7, 10.0)


def test_flags_and_warnings() -> None:
    never = _result(np.linspace(3, 1, 120), smooth_f=1.0)
    assert never.flags["never_diverged"] and "end_lr may be too small" in never.warnings[0]
    flat = _result(np.full(120, 2.0))
    assert flat.flags["flat"]
    at_once = RangeTestResult(LRS[:40], np.linspace(1, 9, 40), np.linspace(1, 9, 40), np.linspace(1, 9, 40),
                              {"num_iter": 100}, "diverged", 40)
    assert at_once.flags["diverged_at_once"] and any("start_lr may be too large" in w for w in at_once.warnings)


def test_to_dict_round_trip_keeps_non_finite_as_nan() -> None:
    losses = np.concatenate([np.linspace(3, 1, 50), [np.inf]])
    r = _result(losses)
    again = RangeTestResult.from_dict(r.to_dict())
    assert again == r and np.isnan(again.losses[-1])
    with pytest.raises(ValueError, match="lrs"):
        RangeTestResult.from_dict({"lrs": [1.0, -1.0], "losses": [1.0, 2.0]})
    with pytest.raises(ValueError, match="method must be one of"):
        r.suggestion("valey")


def test_reference_suggestions_rerun_fastai_and_torch_lr_finder_on_raw_losses() -> None:
    raw = _sigmoid_drop(-2.0) + 0.01 * np.random.default_rng(2).standard_normal(len(LRS))
    r = RangeTestResult.from_arrays(LRS, raw, num_iter=len(LRS))
    ref = r.reference_suggestions()
    assert {k: v for k, v in ref.items() if k.startswith("fastai_") and k != "fastai_smoothed_min"} == {
        f"fastai_{k}": v for k, v in fastai_reference(LRS, raw, len(LRS)).items()}
    assert ref["torch_lr_finder_steepest"] == torch_lr_finder_reference(LRS, raw)
    assert ref["fastai_valley"] != r.suggestion("valley")  # different smoothing, different answer


def _spiky_sweep(spike: bool) -> RangeTestResult:
    """A sigmoid descent centred at 1e-4; with ``spike``, the raw loss then spikes around 1e-2 (the
    smoothed loss rises 3.8x over its running minimum, under the 5x stop) and descends again, more
    steeply and lower than before; both curves diverge at the end."""
    y = _sigmoid_drop(-4.0, 0.3)
    if spike:
        y = y + 15.0 * np.exp(-0.5 * ((LOG_LRS + 2.0) / 0.12) ** 2)
        y = np.where(LOG_LRS > -1.6, y - 0.7 / (1.0 + np.exp(-(LOG_LRS + 1.2) / 0.1)), y)
    return _result(y + np.where(LOG_LRS > 0.3, (LOG_LRS - 0.3) * 20, 0))


def test_no_suggestion_lands_after_a_loss_spike_under_the_stop_threshold() -> None:
    clean, spiky = _spiky_sweep(False), _spiky_sweep(True)
    rise = spiky.smoothed / np.minimum.accumulate(spiky.smoothed)
    assert 3.6 < rise[LOG_LRS < 0].max() < 4.0  # the spike: 3.8x, the test did not stop
    spike_start = 10.0 ** -2.2  # the raw spike is well under way (peak at 1e-2)
    got = spiky.suggestions()
    assert all(v is not None and v < spike_start for v in got.values()), got
    for rule in ("steep", "steepest"):  # the descent before the spike, as on the clean curve
        assert got[rule] == clean.suggestion(rule)
    assert spiky.min_loss_lr() < spike_start and spiky.search_range()[1] < 10 ** -1.5
