"""Small validators that give every error the same shape: the argument, the rule and the value."""

from __future__ import annotations

import math
import numbers
import reprlib
from typing import Any


MAX_STEPS = 2**53  # the largest step count whose every step is an exact float

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlong = 3, 80, 80, 40


def show(value: Any) -> str:
    """``repr(value)`` cut to a readable length for an error message, whatever the value.

    A huge integer becomes ``an integer of N digits`` (``repr`` itself refuses past 4300 digits),
    and deep or long containers are elided (``[[[...]]]``), so a message never dumps the input.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        size = abs(value)
        digits = int(math.log10(size))
        digits += (size >= 10 ** (digits + 1)) - (size < 10**digits)  # log10 can be off by one
        return f"{'a negative' if value < 0 else 'an'} integer of {digits + 1} digits"
    return _REPR.repr(value)


def check_int(name: str, value: Any, *, low: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` naming ``name``.

    Booleans are refused (``True`` is an ``int`` in Python but never a step count).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer but got {show(value)}.")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low} but got {show(value)}.")
    return value


def check_steps(name: str, value: Any, *, low: int = 0) -> int:
    """``check_int`` for a step count, which must also be at most ``MAX_STEPS`` (2**53)."""
    value = check_int(name, value, low=low)
    if value > MAX_STEPS:
        raise ValueError(
            f"{name} must be <= 2**53 ({MAX_STEPS}), past which steps are not exact floats, "
            f"but got {show(value)}."
        )
    return value


def check_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite float, or raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number but got {show(value)}.")
    try:
        number = float(value)
    except OverflowError:  # an int (or Fraction) beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite but got {show(value if number == math.inf else number)}.")
    return number


def check_range(name: str, value: Any, *, alternative: str = "") -> tuple[float, float]:
    """A ``(low, high)`` pair of finite floats with ``0 < low < high`` (a log-scale search range);
    ``alternative`` names what else ``name`` may be, for the message."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair{alternative} but got {show(value)}.")
    low, high = check_float(f"{name}[0]", value[0]), check_float(f"{name}[1]", value[1])
    if not 0 < low < high:
        raise ValueError(f"{name} must satisfy 0 < low < high but got ({low!r}, {high!r}).")
    return low, high


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if isinstance(value, bool) != any(isinstance(c, bool) for c in choices) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options} but got {value!r}.")
    return value
