"""Plots (matplotlib, imported only here and only when a plot is asked for).

Every function takes ``ax=None`` and returns the ``Figure``; none calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from lrsearch._checks import check_int
from lrsearch.schedules import Schedule


if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrsearch.rangetest._result import RangeTestResult


def _new_axes(ax: Axes | None, figsize: tuple[float, float] = (7.0, 4.0)) -> tuple[Figure, Axes]:
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a dependency, but say what to do
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from None
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _named(schedules: Schedule | Iterable[Schedule] | Mapping[str, Schedule]) -> list[tuple[str, Schedule]]:
    if isinstance(schedules, Schedule):
        return [(schedules.describe(), schedules)]
    if isinstance(schedules, Mapping):
        items = list(schedules.items())
    else:
        items = [(s.describe(), s) for s in schedules]
    for label, s in items:
        if not isinstance(s, Schedule):
            raise ValueError(f"schedules must hold Schedule objects but {label!r} is {s!r}.")
    return items


def plot_schedules(
    schedules: Schedule | Iterable[Schedule] | Mapping[str, Schedule],
    total_steps: int = 1000,
    *,
    ax: Axes | None = None,
    log_scale: bool = False,
    relative: bool = False,
    **line_kwargs: Any,
) -> Figure:
    """Draw the LR of one or more schedules over a run of ``total_steps`` optimizer steps.

    Args:
        schedules: A ``Schedule``, a list of them, or a ``{label: Schedule}`` dict.
        total_steps: Length of the run to draw, >= 1.
        ax: Axes to draw on; a new figure when ``None``.
        log_scale: Logarithmic LR axis (useful for one-cycle and exponential decays).
        relative: Draw ratios of each schedule's peak instead of absolute LRs.
        line_kwargs: Passed to ``Axes.plot``.
    """
    total_steps = check_int("total_steps", total_steps, low=1)
    items = _named(schedules)
    if not items:
        raise ValueError("schedules must not be empty.")
    fig, ax = _new_axes(ax)
    steps = np.arange(total_steps)
    drawn: list[tuple[str, np.ndarray, int]] = []  # identical curves share one line: "label xN"
    for label, s in items:
        curve = s.curve(total_steps) / s.lr if relative else s.curve(total_steps)
        same = next((i for i, (_, c, _) in enumerate(drawn) if np.allclose(c, curve, rtol=1e-9, atol=0)),
                    None)
        if same is None:
            drawn.append((label, curve, 1))
        else:
            drawn[same] = (drawn[same][0], curve, drawn[same][2] + 1)
    for label, curve, n in drawn:
        ax.plot(steps, curve, label=f"{label} x{n}" if n > 1 else label, **line_kwargs)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("LR / peak" if relative else "learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if len(drawn) == 1:  # a title, not a legend as wide as a long description
        ax.set_title(ax.get_lines()[-1].get_label(), fontsize="small", wrap=True)
    elif len(drawn) <= 12:
        _legend_outside(ax)
    return fig


def _legend_outside(ax: Axes) -> None:
    """The legend right of the axes, where it covers no curve (constrained layout makes room)."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)


