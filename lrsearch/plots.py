"""Plots (matplotlib, imported only here and only when a plot is asked for).

Every function takes ``ax=None`` and returns the ``Figure``; none calls ``plt.show()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from lrsearch._checks import check_int
from lrsearch.schedules import Schedule


if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from lrsearch._range_result import RangeTestResult


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
    for label, s in items:
        curve = s.curve(total_steps)
        ax.plot(steps, curve / s.lr if relative else curve, label=label, **line_kwargs)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("LR / peak" if relative else "learning rate")
    if log_scale:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if len(items) <= 12:
        ax.legend(fontsize="small")
    return fig


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
        for i, (name, lr) in enumerate(result.suggestions().items()):
            if lr is not None:
                y = float(np.interp(np.log(lr), np.log(lrs), result.smoothed)) if len(lrs) else 0.0
                ax.plot([lr], [y], "o", color=f"C{i + 3}", label=f"{name} {lr:.2g}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_history(study: Any, *, ax: Axes | None = None) -> Figure:
    """Each trial's value by trial number (complete and pruned), with the best so far."""
    import optuna

    fig, ax = _new_axes(ax)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best, xs, ys = None, [], []
    for state, marker in ((optuna.trial.TrialState.COMPLETE, "o"), (optuna.trial.TrialState.PRUNED, "x")):
        trials = [t for t in study.get_trials(deepcopy=False, states=(state,)) if t.value is not None]
        ax.plot([t.number for t in trials], [t.value for t in trials], marker, linestyle="none",
                alpha=0.7, label=state.name.lower())
    for t in sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                    key=lambda t: t.number):
        if t.value is None or not np.isfinite(t.value):
            continue
        best = t.value if best is None else (max(best, t.value) if maximize else min(best, t.value))
        xs.append(t.number)
        ys.append(best)
    ax.step(xs, ys, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective value")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    return fig
