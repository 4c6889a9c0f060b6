"""Small validators that give every error the same shape: the argument, the rule and the value."""

from __future__ import annotations

import math
import numbers
import os
import reprlib
from collections.abc import Iterable
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
        raise ValueError(f"{name} must be one of {options} but got {show(value)}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a bool (``1``, ``"no"`` and ``None`` are refused: each reads two ways)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False but got {show(value)}.")
    return value


def check_names(name: str, value: Any) -> tuple[str, ...]:
    """A collection of strings as a tuple; a single string is refused (it would iterate by letter)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of names (not a single string) but got {show(value)}.")
    names = tuple(value)
    for i, item in enumerate(names):
        if not isinstance(item, str):
            raise ValueError(f"{name}[{i}] must be a name (a str) but got {show(item)}.")
    return names


def check_positive(name: str, value: Any) -> float:
    """``check_float`` that must also be > 0."""
    number = check_float(name, value)
    if number <= 0:
        raise ValueError(f"{name} must be > 0 but got {show(value)}.")
    return number


# -- paths: a path the user names is written as ``open`` writes it ---------------------------------

#: lrsearch's own folder, relative to the working folder: the only place it creates missing folders.
OWN_FOLDER = "studies"


def own_folder(folder: str) -> bool:
    """Whether ``folder`` is ``studies/`` or below it (relative to the working folder)."""
    norm = os.path.normpath(folder)
    return not os.path.isabs(norm) and norm.split(os.sep)[0] == OWN_FOLDER


def check_path(name: str, value: Any) -> str:
    """``value`` as a path string: a non-empty ``str`` or ``os.PathLike`` without NUL bytes."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\0" in value:
        raise ValueError(f"{name} must be a path (a non-empty str or os.PathLike) but got {show(value)}.")
    return value


def check_file_path(name: str, value: Any, *, create: bool = False) -> str:
    """A file path lrsearch will write, checked as ``open`` would: its folder must exist and be a
    folder; a missing folder under ``studies/`` (lrsearch's own) is fine, and made with ``create``."""
    path = check_path(name, value)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise ValueError(f"{name} must be a file path but {path!r} is a folder.")
    if folder and not os.path.isdir(folder):
        if os.path.exists(folder):
            raise ValueError(f"{name} {path!r} is in {folder!r}, which is not a folder.")
        if not own_folder(folder):
            raise ValueError(f"{name} {path!r} is in a folder that does not exist ({folder!r}); create it first "
                             f"(lrsearch creates missing folders only under {OWN_FOLDER}/).")
        if create:
            make_folder(name, folder)
    return path


def check_folder(name: str, value: Any) -> str:
    """A folder lrsearch will write into, checked without leaving a trace: it is a writable folder,
    or ``mkdir`` can make it (its parent exists; tried and undone), or it is under ``studies/``."""
    folder = check_path(name, value)
    if os.path.isdir(folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise ValueError(f"{name}: the folder {folder!r} is not writable.")
        return folder
    parent = os.path.dirname(os.path.normpath(folder)) or "."
    if own_folder(folder) and not os.path.exists(folder):
        return folder
    if not os.path.isdir(parent):
        raise ValueError(f"{name} {folder!r} is in a folder that does not exist ({parent!r}); create it first "
                         f"(lrsearch creates missing folders only under {OWN_FOLDER}/).")
    try:
        os.mkdir(folder)
        os.rmdir(folder)
    except OSError as err:
        raise ValueError(f"{name}: the folder {folder!r} could not be created ({err.strerror or err}).") from None
    return folder


def make_folder(name: str, value: Any) -> str:
    """``check_folder``, then make the folder (with its parents only under ``studies/``)."""
    folder = check_folder(name, value)
    try:
        if own_folder(folder):
            os.makedirs(folder, exist_ok=True)
        elif not os.path.isdir(folder):
            os.mkdir(folder)
    except FileExistsError:
        pass  # made meanwhile by another worker
    except OSError as err:
        raise ValueError(f"{name}: the folder {folder!r} could not be created ({err.strerror or err}).") from None
    return folder