def plot_family_gallery(total_steps: int = 1000, *, lr: float = 1.0) -> Figure:
    """One panel per registered family at its default parameters (warmup where it applies)."""
    from lrsearch.schedules import families
    from lrsearch.schedules import get_family

    names = families()
    cols = 4
    rows = -(-len(names) // cols)
    fig, _ = _new_axes(None, figsize=(4.0 * cols, 2.6 * rows))
    fig.delaxes(fig.axes[0])
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        warmup = None if get_family(name).rises else {"frac": 0.05}
        s = Schedule(name, lr=lr, warmup=warmup)
        ax.plot(np.arange(total_steps), s.curve(total_steps) / lr)
        ax.set_title(f"{name}: {get_family(name).summary}", fontsize="small", wrap=True)
        ax.set_ylim(-0.05, 1.05)
        ax.grid(True, alpha=0.3)
    return fig


_RULE_LABELS = {"minimum": "minimum/10 (fastai rule)"}  # the marker is at the LR of the minimum / 10


def plot_range_test(
    result: RangeTestResult,
    *,
    ax: Axes | None = None,
    suggestions: bool = True,
    show_range: bool = True,
) -> Figure:
    """Loss against LR (log axis): raw points, the smoothed curve, suggestions and search range."""
    fig, ax = _new_axes(ax)
    lrs = result.lrs
    ax.plot(lrs, result.losses, ".", color="0.7", markersize=3, label="raw loss")
    ax.plot(lrs, result.smoothed, color="C0", label="smoothed")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (peak multiplier)")
    ax.set_ylabel(f"{result.config.get('mode', 'train')} loss")
    finite = result.smoothed[np.isfinite(result.smoothed)]
    if len(finite):
        low, high = float(np.min(finite)), float(finite[0])
        pad = 0.15 * max(high - low, abs(low) * 0.1, 1e-12)
        ax.set_ylim(low - pad, max(high, float(np.max(finite[: max(1, len(finite) * 9 // 10)]))) + 3 * pad)
    if show_range and len(lrs):
        low, high = result.search_range()
        ax.axvspan(low, high, color="C2", alpha=0.15, label=f"search range {low:.2g}..{high:.2g}")
    if suggestions:
        def mark(lr: float, style: str, color: str, label: str) -> None:
            y = float(np.interp(np.log(lr), np.log(lrs), result.smoothed))
            ax.plot([lr], [y], style, color=color, label=label)

        lowest = result.min_loss_lr()
        if lowest is not None:  # the true minimum, next to fastai's minimum/10 rule
            mark(lowest, "v", "k", f"loss minimum {lowest:.2g}")
        for i, (name, lr) in enumerate(result.suggestions().items()):
            if lr is not None:
                mark(lr, "o", f"C{i + 3}", f"{_RULE_LABELS.get(name, name)} {lr:.2g}")
        cutoff = result.cutoff_lr()
        if cutoff is not None:
            ax.axvline(cutoff, color="0.4", linestyle=":", label=f"cutoff {cutoff:.2g} (loss > 1.5x its min)")
    ax.grid(True, which="both", alpha=0.3)
    _legend_outside(ax)
    return fig


def _family(trial: Any) -> str:
    schedule = trial.user_attrs.get("schedule")
    family = schedule.get("family") if isinstance(schedule, dict) else trial.params.get("family")
    return str(family) if family is not None else "other"


def _robust_limit(values: np.ndarray, maximize: bool) -> float | None:
    """The edge beyond which values are outliers: the quartile away from the best, plus 1.5 times
    its distance to the best (``None``: nothing to clip)."""
    if len(values) < 4:
        return None
    best = float(np.max(values) if maximize else np.min(values))
    quartile = float(np.quantile(values, 0.25 if maximize else 0.75))
    edge = quartile + 1.5 * (quartile - best)
    outside = values < edge if maximize else values > edge
    return edge if edge != best and np.any(outside) else None


def plot_history(study: Any, *, ax: Axes | None = None) -> Figure:
    """Each trial's value by trial number, with the best full-length value so far.

    Full-length runs are filled dots, shorter screening runs open and faint (one colour per run
    length: their values do not compare with full runs'), pruned trials grey crosses at their last
    value; the best-so-far line runs over full-length runs only, each improvement labelled with its
    family. Outliers (beyond the worse quartile plus 1.5x its distance to the best) and non-finite
    values are drawn at the edge of the clipped y-range, counted in the legend.
    """
    import optuna

    from lrsearch.search import trial_fraction
    from lrsearch.search import run_label

    fig, ax = _new_axes(ax, (8.0, 4.5))
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    trials = [t for t in study.get_trials(deepcopy=False, states=states) if t.value is not None]
    values = np.asarray([t.value for t in trials], dtype=float)
    edge = _robust_limit(values[np.isfinite(values)], maximize)
    inside = np.isfinite(values) if edge is None else np.isfinite(values) & (
        (values >= edge) if maximize else (values <= edge))
    fractions = [trial_fraction(t) for t in trials]
    lengths = sorted({f for f, t in zip(fractions, trials) if t.state == states[0]}, reverse=True)
    for c, length in enumerate(lengths):  # C0 full runs, C1, C2 ... shorter ones
        mine = [i for i, t in enumerate(trials) if inside[i] and t.state == states[0] and fractions[i] == length]
        full = length >= 1 - 1e-9
        if mine:
            ax.plot([trials[i].number for i in mine], values[mine], "o", linestyle="none", color=f"C{c % 10}",
                    markerfacecolor=f"C{c % 10}" if full else "none", alpha=0.9 if full else 0.6,
                    label="full-length run" if full else f"{run_label(length)} run (screening)")
    pruned = [i for i, t in enumerate(trials) if inside[i] and t.state == states[1]]
    if pruned:
        ax.plot([trials[i].number for i in pruned], values[pruned], "x", linestyle="none", color="0.55",
                label="pruned (its last value)")
    best, xs, ys = None, [], []
    for t in sorted((t for t, f in zip(trials, fractions) if t.state == states[0] and f >= 1 - 1e-9),
                    key=lambda t: t.number):
        if np.isfinite(t.value) and (best is None or (t.value > best if maximize else t.value < best)):
            best = t.value
            ax.annotate(f"{_family(t)} {best:.4g}", (t.number, best), xytext=(4, -10 if not maximize else 4),
                        textcoords="offset points", fontsize="x-small", color="0.25")
        if best is not None:
            xs.append(t.number)
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="k", alpha=0.7, label="best full-length run so far")
    out = np.flatnonzero(~inside)
    if len(out):
        finite = values[inside]
        low, high = (float(np.min(finite)), float(np.max(finite))) if len(finite) else (0.0, 1.0)
        at = low if maximize else high
        pad = 0.05 * max(high - low, 1e-12)
        ax.set_ylim(low - (2 * pad if maximize else pad), high + (pad if maximize else 2 * pad))
        side = "below" if maximize else "above"
        ax.plot([trials[i].number for i in out], [at - pad if maximize else at + pad] * len(out),
                "^" if not maximize else "v", color="0.3", linestyle="none",
                label=f"{len(out)} {side} {at:.4g} (clipped)")
    ax.set_xlabel("trial")
    ax.set_ylabel((getattr(study, "metric_names", None) or ["objective value"])[0])
    ax.grid(True, alpha=0.3)
    _legend_outside(ax)
    return fig


def plot_runs(runs: Sequence[tuple[str, Schedule, str]], total_steps: int = 1000, *,
              ax: Axes | None = None) -> Figure:
    """The LR curves of ranked runs, full-length ones told apart from short screening runs.

    Full-length runs are solid (the first, the best, thickest), shorter runs dashed and faint: a
    short run's value does not compare with a full run's. One colour per run (at most 10).

    Args:
        runs: ``(label, schedule, run)`` triples, best first; ``run`` is ``"full"`` or a length
            such as ``"1/3"``.
        total_steps: The run length every curve is drawn at (a schedule is length-free).
        ax: Axes to draw on; a new figure when ``None``.
    """
    total_steps = check_int("total_steps", total_steps, low=1)
    if not runs or len(runs) > 10:
        raise ValueError(f"runs must hold 1 to 10 runs (one colour each) but got {len(runs)}.")
    fig, ax = _new_axes(ax, (8.0, 4.5))
    steps = np.arange(total_steps)
    for i, (label, schedule, run) in enumerate(runs):
        if not isinstance(schedule, Schedule):
            raise ValueError(f"runs must hold Schedule objects but {label!r} has {schedule!r}.")
        full = run == "full"
        ax.plot(steps, schedule.curve(total_steps), color=f"C{i}", linestyle="-" if full else "--",
                linewidth=(2.8 if i == 0 else 1.8) if full else 1.2, alpha=1.0 if full else 0.55, label=label)
    ax.set_xlabel(f"optimizer step (each schedule drawn over a {total_steps}-step run)")
    ax.set_ylabel("learning rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              title="solid: full-length runs\ndashed: short screening runs\n(values compare within a length)",
              title_fontsize="x-small", alignment="left")
    return fig
