"""Helpers for the plain data of a spec: validate and freeze a dict of parameters, turn the frozen
form back into JSON-ready data, and print a value compactly."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from lrsearch._checks import show


#: The bound on a spec (documented): at most ``MAX_SPEC_NESTING`` schedules inside one another below
#: the top one (``product`` factors, per-group schedules), ``MAX_SPEC_SCHEDULES`` nested schedules
#: and ``MAX_SPEC_ITEMS`` list elements in all; containers deeper than ``MAX_SPEC_DEPTH`` are refused
#: before anything recurses. Evaluating a nested spec costs about the square of its nesting times
#: its schedules: at the bound one ``lr_at`` takes < 0.1 s; past it, seconds (nesting 80: 2 s,
#: 100: > 60 s; 5,000 factors: 0.4 s).
MAX_SPEC_NESTING = 8
MAX_SPEC_SCHEDULES = 64
MAX_SPEC_ITEMS = 10_000
MAX_SPEC_DEPTH = 64


def check_spec_size(where: str, value: Any) -> None:
    """Refuse data past the bound above, or holding itself; walked without recursion, so no
    ``RecursionError`` whatever is given. Normalising a spec adds no nesting and no list elements,
    so whatever passes round-trips."""
    stack: list[tuple[Any, tuple[int, ...], int]] = [(value, (), 0)]
    items = schedules = 0
    while stack:
        node, above, nesting = stack.pop()
        if not isinstance(node, (Mapping, list, tuple)):
            continue
        if id(node) in above:
            raise ValueError(f"{where} must be plain data but it contains itself.")
        if len(above) >= MAX_SPEC_DEPTH:
            raise ValueError(f"{where} must nest at most {MAX_SPEC_DEPTH} dicts and lists deep but is deeper.")
        if isinstance(node, Mapping):
            children = list(node.values())
            if "family" in node:
                schedules, nesting = schedules + 1, nesting + 1
                if nesting > MAX_SPEC_NESTING:
                    raise ValueError(f"{where} must nest at most {MAX_SPEC_NESTING} schedules inside one another "
                                     "but nests more.")
                if schedules > MAX_SPEC_SCHEDULES:
                    raise ValueError(f"{where} must hold at most {MAX_SPEC_SCHEDULES} nested schedules "
                                     "but holds more.")
        else:
            children = list(node)
            items += len(children)
            if items > MAX_SPEC_ITEMS:
                raise ValueError(f"{where} must hold at most {MAX_SPEC_ITEMS} list elements in all but holds more.")
        stack.extend((child, (*above, id(node)), nesting) for child in children)


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
