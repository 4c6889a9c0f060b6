"""The family registry: each family is a name, its parameters as data and a closed-form multiplier.

A family's ``multiplier(t, total, params)`` maps step indices ``t`` (a float array, counted from the
end of warmup) of a phase ``total`` steps long to the LR as a ratio of the peak. It is a plain
module-level function of the step, as nanoGPT's ``get_lr(it)``: no optimizer, no hidden state.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from lrsearch.schedules._params import ParamSpec


Multiplier = Callable[[np.ndarray, int, Mapping[str, Any]], np.ndarray]


@dataclass(frozen=True)
class Family:
    """A schedule family.

    Attributes:
        name: Registry key, as written in a spec's ``family``.
        summary: One line for listings and plots.
        params: Parameter specs (defaults, rules, search ranges), in a stable order.
        multiplier: Closed form ``(t, total, params) -> ratio of the peak LR``.
        momentum: Optional closed form of the momentum (or Adam beta1) at ``t``; ``None`` when the
            family does not cycle momentum, or when it returns ``None`` for these params.
        rises: The family has a rise of its own (one-cycle, cyclic), so it takes no warmup.
        decays_late: The family holds a high LR and decays late (wsd, flat_cos, step, ...); a pruner
            that compares trials at equal steps must not judge it before its decay.
        schedule_free: The family holds its LR and trains with the optimizer's Schedule-Free form
            (``lrsearch.optim.schedule_free``), whose weight average stands in for the decay.
        check: Optional cross-parameter rule, raising ``ValueError``.
        describe: Optional short text of the params for ``Schedule.describe`` (default: the
            params that differ from their defaults).
    """

    name: str
    summary: str
    params: Mapping[str, ParamSpec]
    multiplier: Multiplier
    momentum: Callable[[np.ndarray, int, Mapping[str, Any]], np.ndarray | None] | None = None
    rises: bool = False
    decays_late: bool = False
    schedule_free: bool = False
    check: Callable[[Mapping[str, Any]], None] | None = None
    describe: Callable[[Mapping[str, Any]], str] | None = None
    defaults: Mapping[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "defaults", {k: s.default for k, s in self.params.items()})


FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add ``family`` to the registry (one line per family module)."""
    if family.name in FAMILIES:
        raise ValueError(f"family {family.name!r} is already registered.")
    FAMILIES[family.name] = family
    return family


def families() -> list[str]:
    """Names of every registered schedule family, in registration order."""
    return list(FAMILIES)


def get_family(name: Any) -> Family:
    """Look a family up by name, with a ``ValueError`` that lists the known ones."""
    if not isinstance(name, str) or name not in FAMILIES:
        known = ", ".join(FAMILIES)
        raise ValueError(f"family must be one of {known} but got {name!r}.")
    return FAMILIES[name]
