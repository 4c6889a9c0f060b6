"""What a spec adds around its family: warmup (phase or overlay), ``floor``, ``noise``, ``stairs``
and per-param-group ``groups``; each is a top-level key that ``to_dict`` writes only when set.

At step ``t`` of a ``T``-step run the ratio of the peak is, in this order:

1. ``stairs: N`` (per-epoch stepping): ``t, T <- floor(t N / T), N``; the LR is constant over each
   of N equal parts of the run and is the N-step schedule's value at that part's index, as a torch
   scheduler stepped once per epoch over N epochs of ``T / N`` steps.
2. The family with its warmup (``_warmup``), clipped to [0, 1].
3. ``floor`` (a ratio of the peak): after warmup (``t >= W``, ``W = round(frac T)``, also for an
   overlay; with ``exp_tau``, ``W`` is ``tau``) the ratio is at least ``floor``; MONAI's
   ``WarmupCosineSchedule(end_lr=floor * lr)`` (MONAI's end_lr is absolute: the same for every
   param group; here it is a ratio of each group's own peak).
4. ``noise``: timm's LR noise (``_noise``), which may take the LR above the peak.

``groups``: a list by param-group index (``null`` for a group that follows the main schedule) or a
mapping ``{index: spec}`` of nested specs without ``lr`` (family, params, warmup, noise, floor,
stairs); param group ``i`` runs ``Schedule.for_group(i)`` at its own ratio to the peak. The spec's
own ``multipliers``/``curve`` are the main schedule's. Stored as ``{"i": spec}``, so a list and the
equivalent mapping give equal schedules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch._checks import check_steps
from lrsearch._checks import show
from lrsearch.schedules._nested import nested_data
from lrsearch.schedules._nested import nested_describe
from lrsearch.schedules._nested import nested_schedule
from lrsearch.schedules._noise import apply_noise
from lrsearch.schedules._noise import describe_noise
from lrsearch.schedules._noise import normalise_noise
from lrsearch.schedules._specdata import freeze
from lrsearch.schedules._specdata import plain
from lrsearch.schedules._warmup import warmup_factor
from lrsearch.schedules._warmup import warmup_steps


EXTRA_KEYS = ("noise", "floor", "stairs", "groups")
GROUP_KEYS = ("family", "params", "warmup", "noise", "floor", "stairs")
_MAX_GROUP = 2**31


def _floor(value: Any) -> float | None:
    if value is None:
        return None
    value = check_float("floor", value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"floor must be None or a ratio of the peak in [0, 1) but got {value!r}.")
    return value


def _group_index(key: Any) -> int:
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    index = check_int("groups key", key, low=0)
    if index >= _MAX_GROUP:
        raise ValueError(f"groups key must be a param-group index < 2**31 but got {show(key)}.")
    return index


def _groups(given: Any, lr: float, cls: type) -> Mapping[str, Any] | None:
    if given is None:
        return None
    if isinstance(given, Mapping):
        items = [(_group_index(k), v) for k, v in given.items()]
    elif isinstance(given, (list, tuple)):
        items = [(i, v) for i, v in enumerate(given) if v is not None]
    else:
        raise ValueError(f"groups must be a list (by param-group index) or a dict {{index: spec}} "
                         f"but got {show(given)}.")
    out = {i: nested_data(nested_schedule(f"groups[{i}]", v, GROUP_KEYS, lr, cls)) for i, v in items}
    return freeze({str(i): out[i] for i in sorted(out)}) if out else None


def normalise_extras(data: Mapping[str, Any], lr: float, cls: type) -> dict[str, Any]:
    """The validated values of ``EXTRA_KEYS`` from ``data`` (a key left out or ``None``: unset)."""
    stairs = data.get("stairs")
    return {
        "noise": normalise_noise(data.get("noise")),
        "floor": _floor(data.get("floor")),
        "stairs": None if stairs is None else check_steps("stairs", stairs, low=1),
        "groups": _groups(data.get("groups"), lr, cls),
    }


def extras_to_dict(schedule: Any) -> dict[str, Any]:
    """The set extras of ``schedule`` as plain data."""
    values = {k: getattr(schedule, k) for k in EXTRA_KEYS}
    return {k: plain(v) for k, v in values.items() if v is not None}


def describe_extras(schedule: Any) -> str:
    """The set extras in words, each after a `` + ``."""
    parts = []
    if schedule.floor is not None:
        parts.append(f"floor {schedule.floor:.3g}")
    if schedule.noise is not None:
        parts.append(describe_noise(schedule.noise))
    if schedule.stairs is not None:
        parts.append(f"{schedule.stairs} stairs")
    if schedule.groups is not None:
        groups = (f"{i}: {nested_describe(schedule.for_group(int(i)))}" for i in schedule.groups)
        parts.append("groups {" + "; ".join(groups) + "}")
    return "".join(f" + {p}" for p in parts)


def group_schedule(schedule: Any, index: int) -> Any:
    """The schedule that param group ``index`` runs: its nested spec, else the main one."""
    data = schedule.to_dict()
    sub = (data.pop("groups", None) or {}).get(str(check_int("index", index, low=0)))
    if sub is not None:
        data = {**{k: v for k, v in data.items() if k in ("version", "lr", "tail")}, **sub}
    return type(schedule).from_dict(data)


def params_to_dict(family: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """The params as plain data, leaving out a later addition (``hide_default``) at its default."""
    specs = family.params
    return {k: plain(v) for k, v in params.items()
            if not (getattr(specs[k], "hide_default", False) and v == specs[k].default)}


def stair_clock(schedule: Any, t: np.ndarray, total: int) -> tuple[np.ndarray, int]:
    """``(floor(t N / T), N)`` with ``stairs: N`` (exact in integers while ``t N`` fits), else ``(t, T)``."""
    n = schedule.stairs
    if n is None:
        return t, total
    if t.size and float(t.max()) * n >= 2.0**62:
        return np.floor(t * (n / total)), n
    return ((t.astype(np.int64) * n) // total).astype(float), n


def _shaped(schedule: Any, t: np.ndarray, total: int) -> np.ndarray:
    """The family with its warmup, as a phase in front of it or as an overlay on top of it."""
    fam, params, wu = schedule.spec_family, schedule.params, schedule.warmup
    w = warmup_steps(wu["frac"], total)
    shape, start = wu["shape"], wu["start_ratio"]
    if wu["overlay"]:
        out = fam.multiplier(t, total, params)
        if w:
            warm = np.ones(t.shape, bool) if shape == "exp_tau" else t < w
            out[warm] = out[warm] * warmup_factor(t[warm], w, shape, start)
        return out
    out = np.empty(t.shape)
    main = t >= w
    out[main] = fam.multiplier(t[main] - w, total - w, params)
    if w and not np.all(main):
        first = fam.multiplier(np.zeros(1), total - w, params)[0]
        out[~main] = first * warmup_factor(t[~main], w, shape, start)
    return out


def schedule_multipliers(schedule: Any, t: np.ndarray, total: int) -> np.ndarray:
    """The ratio of the peak at steps ``t`` (``< total``) of a ``total``-step run, steps 1-4 above."""
    t, total = stair_clock(schedule, t, total)
    # Extreme but valid params (gamma ** 5000, t / 1e-300) over- or underflow to the right
    # limit, 0 or 1; a division by zero or NaN would be a bug and stays loud.
    with np.errstate(over="ignore", under="ignore"):
        out = np.clip(_shaped(schedule, t, total), 0.0, 1.0)
    if schedule.floor is not None:
        after = t >= warmup_steps(schedule.warmup["frac"], total)
        out = np.where(after, np.maximum(out, schedule.floor), out)
    if schedule.noise is not None:
        out = apply_noise(schedule.noise, t, total, out)
    return out
