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
from lrsearch.schedules import families


matplotlib.use("Agg")
LOG_LRS = np.linspace(-7, 1, 161)


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


def _trial(family: str, value: float, state=optuna.trial.TrialState.COMPLETE, run: int = 90):
    return optuna.trial.create_trial(
        state=state, value=value if state == optuna.trial.TrialState.COMPLETE else None,
        intermediate_values={0: value}, params={"family": family},
        distributions={"family": optuna.distributions.CategoricalDistribution(sorted(families()))},
        user_attrs={"schedule": Schedule(family, lr=0.1).to_dict(), "run_steps": run, "full_steps": 90},
    )


def test_history_tells_full_runs_from_short_ones_and_clips_outliers_at_the_edge() -> None:
    study = optuna.create_study()
    values = [("cosine", 1.2, 30), ("onecycle", 1.6, 30), ("step", 2.1, 90), ("cosine", 1.5, 90), ("onecycle", 1.7, 30),
              ("step", 1e3, 30), ("cosine", 1.45, 90), ("onecycle", 1.8, 90)]
    for family, value, run in values:
        study.add_trial(_trial(family, value, run=run))
    fig = plot_history(study)
    ax = fig.axes[0]
    lines = _labels(ax)
    assert sorted(lines["full-length run"].get_ydata()) == [1.45, 1.5, 1.8, 2.1]
    assert sorted(lines["1/3 run (screening)"].get_ydata()) == [1.2, 1.6, 1.7]
    assert lines["full-length run"].get_color() != lines["1/3 run (screening)"].get_color()
    best = lines["best full-length run so far"]  # starts on the first full run, never on the short 1.2
    assert best.get_xdata()[0] == 2 and list(best.get_ydata()) == [2.1, 1.5, 1.45, 1.45]
    assert [t.get_text() for t in ax.texts] == ["step 2.1", "cosine 1.5", "cosine 1.45"]
    low, high = ax.get_ylim()
    assert low < 1.2 and 2.1 < high < 10  # the band that matters, not squashed by the 1e3 outlier
    clipped = [line for label, line in lines.items() if label.startswith("1 above")]
    assert len(clipped) == 1 and clipped[0].get_xdata()[0] == 5 and clipped[0].get_ydata()[0] <= high
    assert not _overlaps(fig, ax)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_history_keeps_a_short_legend_with_one_colour_per_entry_whatever_the_families() -> None:
    study = optuna.create_study()
    study.set_metric_names(["val_loss"])
    for i, family in enumerate(families()):  # 17 families, full and 1/3 runs, some pruned
        study.add_trial(_trial(family, 1.5 + 0.01 * i, run=90 if i % 2 else 30))
        pruned = _trial(family, 2.0 + 0.01 * i, optuna.trial.TrialState.PRUNED)
        pruned.value = 2.0 + 0.01 * i  # a pruned trial keeps its last reported value, as Optuna stores it
        study.add_trial(pruned)
    ax = plot_history(study).axes[0]
    entries = ax.get_legend().legend_handles
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["full-length run", "1/3 run (screening)", "pruned (its last value)", "best full-length run so far"]
    colours = [matplotlib.colors.to_hex(h.get_color()) for h in entries]
    assert len(set(colours)) == len(colours) <= 8
    assert all(len(line.get_xdata()) for line in ax.get_lines())
    assert ax.get_ylabel() == "val_loss"


def test_top_runs_draw_full_runs_solid_and_short_runs_dashed_with_their_length() -> None:
    from lrsearch.reports._plots import plot_runs

    runs = [("#3 cosine 1.08", Schedule("cosine", lr=0.2), "full"), ("#7 wsd 1.13", Schedule("wsd", lr=0.1), "full"),
            ("#1 cosine 1.31 (1/3 run)", Schedule("cosine", lr=0.25), "1/3")]
    fig = plot_runs(runs, 300)
    ax = fig.axes[0]
    lines = _labels(ax)
    assert [lines[label].get_linestyle() for label, _, _ in runs] == ["-", "-", "--"]
    assert lines["#3 cosine 1.08"].get_linewidth() > lines["#7 wsd 1.13"].get_linewidth()
    assert lines["#1 cosine 1.31 (1/3 run)"].get_alpha() < 1
    assert len({line.get_color() for line in ax.get_lines()}) == 3 and not _overlaps(fig, ax)
    with pytest.raises(ValueError, match="runs must hold 1 to 10 runs"):
        plot_runs(runs * 4, 300)


def test_a_single_schedule_is_named_by_the_title_not_a_legend() -> None:
    s = Schedule("multistep", lr=0.3, params={"milestones": [0.4, 0.8]}, warmup={"frac": 0.05})
    ax = plot_schedules(s, 200).axes[0]
    assert ax.get_legend() is None and ax.get_title() == s.describe()
