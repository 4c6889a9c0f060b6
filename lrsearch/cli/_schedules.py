"""``lrsearch families | schedule | gallery``: the schedule library from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lrsearch import __version__
from lrsearch._checks import check_file_path
from lrsearch.schedules import Schedule
from lrsearch.schedules import families
from lrsearch.schedules import get_family
from lrsearch.schedules import plain


def _key_values(pairs: list[str], option: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` pairs; a value is JSON when it parses as JSON, else a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} must look like KEY=VALUE but got {pair!r}.")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _schedule_from_args(args: argparse.Namespace) -> Schedule:
    source = args.spec
    if source.endswith(".json") or Path(source).is_file():
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"spec file {source!r} does not exist.")
        base = Schedule.from_json(path.read_text())
    else:
        base = Schedule(get_family(source).name)
    changes: dict[str, Any] = {}
    if args.lr is not None:
        changes["lr"] = args.lr
    if args.param:
        changes["params"] = {**base.params, **_key_values(args.param, "--param")}
    if args.warmup:
        changes["warmup"] = {**base.warmup, **_key_values(args.warmup, "--warmup")}
    return base.replace(**changes) if changes else base


# The spec keys beside family, lr and params, each in a spec only when set (lrsearch.schedules._modifiers).
SPEC_KEYS = (
    ("warmup", "{frac, shape: linear|cosine|exp|constant|exp_tau, start_ratio, overlay}: a phase "
               "before the family, or with overlay true a factor on it (pytorch_warmup)"),
    ("tail", "{kind: swa|ema, start, ...}: average the weights over the end of the run"),
    ("floor", "a ratio of the peak the LR stays above after warmup (MONAI end_lr)"),
    ("noise", "{range: [a, b], pct, std, seed, type: normal|uniform}: timm's LR noise"),
    ("stairs", "N: the LR steps once per N-th of the run (a scheduler stepped per epoch)"),
    ("groups", "[null, {family, params, ...}] or {index: spec}: a schedule per param group"),
)


def _plain_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _families_table() -> str:
    lines = []
    for name in families():
        fam = get_family(name)
        # schedule.params, not to_dict: a later parameter left out of to_dict at its default (k) shows too
        params = ", ".join(f"{k}={_plain_value(v)}" for k, v in plain(Schedule(name).params).items())
        lines.append(f"{name:<16} {fam.summary}\n{'':<16} {params or '(no parameters)'}")
    lines.append("\nspec keys beside family, lr and params:")
    lines += [f"{key:<16} {text}" for key, text in SPEC_KEYS]
    return "\n".join(lines)


def _cmd_families(args: argparse.Namespace) -> int:
    print(_families_table())
    return 0


def _cmd_schedule(args: argparse.Namespace) -> int:
    from lrsearch.reports import plot_schedules

    schedule = _schedule_from_args(args)
    print(json.dumps(schedule.to_dict(), indent=2, ensure_ascii=False))
    print(schedule.describe())
    chosen = _chosen_steps(args.spec)
    steps = args.steps if args.steps is not None else chosen or 1000
    out = Path(check_file_path("--out", args.out or f"{schedule.family}.png", create=True))
    plot_schedules({schedule.describe(): schedule}, steps, log_scale=args.log).savefig(out, dpi=110)
    why = " (the run length the spec was chosen for)" if args.steps is None and chosen else ""
    print(f"wrote {out}: {steps} optimizer steps{why}")
    return 0


def _chosen_steps(source: str) -> int | None:
    """The run length an exported spec was chosen for (``export_best(..., total_steps=)`` writes it
    as ``chosen_for.total_steps``), or ``None``."""
    path = Path(source)
    if not path.is_file():
        return None
    try:
        chosen = json.loads(path.read_text()).get("chosen_for")
    except (ValueError, AttributeError):
        return None
    steps = chosen.get("total_steps") if isinstance(chosen, dict) else None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) and steps > 0 else None


def _cmd_gallery(args: argparse.Namespace) -> int:
    from lrsearch.reports import plot_family_gallery

    out = Path(check_file_path("--out", args.out, create=True))  # as open: only studies/ is made when missing
    print(f"lrsearch {__version__}: {len(families())} schedule families\n")
    print(_families_table())
    plot_family_gallery(args.steps).savefig(out, dpi=90)
    print(f"\nwrote {out} (every family at its defaults, {args.steps} steps)")
    return 0
