"""Schedules inside a schedule: the factors of ``product`` and the per-group schedules of ``groups``.

A nested spec is a schedule spec without ``lr`` (it runs at its parent's peak). It is validated by
building the ``Schedule`` it describes, and an error names its place in the parent spec
(``params.factors[1].params.gamma must be ...``). It is stored as frozen plain data, the spec's
own ``to_dict`` without ``version`` and ``lr``, so the parent stays hashable and round-trips.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lrsearch._checks import show
from lrsearch.schedules._specdata import freeze


_PATH = re.compile(r"[A-Za-z_][\w.\[\]]*(?= )")  # a message that starts with the key it is about


def nested_error(where: str, err: ValueError) -> ValueError:
    """``err`` raised inside a nested spec, renamed to its place ``where`` in the parent."""
    text = str(err)
    match = _PATH.match(text)
    if match and match.group(0) not in ("a", "an", "the"):
        return ValueError(f"{where}.{text}")
    return ValueError(f"{where}: {text}")


def nested_schedule(where: str, item: Any, allowed: tuple[str, ...], lr: float, cls: type) -> Any:
    """The ``cls`` (``Schedule``) that the nested spec ``item`` describes, at peak ``lr``."""
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be a dict with keys {', '.join(allowed)} but got {show(item)}.")
    unknown = [k for k in item if k not in allowed]
    if unknown:
        raise ValueError(f"{where} has an unknown key {unknown[0]!r}; expected {', '.join(allowed)}.")
    if "family" not in item:
        raise ValueError(f"{where} must have the key 'family' but got {show(dict(item))}.")
    if item["family"] == "plateau":
        raise ValueError(f"{where}.family must not be 'plateau' (metric driven: only the top-level "
                         "schedule can be) but got 'plateau'.")
    try:
        return cls.from_dict({**item, "lr": lr})
    except ValueError as err:
        raise nested_error(where, err) from None


def nested_data(schedule: Any) -> MappingProxyType[str, Any]:
    """A nested schedule as frozen plain data: its ``to_dict`` without ``version`` and ``lr``."""
    return freeze({k: v for k, v in schedule.to_dict().items() if k not in ("version", "lr")})


def nested_describe(schedule: Any) -> str:
    """``schedule.describe()`` without its peak LR, which is its parent's."""
    text = schedule.replace(lr=1.0).describe()
    return text.replace("(lr=1, ", "(").replace("(lr=1)", "", 1)
