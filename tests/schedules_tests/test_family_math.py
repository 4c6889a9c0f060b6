"""Closed forms of the families torch has no twin for, checked against their formulas."""

from __future__ import annotations

import numpy as np
import pytest

from lrsearch import Schedule


T = 1000
U = np.arange(T) / T


def _c(family: str, **params) -> np.ndarray:
    return Schedule(family, lr=1.0, params=params).curve(T)


def test_linear_and_min_ratio() -> None:
    np.testing.assert_allclose(_c("linear", min_ratio=0.1), 0.1 + 0.9 * (1 - U), rtol=1e-12)


def test_cosine_k_decay() -> None:
    np.testing.assert_allclose(_c("cosine", k=2.0), 0.5 * (1 + np.cos(np.pi * U**2)), rtol=1e-12, atol=1e-15)
    assert _c("cosine", k=2.0)[500] > _c("cosine")[500]  # k > 1 holds the LR high longer


def test_poly_orientation_is_torchs_not_fastais() -> None:
    np.testing.assert_allclose(_c("poly", power=2.0, min_ratio=0.1), 0.1 + 0.9 * (1 - U) ** 2, rtol=1e-12)


def test_inverse_sqrt_matches_transformers() -> None:
    # HF get_inverse_sqrt_schedule with timescale tau: 1 / sqrt((t + tau - W) / tau), W warmup.
    s = Schedule("inverse_sqrt", lr=1.0, params={"timescale_frac": 0.05}, warmup={"frac": 0.04})
    c = s.curve(T)
    w, tau = 40, 0.05 * (T - 40)
    t = np.arange(w, T)
    np.testing.assert_allclose(c[w:], 1 / np.sqrt((t + tau - w) / tau), rtol=1e-12)


@pytest.mark.parametrize(
    "shape,fn",
    [("linear", lambda q: 1 - q), ("cosine", lambda q: 0.5 * (1 + np.cos(np.pi * q))), ("1-sqrt", lambda q: 1 - np.sqrt(q))],
)
def test_wsd_decay_shapes(shape, fn) -> None:
    c = _c("wsd", decay_frac=0.2, decay_shape=shape, min_ratio=0.01)
    assert np.all(c[:800] == 1.0)
    q = (U[800:] - 0.8) / 0.2
    np.testing.assert_allclose(c[800:], 0.01 + 0.99 * fn(q), rtol=1e-9, atol=1e-12)


def test_flat_cos_is_wsd_with_a_cosine_tail() -> None:
    np.testing.assert_allclose(_c("flat_cos", pct_start=0.7, min_ratio=0.02),
                               _c("wsd", decay_frac=0.3, decay_shape="cosine", min_ratio=0.02), rtol=1e-12)


def test_cosine_restarts_float_mult_and_peak_decay() -> None:
    c = _c("cosine_restarts", first_cycle_frac=0.1, cycle_mult=1.5, cycle_decay=0.5, min_ratio=0.0)
    starts = [0, 100, 250, 475]  # 100, 150, 225, 337.5 step cycles; the fifth starts at 812.5
    for i, s in enumerate(starts):
        assert c[s] == pytest.approx(0.5**i), i
        assert c[s - 1] < c[s] if s else True
    assert c[812] < 1e-5 and c[813] == pytest.approx(0.5**4 * 0.5 * (1 + np.cos(np.pi * 0.5 / 506.25)))
    assert c[99] == pytest.approx(0.5 * (1 + np.cos(np.pi * 99 / 100)))


def test_cyclic_triangle_and_per_cycle_gamma() -> None:
    c = _c("cyclic", base_ratio=0.2, cycle_frac=0.1, up_frac=0.5, mode="exp_range", gamma=0.5)
    assert c[0] == pytest.approx(0.2) and c[100] == pytest.approx(0.2)
    peak1, peak2 = c[50] - 0.2, c[150] - 0.2
    assert peak2 / peak1 == pytest.approx(0.5)  # amplitude halves every cycle
    tri2 = _c("cyclic", base_ratio=0.2, cycle_frac=0.1, mode="triangular2")
    assert (tri2[250] - 0.2) / (tri2[50] - 0.2) == pytest.approx(0.25)


def test_multistep_counts_milestones() -> None:
    c = _c("multistep", gamma=0.5, milestones=[0.25, 0.5, 0.75])
    assert (c[249], c[250], c[500], c[999]) == (1.0, 0.5, 0.25, 0.125)


