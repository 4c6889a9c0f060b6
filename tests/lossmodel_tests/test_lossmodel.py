"""LossModel on curves drawn from known laws: it recovers them, extrapolates in run length, moves
the peak LR the way the law says, and refuses what it cannot predict."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from lrsearch import Schedule
from lrsearch.lossmodel import Curve
from lrsearch.lossmodel import LossModel
from lrsearch.lossmodel import predictable
from lrsearch.lossmodel._features import area
from lrsearch.lossmodel._features import drop
from lrsearch.lossmodel._features import ema


N_EVALS = 8
# the area law with a peak-LR cost: L = 1 + 2 S1^-0.5 + 0.5 ema_16 + 0.3 peak^2 (LR in units of 0.1,
# steps in units of 300): best peak LR falls as T ** -(0.5 / 2.5) = T ** -0.2
TRUE = {"L0": 1.0, "A": 2.0, "alpha": 0.5, "C": 0.5, "window": 16.0, "D": 0.3, "p": 2.0}


def true_loss(schedule: Schedule, total: int, steps: np.ndarray) -> np.ndarray:
    eta = schedule.curve(total) / 0.1
    s1 = area(eta, steps) / 300
    return (TRUE["L0"] + TRUE["A"] * s1 ** -TRUE["alpha"] + TRUE["C"] * ema(eta, steps, TRUE["window"])
            + TRUE["D"] * float(eta.max()) ** TRUE["p"])


def curve_of(schedule: Schedule, total: int, noise: float = 0.0, rng: np.random.Generator | None = None) -> Curve:
    steps = np.array([round((k + 1) * total / N_EVALS) for k in range(N_EVALS)])
    values = true_loss(schedule, total, steps)
    if noise:
        values = values * (1 + noise * rng.standard_normal(len(values)))  # type: ignore[union-attr]
    return Curve(schedule, total, tuple(int(s) for s in steps), tuple(float(v) for v in values))


def study_like(lengths=(33, 100), noise: float = 0.0) -> list[Curve]:
    """What a short-run search sees: four families over a range of peak LRs at two lengths."""
    rng = np.random.default_rng(0)
    out = []
    for total in lengths:
        for family in ("cosine", "wsd", "linear", "constant"):
            for lr in (0.03, 0.06, 0.1, 0.16, 0.25):
                out.append(curve_of(Schedule(family, lr=lr, warmup={"frac": 0.05}), total, noise, rng))
    return out


def test_features_match_their_definitions() -> None:
    eta = np.array([1.0, 1.0, 0.5, 0.25, 0.0])
    assert area(eta, np.array([1, 3, 5])).tolist() == [1.0, 2.5, 2.75]
    e = 0.0
    for x in eta:
        e = 0.75 * e + 0.25 * x
    assert ema(eta, np.array([5]), 4.0)[0] == pytest.approx(e)
    # the multi-power drop: each decrease after the peak, saturating in the area since it
    by_hand = sum((eta[k - 1] - eta[k]) * (1 - (2.0 * eta[k] ** -0.0 * eta[k:5].sum() + 1) ** -1.0)
                  for k in range(1, 5))
    assert drop(eta, np.array([5]), beta=1.0, gamma=0.0, c=2.0)[0] == pytest.approx(by_hand)


def test_recovers_the_area_law_and_extrapolates_3x_in_length() -> None:
    model = LossModel(laws=("area",), overfit=False).fit(study_like())
    for family in ("cosine", "wsd", "linear", "constant"):
        schedule = Schedule(family, lr=0.08, warmup={"frac": 0.05})
        measured = true_loss(schedule, 300, np.array([300]))[0]
        assert model.predict(schedule, 300).value == pytest.approx(measured, rel=0.01)
    mid = model.predict_curve(Schedule("cosine", lr=0.08), 300, [100, 200, 300])
    assert mid[0].value > mid[1].value > mid[2].value  # a decaying run improves to its end


def test_noisy_curves_give_an_honest_uncertainty() -> None:
    model = LossModel(laws=("area",), overfit=False).fit(study_like(noise=0.01))
    schedule = Schedule("cosine", lr=0.08, warmup={"frac": 0.05})
    pred = model.predict(schedule, 300)
    measured = true_loss(schedule, 300, np.array([300]))[0]
    assert 0 < pred.std < 0.1 * measured
    assert abs(pred.value - measured) < 4 * pred.std + 0.01 * measured


def test_the_held_out_check_picks_the_generating_law_family_and_reports_its_error() -> None:
    model = LossModel().fit(study_like())
    assert model.describe()["law"] == "area"
    assert set(model.holdout) == {"area", "area+overfit", "multipower", "multipower+overfit"}
    assert model.holdout_error == min(model.holdout.values()) < 0.01


def test_best_peak_lr_falls_with_run_length_as_the_law_says() -> None:
    model = LossModel(laws=("area",), overfit=False).fit(study_like(lengths=(33, 100)) + study_like(lengths=(300,)))
    shape = Schedule("cosine", lr=0.1, warmup={"frac": 0.05})
    short, long = model.best_lr(shape, 100), model.best_lr(shape, 300)
    assert short is not None and long is not None
    assert long[0] < short[0]
    assert long[1].value < short[1].value
    exponent = -math.log(long[0] / short[0]) / math.log(3)
    assert 0.05 < exponent < 0.4  # the generating law's 0.2, up to the 49-point LR grid
    bounded = model.best_lr(shape, 300, within=(long[0] * 1.5, long[0] * 3))  # the law's best lies below
    assert bounded is not None and bounded[0] == pytest.approx(long[0] * 1.5)


def test_best_lr_at_the_edge_of_the_data_is_not_trusted() -> None:
    curves = [c for c in study_like() if c.schedule.lr <= 0.06]  # all far below the optimum
    model = LossModel(laws=("area",), overfit=False).fit(curves)
    assert model.best_lr(Schedule("cosine", lr=0.05), 300) is None


def test_focus_leaves_out_runs_far_from_the_best() -> None:
    curves = study_like()
    bad = Curve(Schedule("cosine", lr=5.0), 100, tuple(range(13, 101, 12))[:N_EVALS], (1000.0,) * N_EVALS)
    model = LossModel(laws=("area",), overfit=False, focus=10).fit(curves + [bad])
    assert model.n_curves == len(curves)
    assert model.lr_span[1] < 5.0


def test_bad_input_names_the_argument() -> None:
    curves = study_like()
    with pytest.raises(ValueError, match="laws"):
        LossModel(laws=("chinchilla",))
    with pytest.raises(ValueError, match="focus"):
        LossModel(focus=0)
    with pytest.raises(ValueError, match="fitted first"):
        LossModel().predict(Schedule("cosine", lr=0.1), 100)
    with pytest.raises(ValueError, match="at least 4 runs"):
        LossModel().fit(curves[:3])
    with pytest.raises(ValueError, match="steps must lie"):
        LossModel().fit([Curve(Schedule("cosine", lr=0.1), 10, (5, 11), (1.0, 0.9))])
    with pytest.raises(ValueError, match="Curve"):
        LossModel().fit([{"schedule": "cosine"}])  # type: ignore[list-item]
    model = LossModel(laws=("area",), overfit=False).fit(curves)
    with pytest.raises(ValueError, match="plateau"):
        model.predict(Schedule("plateau", lr=0.1), 100)
    with pytest.raises(ValueError, match="total_steps"):
        model.predict(Schedule("cosine", lr=0.1), 0)
    with pytest.raises(ValueError, match="steps must be <= total_steps"):
        model.predict_curve(Schedule("cosine", lr=0.1), 100, [50, 101])
    with pytest.raises(ValueError, match="points"):
        model.best_lr(Schedule("cosine", lr=0.1), 100, points=1)
    assert not predictable(Schedule("plateau", lr=0.1))


def test_the_loss_model_needs_only_numpy() -> None:
    code = ("import sys; import lrsearch.lossmodel; "
            "print(any(m in sys.modules for m in ('torch', 'optuna', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
