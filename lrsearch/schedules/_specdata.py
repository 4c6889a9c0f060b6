"""Helpers for the plain data of a spec: validate and freeze a dict of parameters, turn the frozen
form back into JSON-ready data, and print a value compactly."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lrsearch._checks import show


def normalise(
    where: str, given: Any, specs: Mapping[str, Any], context: str
) -> MappingProxyType[str, Any]:
    """Validate ``given`` against ``specs``, fill defaults, and freeze the result."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ValueError(f"{where} must be a dict but got {show(given)}.")
    for key in given:
        if key not in specs:
            expected = ", ".join(specs) or "no parameters"
            close = difflib.get_close_matches(str(key), list(specs), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{where} has an unknown parameter {key!r}{context}; expected {expected}.{hint}"
            )
    out = {
        name: spec.check(f"{where}.{name}", given[name]) if name in given else spec.default
        for name, spec in specs.items()
    }
    return MappingProxyType(out)


def freeze(value: Any) -> Any:
    """Plain data made immutable (``plain``'s inverse): dicts become mapping proxies, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """Turn the frozen containers of a normalised spec back into JSON-ready lists and dicts."""
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def compact(value: Any) -> str:
    """``value`` in few characters: floats to 3 significant digits, containers inline."""
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(compact(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{compact(v)}" for k, v in value.items()) + "}"
    return str(value)
