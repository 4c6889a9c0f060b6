"""Per-trial notes for optuna-dashboard: family, value, run length, why the trial stopped, the spec.

A trial page shows its user attrs as one line each; the ``schedule`` spec is a long JSON line
there. The note repeats it indented, with what a reader asks first: which family, what value,
how long it ran, and why it stopped (ran to the end, pruned and by which rule, failed).
``stop_counts`` counts the trials of a study by that reason, for the study's note.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import optuna

from lrsearch.schedules import Schedule


_State = optuna.trial.TrialState


def _run(attrs: Mapping[str, Any]) -> tuple[float, str]:
    """``(fraction of the full run, words)`` from the ``run_steps``/``full_steps`` user attrs."""
    from lrsearch.search import run_label

    run, full = attrs.get("run_steps"), attrs.get("full_steps")
    if not (isinstance(run, int) and isinstance(full, int) and full > 0):
        return 1.0, "full length"
    fraction = min(1.0, run / full)
    if fraction >= 1 - 1e-9:
        return 1.0, f"full length ({full} steps)"
    return fraction, f"{run_label(fraction)} of the full run ({run} of {full} steps)"


def stop_reason(trial: optuna.trial.FrozenTrial, promoted_to: int | None = None) -> str:
    """Why ``trial`` stopped, in a sentence that names the rule when one stopped it."""
    attrs = trial.user_attrs
    fraction, run = _run(attrs)
    if "duplicate_of" in attrs:
        return (f"not trained: a second attempt of the seed that trial {attrs['duplicate_of']} ran "
                "(each seed runs once)")
    if trial.state == _State.PRUNED:
        n = len(trial.intermediate_values)
        done = f"pruned after {n} evaluation{'' if n == 1 else 's'} of {run}"
        reason = attrs.get("prune_reason")
        return f"{done}: {reason}" if reason else f"{done} (the pruner recorded no reason)"
    if trial.state == _State.COMPLETE:
        if fraction < 1:
            text = f"ran its short screening run to the end: {run}"
            if promoted_to is not None:
                return text + f"; promoted: trial {promoted_to} ran it longer"
            return text + "; not promoted to a longer run (others ranked higher, or the budget ran out)"
        return f"ran to the end: {run}"
    if trial.state == _State.FAIL:
        if attrs.get("interrupted"):
            return "interrupted (Ctrl-C); a seed trial is run again when the study next starts"
        if attrs.get("error"):
            return f"failed: the objective raised {attrs['error']}"
        return ("failed without an error: its process died (a stale heartbeat) or the objective "
                "returned no value; a stale trial is retried when the study next starts")
    return f"{trial.state.name.lower()} ({run})"


def trial_note(trial: optuna.trial.FrozenTrial, metric: str = "value", promoted_to: int | None = None) -> str:
    """The Markdown note of one finished trial."""
    attrs = trial.user_attrs
    spec = attrs.get("schedule")
    schedule: Schedule | None = None
    if isinstance(spec, dict):
        try:
            schedule = Schedule.from_dict(spec)
        except ValueError:
            schedule = None
    family = schedule.family if schedule is not None else str(trial.params.get("family", "no schedule"))
    value = "none" if trial.value is None else f"{trial.value:.6g}"
    if trial.state == _State.PRUNED and trial.value is not None:
        value += " (its last reported value)"
    _, run = _run(attrs)
    at = f" at peak LR {schedule.lr:.3g}" if schedule is not None else ""
    lines = [f"## Trial {trial.number}: {family}{at}, {metric} {value}", "",
             f"- **State:** {trial.state.name.lower()}",
             f"- **Why it stopped:** {stop_reason(trial, promoted_to)}"]
    if trial.state not in (_State.COMPLETE, _State.PRUNED) or "duplicate_of" in attrs:
        lines.append(f"- **Run:** {run}")
    if "promoted_from" in attrs:
        scale, sampled = attrs.get("lr_scale"), trial.params.get("lr")
        moved = f", its peak LR times {scale:.3g}" if isinstance(scale, (int, float)) else ""
        if schedule is not None and isinstance(scale, (int, float)) and isinstance(sampled, float):
            moved = (f": it trained at peak LR {schedule.lr:.3g} (user attr `trained_lr`), the sampler's point "
                     f"`lr` {sampled:.3g} times `lr_scale` {scale:.3g} for the longer run")
        lines.append(f"- **Promoted from:** trial {attrs['promoted_from']}{moved}")
    if attrs.get("seed"):
        lines.append(f"- **Seeded by the range test:** `{attrs['seed']}`")
    optimizer = attrs.get("optimizer")
    if isinstance(optimizer, Mapping):  # searched (``OptimizerSpace``): the family, decay, group ratios
        decay = optimizer.get("weight_decay")
        ratios = ", ".join(f"{g} x{r:.3g}" for g, r in (optimizer.get("ratios") or {}).items())
        lines.append(f"- **Optimizer:** `{optimizer.get('name')}`"
                     + (f", weight decay {decay:.3g}" if isinstance(decay, (int, float)) else "")
                     + (f", group LR ratios {ratios}" if ratios else ""))
    if schedule is not None:
        lines += [f"- **Schedule:** `{schedule.describe()}`", "",
                  "Spec (`lrsearch.Schedule.from_dict(spec).build(optimizer, total_steps)` rebuilds it "
                  "for any run length):", "", "```json", json.dumps(spec, indent=2), "```"]
    return "\n".join(lines) + "\n"


def promotions(trials: list[optuna.trial.FrozenTrial]) -> dict[int, int]:
    """``{trial number: number of the trial that reran it longer}``."""
    out: dict[int, int] = {}
    for t in trials:
        source = t.user_attrs.get("promoted_from")
        if isinstance(source, int):
            out.setdefault(source, t.number)
    return out


def stop_kind(trial: optuna.trial.FrozenTrial, promoted_to: int | None = None) -> str:
    """Why ``trial`` stopped, as one of a few kinds a study's trials are counted by."""
    attrs = trial.user_attrs
    fraction, _ = _run(attrs)
    if "duplicate_of" in attrs:
        return "not trained: a second attempt of a seed"
    if trial.state == _State.PRUNED:
        reason = str(attrs.get("prune_reason") or "")
        rule = re.match(r"([A-Za-z_]\w*):", reason)  # "ForecastPruner: at evaluation 4/12 ..."
        if reason.startswith("non-finite"):
            return "pruned: non-finite metric"
        return f"pruned by {rule.group(1)}" if rule else "pruned"
    if trial.state == _State.COMPLETE:
        if fraction >= 1:
            return "full-length run, ran to the end"
        return "short run, promoted to a longer run" if promoted_to is not None else "short run, not promoted"
    if trial.state == _State.FAIL:
        if attrs.get("interrupted"):
            return "failed: interrupted (Ctrl-C)"
        return "failed: the objective raised" if attrs.get("error") else "failed: its process died"
    return trial.state.name.lower()


def stop_counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """``{kind: trials}`` over a study's trials (``stop_kind``), most frequent first."""
    promoted = promotions(trials)
    counts: dict[str, int] = {}
    for t in trials:
        kind = stop_kind(t, promoted.get(t.number))
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
