"""Small validators that give every error the same shape: the argument, the rule and the value."""

from __future__ import annotations

import math
import numbers
from typing import Any


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name``.

    Booleans are refused (``True`` is an ``int`` in Python but never a step count).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer but got {value!r}.")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low} but got {value}.")
    return value


def check_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number but got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite but got {value!r}.")
    return value


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if isinstance(value, bool) != any(isinstance(c, bool) for c in choices) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options} but got {value!r}.")
    return value
