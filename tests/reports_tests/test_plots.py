"""Plots read honestly: labelled rules, legends off the curves, no hidden curves, robust y-ranges.

The assertions read figure data (lines, labels, limits, legend boxes), not pixels.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import optuna
import pytest

from lrsearch import RangeTestResult
from lrsearch import Schedule
from lrsearch.reports._plots import plot_history
from lrsearch.reports._plots import plot_range_test
from lrsearch.reports._plots import plot_schedules


matplotlib.use("Agg")
LOG_LRS = np.linspace(-7, 1, 161)
FAMILIES = ["cosine", "onecycle", "step"]


def _labels(ax) -> dict:
    return {line.get_label(): line for line in ax.get_lines()}


def _overlaps(fig, ax) -> bool:
    fig.draw_without_rendering()
    return ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())


def test_range_plot_names_the_fastai_minimum_rule_and_marks_the_true_minimum() -> None:
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(LOG_LRS + 3.0) / 0.3)) + np.where(LOG_LRS > -1, (LOG_LRS + 1) * 4, 0)
    r = RangeTestResult.from_arrays(10.0**LOG_LRS, losses, num_iter=161)
    fig = plot_range_test(r)
    ax = fig.axes[0]
    lines = _labels(ax)
    rule = r.suggestion("minimum")
    assert f"minimum/10 (fastai rule) {rule:.2g}" in lines
    assert not any(label.startswith("minimum ") for label in lines)  # no bare "minimum" for a /10 point
    true_min = [line for label, line in lines.items() if label.startswith("loss minimum")]
    assert len(true_min) == 1 and true_min[0].get_xdata()[0] == pytest.approx(r.min_loss_lr())
    assert true_min[0].get_xdata()[0] == pytest.approx(10 * rule)
    cutoff = [line for label, line in lines.items() if label.startswith("cutoff")]
    assert len(cutoff) == 1 and cutoff[0].get_xdata()[0] == pytest.approx(r.cutoff_lr())
    assert not _overlaps(fig, ax)


def test_top_schedules_legend_is_off_the_axes_and_identical_curves_share_one_entry() -> None:
    same = Schedule("cosine", lr=0.2)
    named = {"#3 cosine (1.2)": same, "#7 cosine (1.3)": Schedule("cosine", lr=0.2),
             "#1 onecycle (1.4)": Schedule("onecycle", lr=0.3), "#2 step (1.5)": Schedule("step", lr=0.1)}
    fig = plot_schedules(named, 300)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["#3 cosine (1.2) x2", "#1 onecycle (1.4)", "#2 step (1.5)"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == labels
    assert not _overlaps(fig, ax)


def _trial(family: str, value: float, state=optuna.trial.TrialState.COMPLETE):
    return optuna.trial.create_trial(
        state=state, value=value if state == optuna.trial.TrialState.COMPLETE else None,
        intermediate_values={0: value}, params={"family": family},
        distributions={"family": optuna.distributions.CategoricalDistribution(FAMILIES)},
        user_attrs={"schedule": Schedule(family, lr=0.1).to_dict()},
    )


def test_history_colours_points_by_family_and_clips_outliers_at_the_edge() -> None:
    study = optuna.create_study()
    values = [("cosine", 1.9), ("onecycle", 1.6), ("step", 2.1), ("cosine", 1.5), ("onecycle", 1.7),
              ("step", 1e3), ("cosine", 1.55), ("onecycle", 1.8)]
    for family, value in values:
        study.add_trial(_trial(family, value))
    fig = plot_history(study)
    ax = fig.axes[0]
    lines = _labels(ax)
    colours = {f: lines[f].get_color() for f in ("cosine", "onecycle", "step")}
    assert len(set(colours.values())) == 3
    assert sorted(lines["cosine"].get_ydata()) == [1.5, 1.55, 1.9]
    low, high = ax.get_ylim()
    assert low < 1.5 and 2.1 < high < 10  # the band that matters, not squashed by the 1e3 outlier
    clipped = [line for label, line in lines.items() if label.startswith("1 above")]
    assert len(clipped) == 1 and clipped[0].get_xdata()[0] == 5 and clipped[0].get_ydata()[0] <= high
    assert not _overlaps(fig, ax)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_history_has_no_empty_legend_entries_and_names_the_metric() -> None:
    study = optuna.create_study()
    study.set_metric_names(["val_loss"])
    study.add_trial(_trial("cosine", 1.5))
    pruned = _trial("step", 2.0, optuna.trial.TrialState.PRUNED)
    pruned.value = 2.0  # a pruned trial keeps its last reported value, as Optuna stores it
    study.add_trial(pruned)
    ax = plot_history(study).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "step" not in labels and "step (pruned)" in labels and "cosine" in labels
    assert all(len(line.get_xdata()) for line in ax.get_lines())
    assert ax.get_ylabel() == "val_loss"


def test_a_single_schedule_is_named_by_the_title_not_a_legend() -> None:
    s = Schedule("multistep", lr=0.3, params={"milestones": [0.4, 0.8]}, warmup={"frac": 0.05})
    ax = plot_schedules(s, 200).axes[0]
    assert ax.get_legend() is None and ax.get_title() == s.describe()
