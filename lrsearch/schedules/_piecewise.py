"""``piecewise`` (phases as data, fastai's ``combine_scheds``) and ``plateau`` (metric driven).

A piecewise spec lists phases, each ``{"frac", "anneal", "start", "end", "power"}``: the phase
covers ``frac`` of the run and anneals from ``start`` to ``end`` (ratios of the peak) with one of
the primitives in ``_anneal``. The fracs sum to 1. Phases start on whole steps: phase ``i``
starts at step ``round(T * (frac_0 + ... + frac_{i-1}))`` (half up, the sum exact), and its
first step is exactly its ``start`` ratio.

``plateau`` is a constant peak (after the optional warmup) whose LR the torch adapter multiplies by
``factor`` whenever ``lrsearch.PlateauMonitor`` reports no improvement for ``patience``
evaluations (torch ``ReduceLROnPlateau`` semantics), never below ``min_ratio``. ``lr_at`` gives the
schedule before any reduction, since reductions depend on the metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch.schedules._anneal import ANNEALERS
from lrsearch.schedules._anneal import anneal_poly
from lrsearch.schedules._anneal import combine_steps
from lrsearch.schedules._decay import flat
from lrsearch.schedules._params import MIN_RATIO
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import Int
from lrsearch.schedules._params import IntRange
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import register


PHASE_ANNEALS = (*ANNEALERS, "poly")
_PHASE_KEYS = ("frac", "anneal", "start", "end", "power")


def _ratio(name: str, value: Any) -> float:
    value = check_float(name, value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] but got {value!r}.")
    return value


@dataclass(frozen=True)
class Phases:
    """A list of phase dicts whose ``frac`` values are positive and sum to 1."""

    default: tuple[Mapping[str, Any], ...]
    search: None = None
    doc: str = "phases as data: frac, anneal, start, end, power"

    rule = "a non-empty list of phases whose fracs sum to 1"

    def check(self, name: str, value: Any) -> tuple[Mapping[str, Any], ...]:
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{name} must be {self.rule} but got {value!r}.")
        phases = [self._phase(f"{name}[{i}]", item) for i, item in enumerate(value)]
        total = math.fsum(ph["frac"] for ph in phases)
        if not phases or abs(total - 1.0) > 1e-9:
            raise ValueError(f"{name} must be {self.rule} but got fracs summing to {total!r}.")
        return tuple(phases)

    @staticmethod
    def _phase(name: str, item: Any) -> Mapping[str, Any]:
        if not isinstance(item, Mapping):
            raise ValueError(f"{name} must be a dict with keys {', '.join(_PHASE_KEYS)} but got {item!r}.")
        unknown = sorted(set(item) - set(_PHASE_KEYS))
        if unknown:
            raise ValueError(f"{name} has unknown key {unknown[0]!r}; expected {', '.join(_PHASE_KEYS)}.")
        for key in ("frac", "anneal", "start", "end"):
            if key not in item:
                raise ValueError(f"{name} must have the key {key!r} but got {dict(item)!r}.")
        frac = check_float(f"{name}.frac", item["frac"])
        if not 0.0 < frac <= 1.0:
            raise ValueError(f"{name}.frac must be in (0, 1] but got {frac!r}.")
        anneal = check_choice(f"{name}.anneal", item["anneal"], PHASE_ANNEALS)
        start, end = _ratio(f"{name}.start", item["start"]), _ratio(f"{name}.end", item["end"])
        if anneal == "exp" and (start <= 0.0 or end <= 0.0):
            raise ValueError(f"{name}.start and .end must be > 0 for anneal 'exp' but got {start!r}, {end!r}.")
        power = check_float(f"{name}.power", item.get("power", 1.0))
        if power <= 0.0:
            raise ValueError(f"{name}.power must be > 0 but got {power!r}.")
        return {"frac": frac, "anneal": anneal, "start": start, "end": end, "power": power}


def _phase_fn(phase: Mapping[str, Any]) -> Any:
    start, end = phase["start"], phase["end"]
    if phase["anneal"] == "poly":
        return lambda pos: anneal_poly(start, end, pos, phase["power"])
    anneal = ANNEALERS[phase["anneal"]]
    return lambda pos: anneal(start, end, pos)


def _piecewise(t: np.ndarray, total: int, p: Mapping[str, Any]) -> np.ndarray:
    phases = p["phases"]
    return combine_steps([ph["frac"] for ph in phases], [_phase_fn(ph) for ph in phases], t, total)


register(
    Family(
        "piecewise",
        "phases given as data, each annealing between two ratios",
        {"phases": Phases(({"frac": 1.0, "anneal": "cos", "start": 1.0, "end": 0.0, "power": 1.0},))},
        _piecewise,
    )
)
register(
    Family(
        "plateau",
        "hold the peak; multiply by factor when the metric stops improving",
        {
            "mode": Choice("min", ("min", "max"), doc="whether the metric is minimised or maximised"),
            "factor": Float(0.1, 0.0, 1.0, low_open=True, high_open=True,
                            search=FloatRange(0.1, 0.5, log=True)),
            "patience": Int(10, 0, search=IntRange(2, 10), doc="evaluations without improvement"),
            "threshold": Float(1e-4, 0.0, None, search=FloatRange(1e-4, 1e-2, log=True)),
            "threshold_mode": Choice("rel", ("rel", "abs"), search=Categorical(("rel", "abs"))),
            "cooldown": Int(0, 0, search=IntRange(0, 2)),
            "min_ratio": MIN_RATIO,
        },
        flat,
    )
)
