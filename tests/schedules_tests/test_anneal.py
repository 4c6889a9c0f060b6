"""fastai's documented values through lrsearch's primitives (fastai nbs/14_callback.schedule)."""

from __future__ import annotations

import numpy as np
import pytest

from lrsearch.schedules import anneal_cos
from lrsearch.schedules import anneal_exp
from lrsearch.schedules import anneal_linear
from lrsearch.schedules import anneal_poly
from lrsearch.schedules import combine
from lrsearch.schedules import combined_cos


POS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


@pytest.mark.parametrize(
    "fn,expected",
    [
        (lambda p: anneal_linear(0, 2, p), [0, 0.5, 1, 1.5, 2]),
        (lambda p: anneal_cos(0, 2, p), [0, 0.29289, 1, 1.70711, 2]),
        (lambda p: anneal_exp(1, 2, p), [1, 1.18921, 1.41421, 1.68179, 2]),
        (lambda p: anneal_poly(0, 2, p, 2), [0, 0.125, 0.5, 1.125, 2]),
    ],
    ids=["linear", "cos", "exp", "poly2"],
)
def test_fastai_documented_values(fn, expected) -> None:
    np.testing.assert_allclose(fn(POS), expected, atol=1e-5)


def test_combined_cos_matches_fastai() -> None:
    pos = np.array([0.0, 0.1, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(combined_cos(0.25, 0.5, 1.0, 0.0, pos), [0.5, 0.67275, 1.0, 0.75, 0.0], atol=1e-5)


def test_combine_scheds_fastai_example() -> None:
    # fastai: combine_scheds([0.3, 0.7], [SchedCos(0.3, 0.6), SchedCos(0.6, 0.2)])
    pos = np.array([0.0, 0.15, 0.3, 0.65, 1.0])
    out = combine([0.3, 0.7], [lambda p: anneal_cos(0.3, 0.6, p), lambda p: anneal_cos(0.6, 0.2, p)], pos)
    np.testing.assert_allclose(out, [0.3, 0.45, 0.6, 0.4, 0.2], atol=1e-12)


def test_combine_boundary_belongs_to_later_phase() -> None:
    out = combine([0.5, 0.5], [lambda p: anneal_linear(1, 1, p), lambda p: anneal_linear(0.2, 0.0, p)],
                  np.array([0.4999, 0.5]))
    assert out[0] == 1.0 and out[1] == 0.2
