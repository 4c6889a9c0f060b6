"""Parameter specifications: validation rules, defaults and natural search ranges, as data.

Every family declares its parameters with these specs. The same object validates user input
(``check``) and tells the search space what to sample (``search``), so the two never drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import check_int


@dataclass(frozen=True)
class FloatRange:
    """Sample a float in ``[low, high]``; ``log`` for ratios; ``zero`` adds an exact 0 option;
    ``when=(param, value)`` samples it only when another parameter has that value."""

    low: float
    high: float
    log: bool = False
    zero: bool = False
    when: tuple[str, Any] | None = None


@dataclass(frozen=True)
class IntRange:
    """Sample an integer in ``[low, high]``."""

    low: int
    high: int


@dataclass(frozen=True)
class Categorical:
    """Sample one of ``choices``."""

    choices: tuple[Any, ...]


@dataclass(frozen=True)
class SortedFractions:
    """Sample between ``min_count`` and ``max_count`` increasing fractions in ``[low, high]``."""

    low: float
    high: float
    min_count: int
    max_count: int


SearchRange = FloatRange | IntRange | Categorical | SortedFractions


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"in {left}{lo}, {hi}{right}"


@dataclass(frozen=True)
class Float:
    """A finite real parameter within an interval."""

    default: float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    search: FloatRange | None = None
    doc: str = ""
    hide_default: bool = False  # a later addition: left out of to_dict at its default (older JSON)

    @property
    def rule(self) -> str:
        return _interval(self.low, self.high, self.low_open, self.high_open)

    def check(self, name: str, value: Any) -> float:
        value = check_float(name, value)
        lo, hi = self.low, self.high
        bad_low = lo is not None and (value < lo or (self.low_open and value == lo))
        bad_high = hi is not None and (value > hi or (self.high_open and value == hi))
        if bad_low or bad_high:
            raise ValueError(f"{name} must be {self.rule} but got {value!r}.")
        return value


@dataclass(frozen=True)
class Int:
    """An integer parameter with a lower bound."""

    default: int
    low: int = 0
    search: IntRange | None = None
    doc: str = ""

    @property
    def rule(self) -> str:
        return f"an integer >= {self.low}"

    def check(self, name: str, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON writers sometimes turn 3 into 3.0
        return check_int(name, value, low=self.low)


@dataclass(frozen=True)
class Choice:
    """One of a fixed tuple of values (strings or booleans)."""

    default: Any
    choices: tuple[Any, ...]
    search: Categorical | None = None
    doc: str = ""

    @property
    def rule(self) -> str:
        return "one of " + ", ".join(repr(c) for c in self.choices)

    def check(self, name: str, value: Any) -> Any:
        return check_choice(name, value, self.choices)


@dataclass(frozen=True)
class Fractions:
    """A non-empty, strictly increasing list of fractions of the run, each in (0, 1)."""

    default: tuple[float, ...]
    search: SortedFractions | None = None
    doc: str = ""

    rule = "a non-empty, strictly increasing list of fractions in (0, 1)"

    def check(self, name: str, value: Any) -> tuple[float, ...]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueError(f"{name} must be {self.rule} but got {value!r}.")
        items = list(value)
        out = []
        for i, item in enumerate(items):
            frac = check_float(f"{name}[{i}]", item)
            if not 0.0 < frac < 1.0:
                raise ValueError(f"{name}[{i}] must be in (0, 1) but got {frac!r}.")
            out.append(frac)
        if not out or any(b <= a for a, b in zip(out, out[1:])):
            raise ValueError(f"{name} must be {self.rule} but got {items!r}.")
        return tuple(out)


ParamSpec = Float | Int | Choice | Fractions


def steps_of(frac: float, total: int) -> int:
    """Round ``frac * total`` half up to a whole number of steps (never truncate: 0.999 -> 1).

    A product a few ulps below a half (float error in ``frac``, e.g. a sum of fracs) counts as it.
    """
    x = frac * total
    return int(math.floor(x + 0.5 + 64 * math.ulp(max(x, 1.0))))


def unit_ratio(search: FloatRange | None = None, *, default: float = 0.0, doc: str = "") -> Float:
    """A ratio of the peak LR in [0, 1): the floor most decays end on."""
    return Float(default, 0.0, 1.0, high_open=True, search=search, doc=doc)


MIN_RATIO = unit_ratio(
    FloatRange(1e-3, 0.1, log=True, zero=True),
    doc="final LR as a ratio of the peak",
)
K_DECAY = Float(1.0, 0.0, None, low_open=True, hide_default=True,
                doc="k-decay exponent on progress (timm k_decay); k > 1 holds the LR high longer")
