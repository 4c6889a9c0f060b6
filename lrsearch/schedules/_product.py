"""``product``: the LR ratio is the product of several schedules' ratios (torch ``ChainedScheduler``).

``params.factors`` is a list of nested specs (``family``, ``params``, ``warmup``; no ``lr``), each
evaluated on the same clock and clipped to [0, 1], then multiplied: torch's ``ChainedScheduler`` of
chainable (multiplicative) schedulers, e.g. ``LinearLR`` warmup times ``CosineAnnealingLR``
(``[{"family": "piecewise", ...}, {"family": "cosine"}]``), ``ConstantLR`` times ``ExponentialLR``.
A factor's warmup is a phase of that factor only: it delays that factor, not the others. Momentum
cycling and ``plateau`` are refused in a factor. Not searched (like ``piecewise``); allowed in specs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from lrsearch._checks import show
from lrsearch.schedules._nested import nested_data
from lrsearch.schedules._nested import nested_describe
from lrsearch.schedules._nested import nested_schedule
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import register
from lrsearch.schedules._spec import Schedule


FACTOR_KEYS = ("family", "params", "warmup")


@dataclass(frozen=True)
class Factors:
    """A non-empty list of nested schedule specs (family, params, warmup)."""

    default: tuple[Mapping[str, Any], ...] = (nested_data(Schedule("constant")),)
    search: None = None
    doc: str = "schedules multiplied together: a list of {family, params, warmup}"

    rule = "a non-empty list of {family, params, warmup} specs"

    def check(self, name: str, value: Any) -> tuple[Mapping[str, Any], ...]:
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)) or not value:
            raise ValueError(f"{name} must be {self.rule} but got {show(value)}.")
        out = []
        for i, item in enumerate(value):
            where = f"{name}[{i}]"
            sub = nested_schedule(where, item, FACTOR_KEYS, 1.0, Schedule)
            if sub.has_momentum:
                raise ValueError(f"{where} cycles momentum, which a product does not apply; "
                                 f"set {where}.params.cycle_momentum to false.")
            out.append(nested_data(sub))
        return tuple(out)


def factor_schedules(p: Mapping[str, Any]) -> list[Schedule]:
    """The factors of a product's params as schedules at peak 1."""
    return [Schedule.from_dict({**f, "lr": 1.0}) for f in p["factors"]]


def _describe(p: Mapping[str, Any]) -> str:
    texts = [nested_describe(f) for f in factor_schedules(p)]
    return " × ".join(f"({t})" if " + " in t else t for t in texts)


def _product(t: np.ndarray, total: int, p: Mapping[str, Any]) -> np.ndarray:
    out = np.ones_like(t)
    for factor in factor_schedules(p):
        out = out * factor._multipliers(t, total)
    return out


register(Family("product", "the product of several schedules (torch ChainedScheduler)",
                {"factors": Factors()}, _product, describe=_describe))