def test_piecewise_joins_phases() -> None:
    phases = [
        {"frac": 0.25, "anneal": "linear", "start": 0.1, "end": 1.0},
        {"frac": 0.5, "anneal": "constant", "start": 1.0, "end": 1.0},
        {"frac": 0.25, "anneal": "poly", "start": 1.0, "end": 0.0, "power": 2.0},
    ]
    c = _c("piecewise", phases=phases)
    assert c[0] == pytest.approx(0.1) and c[125] == pytest.approx(0.55)
    assert np.all(c[250:750] == 1.0)
    assert c[875] == pytest.approx(1 - 0.5**2)


def test_onecycle_ends_at_peak_over_div_and_final_div() -> None:
    c = _c("onecycle", div_factor=10.0, final_div_factor=100.0)
    assert c[0] == pytest.approx(0.1) and c[-1] == pytest.approx(1e-3) and c.max() == pytest.approx(1.0)


def test_plateau_lr_at_is_the_unreduced_schedule() -> None:
    s = Schedule("plateau", lr=0.5, warmup={"frac": 0.1})
    assert s.lr_at(500, T) == 0.5 and s.lr_at(0, T) < 0.5


@pytest.mark.parametrize("mult", [1e200, 1.7976931348623157e308])
@pytest.mark.parametrize("first", [0.1, 0.37, 1.0])
def test_cosine_restarts_huge_cycle_mult_is_finite(mult: float, first: float) -> None:
    # The second cycle is longer than the universe: the first cycle runs as usual, then the LR
    # restarts at the decayed peak (cycle_decay) and stays there for the rest of the run.
    c = _c("cosine_restarts", first_cycle_frac=first, cycle_mult=mult, cycle_decay=0.5, min_ratio=0.01)
    assert np.all(np.isfinite(c)) and np.all(c >= 0)
    n = max(1, int(first * T + 0.5))
    np.testing.assert_allclose(c[:min(n, T)], 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * np.arange(min(n, T)) / n)),
                               rtol=1e-12)
    np.testing.assert_allclose(c[n:], 0.5, rtol=1e-12)  # cycle_decay * (1 - min_ratio) + min_ratio at pos ~0


def _staircase(n: int) -> Schedule:
    phases = [{"frac": 1 / n, "anneal": "constant", "start": (i + 1) / (n + 1), "end": 0.0} for i in range(n)]
    return Schedule("piecewise", lr=1.0, params={"phases": phases})


def test_equal_phase_staircases_put_every_step_in_its_phase() -> None:
    # Phase i of n covers the steps from round(i * T / n) (half up) to the next boundary, in exact
    # integers; 0.1 + 0.1 + 0.1 > 0.3 in floats must not move a step to the earlier phase.
    wrong = []
    for n in range(2, 13):
        s = _staircase(n)
        for total in range(10, 1001):
            phase = np.searchsorted([(2 * i * total + n) // (2 * n) for i in range(n)], np.arange(total), "right") - 1
            if not np.array_equal(s.curve(total), (phase + 1) / (n + 1)):
                wrong.append((n, total))
    assert not wrong, f"{len(wrong)} staircases with steps in the wrong phase, e.g. {wrong[:5]}"


@pytest.mark.parametrize("n,total", [(10, 10), (10, 30), (3, 10), (7, 100), (12, 997)])
def test_each_restart_phase_starts_at_its_peak(n: int, total: int) -> None:
    phases = [{"frac": 1 / n, "anneal": "cos", "start": 1.0, "end": 0.0}] * n
    c = Schedule("piecewise", lr=1.0, params={"phases": phases}).curve(total)
    starts = [(2 * i * total + n) // (2 * n) for i in range(n)]
    assert [c[b] for b in starts] == [1.0] * n


@pytest.mark.parametrize("shape", ["1-sqrt", "linear", "cosine"])
def test_wsd_decay_starts_at_exactly_the_peak(shape: str) -> None:
    for total in range(10, 400):
        c = Schedule("wsd", lr=1.0, params={"decay_frac": 0.2, "decay_shape": shape, "min_ratio": 0.01}).curve(total)
        start = int(0.8 * total + 0.5)  # first step of the decay, half up
        assert np.all(c[:start + 1] == 1.0) and c[start + 1] < 1.0, total
