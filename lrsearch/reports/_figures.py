"""Figures of a study for optuna-dashboard: plotly figures for the study page, PNGs for artifacts.

* ``top_schedules``: the top-k LR curves overlaid over the fraction of the run;
* ``best_per_family``: each family's best value, one marker per run length;
* ``value_against_lr``: every trial's value against the peak LR it trained at, a colour and shape per family.

plotly and matplotlib are imported inside the functions only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna

from lrsearch.reports._notes import _run
from lrsearch.schedules import Schedule


if TYPE_CHECKING:
    from matplotlib.figure import Figure

_NOMINAL = 1000  # steps at which a length-free spec is drawn over the fraction of the run
_COMPLETE, _PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173")


def _rows(trials: Sequence[optuna.trial.FrozenTrial], states: tuple = (_COMPLETE,)) -> list[dict[str, Any]]:
    """Finished trials with a finite value and a schedule, as plain rows."""
    rows = []
    for t in trials:
        spec = t.user_attrs.get("schedule")
        if t.state not in states or t.value is None or not math.isfinite(t.value) or not isinstance(spec, dict):
            continue
        if "duplicate_of" in t.user_attrs:
            continue
        try:
            schedule = Schedule.from_dict(spec)
        except ValueError:
            continue
        fraction, run = _run(t.user_attrs)
        label = "full" if fraction >= 1 else run.split(" of")[0]
        rows.append({"number": t.number, "schedule": schedule, "family": schedule.family, "lr": schedule.lr,
                     "value": float(t.value), "fraction": fraction, "run": label, "state": t.state})
    return rows


def _ranked(rows: list[dict[str, Any]], maximize: bool) -> list[dict[str, Any]]:
    """Longest runs first (values of shorter runs do not compare), then best value first."""
    return sorted(rows, key=lambda r: (-round(r["fraction"], 6), -r["value"] if maximize else r["value"]))


def _colour(families: list[str]) -> dict[str, str]:
    return {f: _COLOURS[i % len(_COLOURS)] for i, f in enumerate(sorted(families))}


_SHAPES = ("circle", "square", "diamond")


def _style(families: list[str]) -> dict[str, tuple[str, str]]:
    """A distinct (colour, marker shape) per family: ten well-separated colours, then the same ten
    with the next shape, so 17 families never share a look."""
    ten = _COLOURS[:10]
    return {f: (ten[i % 10], _SHAPES[(i // 10) % len(_SHAPES)]) for i, f in enumerate(sorted(set(families)))}


def _layout(fig: Any, title: str, subtitle: str, x: str, y: str) -> Any:
    """Titles on the left (the dashboard's tool bar sits top right), the legend outside on the right;
    450 px high: the dashboard's card does not grow with the figure."""
    axis = {"gridcolor": "#e5e5e5", "zerolinecolor": "#cccccc", "linecolor": "#999999", "showline": True,
            "automargin": True}
    fig.update_layout(title={"text": f"{title}<br><span style='font-size:12px;color:#555'>{subtitle}</span>",
                             "x": 0.01, "xanchor": "left", "y": 0.97, "yanchor": "top", "font": {"size": 15}},
                      template="none", paper_bgcolor="white", plot_bgcolor="white", font={"size": 12},
                      xaxis={"title": {"text": x}, **axis}, yaxis={"title": {"text": y}, **axis},
                      margin={"l": 60, "r": 10, "t": 80, "b": 50}, hoverlabel={"align": "left"},  # template: 6 kB
                      legend={"x": 1.02, "xanchor": "left", "y": 1, "font": {"size": 11}}, height=450)
    return fig


def _log_ticks(values: list[float]) -> dict[str, Any]:
    """Ticks at 1, 2, 5 x 10^k across ``values`` (plotly's own label every minor tick)."""
    if not values:
        return {}
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    ticks = [m * 10.0 ** e for e in range(low, high + 1) for m in (1, 2, 5)
             if min(values) / 2.5 <= m * 10.0 ** e <= max(values) * 2.5]
    return {"tickvals": ticks, "ticktext": [f"{t:g}" for t in ticks]}


def _g(values: Any) -> list[float]:
    """Four significant digits: the figure's JSON is stored in the study, so keep it small."""
    return [float(f"{v:.4g}") for v in np.asarray(values, dtype=float)]


def top_schedules(trials: Sequence[optuna.trial.FrozenTrial], *, maximize: bool = False, metric: str = "value",
                  k: int = 8) -> Any:
    """The ``k`` best completed trials' LR curves over the fraction of the run (full runs first)."""
    import plotly.graph_objects as go

    rows = _ranked(_rows(trials), maximize)[:k]
    colour = _colour([r["family"] for r in rows])
    x = np.linspace(0, 1, 121)
    t = np.minimum(_NOMINAL - 1, np.round(x * (_NOMINAL - 1))).astype(int)
    fig = go.Figure()
    for i, r in enumerate(rows):
        s = r["schedule"]
        fig.add_trace(go.Scatter(
            x=_g(x), y=_g(s.lr * s.multipliers(t, _NOMINAL)), mode="lines",
            name=f"#{r['number']} {r['family']} {r['value']:.4g}" + ("" if r["run"] == "full" else f" ({r['run']})"),
            line={"width": 3 if i == 0 else 1.6, "color": colour[r["family"]],
                  "dash": "solid" if r["run"] == "full" else "dot"},
            hovertemplate=f"trial {r['number']}: {s.describe()}<br>{metric} {r['value']:.4g} ({r['run']} run)"
                          "<br>fraction %{x:.2f}: lr %{y:.3g}<extra></extra>"))
    title = f"Top {len(rows)} LR schedules by final {metric}" + (f": #{rows[0]['number']} {rows[0]['family']} "
                                                                  "wins" if rows else "")
    return _layout(fig, title, "full runs first (solid), then short ones (dotted); hover for the schedule",
                   "fraction of the run", "learning rate")


def best_per_family(trials: Sequence[optuna.trial.FrozenTrial], *, maximize: bool = False,
                    metric: str = "value") -> Any:
    """Each family's best completed value, one marker per run length; best family on top."""
    import plotly.graph_objects as go

    rows = _rows(trials)
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _ranked(rows, maximize):
        best.setdefault((r["family"], r["run"]), r)
    tried = {}
    for t in trials:
        family = t.params.get("family")
        if isinstance(family, str) and t.state.is_finished():
            tried[family] = tried.get(family, 0) + 1
    order = []  # families by their longest run's best value
    for r in _ranked(list(best.values()), maximize):
        if r["family"] not in order:
            order.append(r["family"])
    order += sorted(f for f in tried if f not in order)  # families with no completed run: listed, empty
    labels = {f: f"{f} ({tried.get(f, 0)} trials)" for f in order}
    fig = go.Figure()
    runs = sorted({r["run"] for r in best.values()}, key=lambda run: (run != "full", run))
    for run in runs:
        pts = [best[(f, run)] for f in order if (f, run) in best]
        fig.add_trace(go.Scatter(
            x=_g([p["value"] for p in pts]), y=[labels[p["family"]] for p in pts], mode="markers",
            name="full runs" if run == "full" else f"{run} runs",
            marker={"size": 13 if run == "full" else 10, "symbol": "circle" if run == "full" else "circle-open",
                    "line": {"width": 2}},
            text=[f"trial {p['number']}: {p['schedule'].describe()}" for p in pts],
            hovertemplate="%{text}<br>" + metric + " %{x:.4g}<extra></extra>"))
    winner = next((r for r in _ranked(list(best.values()), maximize)), None)
    title = f"Best {metric} per family" + (f": {winner['family']} wins" if winner else "")
    won = f"{winner['value']:.4g} in a {winner['run']} run (trial {winner['number']}); " if winner else ""
    fig = _layout(fig, title, won + "values compare only within one run length", f"best {metric}", "")
    fig.update_yaxes(categoryorder="array", categoryarray=[labels[f] for f in reversed(order)])
    return fig


def value_against_lr(trials: Sequence[optuna.trial.FrozenTrial], *, maximize: bool = False,
                     metric: str = "value") -> Any:
    """Every trial's value against the peak LR it trained at (log axis); each family its own colour
    and shape; filled: a full run, open: a short run, with an x inside: pruned (its last value)."""
    import plotly.graph_objects as go

    rows = _rows(trials, (_COMPLETE, _PRUNED))
    style = _style([r["family"] for r in rows])
    fig = go.Figure()
    for family in sorted(style):
        colour, shape = style[family]
        pts = sorted((r for r in rows if r["family"] == family),  # full runs first: the legend shows a filled marker
                     key=lambda p: (p["state"] == _PRUNED, p["run"] != "full"))
        fig.add_trace(go.Scatter(
            x=_g([p["lr"] for p in pts]), y=_g([p["value"] for p in pts]), mode="markers", name=family,
            marker={"color": colour, "size": [12 if p["run"] == "full" else 9 for p in pts],
                    "symbol": [f"{shape}-x-open" if p["state"] == _PRUNED else shape if p["run"] == "full"
                               else f"{shape}-open" for p in pts], "line": {"width": 2, "color": colour}},
            text=[f"trial {p['number']} ({'pruned, last value' if p['state'] == _PRUNED else p['run'] + ' run'}): "
                  f"{p['schedule'].describe()}" for p in pts],
            hovertemplate="%{text}<br>peak lr %{x:.3g}: " + metric + " %{y:.4g}<extra></extra>"))
    fig = _layout(fig, f"{metric} against peak LR, by family",
                  "filled: full run, open: short run, x inside: pruned (its last value); peak LR as trained",
                  "peak learning rate (as trained)", metric)
    return fig.update_xaxes(type="log", **_log_ticks([r["lr"] for r in rows]))


def trial_curve(schedule: Schedule, total_steps: int | None = None, title: str | None = None) -> Figure:
    """A readable matplotlib figure of one schedule's LR (900 x 450 px at dpi 100)."""
    from matplotlib.figure import Figure

    steps = total_steps or _NOMINAL
    fig = Figure(figsize=(9.0, 4.5), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(steps)
    ax.plot(x, schedule.curve(steps), linewidth=2, label="learning rate")
    warm = schedule.warmup_steps(steps)
    if warm > 0:
        ax.axvline(warm, color="grey", linestyle=":", label=f"end of the {schedule.warmup['shape']} warmup")
    ax.set_xlabel("optimizer step" if total_steps else f"optimizer step (of a {_NOMINAL}-step run; the spec is "
                  "length-free)")
    ax.set_ylabel("learning rate")
    ax.set_title(title or schedule.describe(), fontsize=11, wrap=True)
    ax.grid(True, alpha=0.3)
    if warm > 0:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    return fig
