"""``param_groups``: named layer groups with LR ratios, as data (glob patterns, not lambdas).

MONAI's ``generate_param_groups`` selects layers with functions; here a group is a list of
``fnmatch`` patterns over ``model.named_parameters()`` names, so a study can store it, and each
group's ``lr`` is the base LR times its ratio. Every LR scheduler that keeps ratios to
``optimizer.defaults["lr"]`` (``ScheduleLR``, ``lr_find``) then keeps them under any schedule.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import torch

from lrsearch._checks import check_float
from lrsearch._checks import show

OTHERS = "others"  # the group of every parameter no pattern matched
MAX_RATIO = 1e3  # the largest group LR ratio: a group trained 1000x faster than the base LR is a typo


def check_groups(groups: Any) -> dict[str, tuple[str, ...]]:
    """``{name: pattern | [patterns]}`` checked and normalised to tuples of patterns."""
    if groups is None:
        return {}
    if not isinstance(groups, Mapping):
        raise ValueError(f"groups must be a dict of group name to name patterns but got {show(groups)}.")
    out: dict[str, tuple[str, ...]] = {}
    for name, patterns in groups.items():
        if not isinstance(name, str) or not name or name == OTHERS:
            raise ValueError(f"groups must have non-empty string names other than {OTHERS!r} but got {name!r}.")
        patterns = (patterns,) if isinstance(patterns, str) else patterns
        if (not isinstance(patterns, Sequence) or not patterns
                or not all(isinstance(p, str) and p for p in patterns)):
            raise ValueError(f"groups[{name!r}] must be a pattern or a non-empty list of patterns "
                             f"(fnmatch over parameter names) but got {show(patterns)}.")
        out[name] = tuple(patterns)
    return out


def check_ratios(ratios: Any, names: Sequence[str]) -> dict[str, float]:
    """``{group: ratio > 0}`` for groups among ``names`` (and ``"others"``)."""
    if ratios is None:
        return {}
    if not isinstance(ratios, Mapping):
        raise ValueError(f"ratios must be a dict of group name to LR ratio but got {show(ratios)}.")
    out = {}
    for name, ratio in ratios.items():
        if name not in (*names, OTHERS):
            raise ValueError(f"ratios has an unknown group {name!r}; expected one of "
                             f"{', '.join(repr(n) for n in (*names, OTHERS))}.")
        value = check_float(f"ratios[{name!r}]", ratio)
        if not 0 < value <= MAX_RATIO:
            raise ValueError(f"ratios[{name!r}] must be in (0, {MAX_RATIO:g}] (a group's LR over the base LR) "
                             f"but got {show(ratio)}.")
        out[name] = value
    return out


def param_groups(
    model: torch.nn.Module,
    groups: Mapping[str, str | Sequence[str]] | None,
    ratios: Mapping[str, float] | None = None,
    *,
    lr: float = 1e-3,
    weight_decay: float | None = None,
) -> list[dict[str, Any]]:
    """Torch param groups for ``model``: one per named group (in order), then ``"others"``.

    Example:
        >>> groups = param_groups(model, {"backbone": "features.*"}, {"backbone": 0.1}, lr=1e-3)
        >>> opt = torch.optim.AdamW(groups, lr=1e-3)  # the backbone at 1e-4, the rest at 1e-3

    Args:
        model: The module whose trainable parameters are grouped (each exactly once).
        groups: ``{name: pattern or patterns}``; a parameter joins the first group one of whose
            ``fnmatch`` patterns matches its name (``"encoder.*"``, ``"*.bias"``). Every group must
            match at least one parameter (a typo would silently train the layer at the base LR).
        ratios: ``{name: ratio}`` of each group's LR to ``lr`` (default 1); ``"others"`` allowed.
        lr: The base LR; group ``g`` gets ``lr * ratios[g]`` and keeps that ratio under a schedule.
        weight_decay: If given, set on every group.
    """
    spec = check_groups(groups)
    scale = check_ratios(ratios, list(spec))
    base = check_float("lr", lr)
    members: dict[str, list[torch.nn.Parameter]] = {name: [] for name in (*spec, OTHERS)}
    for pname, param in model.named_parameters():
        if not param.requires_grad:
            continue
        home = next((g for g, pats in spec.items() if any(fnmatch.fnmatchcase(pname, p) for p in pats)), OTHERS)
        members[home].append(param)
    empty = [g for g in spec if not members[g]]
    if empty:
        names = [n for n, _ in model.named_parameters()][:6]
        raise ValueError(f"groups[{empty[0]!r}] matches no trainable parameter: patterns "
                         f"{list(spec[empty[0]])!r}; parameter names look like {names!r}.")
    out = []
    for name, params in members.items():
        if params:
            group: dict[str, Any] = {"params": params, "name": name, "lr": base * scale.get(name, 1.0)}
            if weight_decay is not None:
                group["weight_decay"] = check_float("weight_decay", weight_decay)
            out.append(group)
    return out
