"""``OptimizerSpace``: the optimizer family, weight decay and layer-group LR ratios, searched opt-in.

Sampled after the schedule, conditionally: ``optimizer`` (categorical), ``optimizer.<name>.lr_ratio``
for every family but the first (log, a decade either side of the ratio of typical LRs: SGD runs at
~30x AdamW's LR), ``weight_decay`` (log, with a ``weight_decay_is_zero`` switch) and
``group_ratio.<group>`` (log). The ``lr`` of the search range is the first family's LR (the one the
range test measured, if any); the schedule's peak is ``lr`` times the family's ratio, so the spec a
trial stores is the LR it really trained at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import optuna

from lrsearch._checks import check_names
from lrsearch._checks import check_range
from lrsearch._checks import show
from lrsearch.optim import OPTIMIZERS
from lrsearch.optim import OptimizerSpec
from lrsearch.optim import MAX_RATIO
from lrsearch.optim import MAX_WEIGHT_DECAY
from lrsearch.optim import OTHERS


class OptimizerSpace:
    """Which optimizers, weight decays and layer-group LR ratios a search explores (opt-in).

    Example:
        >>> space = SearchSpace(optimizer=OptimizerSpace(["adamw", "nesterov"], weight_decay=(1e-5, 0.1),
        ...                                              group_ratios={"backbone": (0.01, 1.0)}))

    Args:
        optimizers: Families of ``lrsearch.optim.OPTIMIZERS`` to choose from; the first is the
            reference whose LR the search range is (put the one the range test used first).
        weight_decay: ``(low, high)`` sampled on a log scale, with an exact-zero option; ``None``
            keeps each optimizer's default.
        group_ratios: ``{group: (low, high)}``: the LR ratio of each named layer group (defined by
            ``Task(groups=...)`` or the objective's ``param_groups``), sampled on a log scale.
    """

    def __init__(self, optimizers: Sequence[str] = ("adamw",), weight_decay: tuple[float, float] | None = None,
                 group_ratios: Mapping[str, tuple[float, float]] | None = None) -> None:
        if isinstance(optimizers, str) or not isinstance(optimizers, Sequence) or not optimizers:
            raise ValueError(f"optimizers must be a non-empty list of names but got {show(optimizers)}.")
        optimizers = check_names("optimizers", optimizers)
        for name in optimizers:
            if name not in OPTIMIZERS:
                raise ValueError(f"optimizers must name families of {', '.join(OPTIMIZERS)} but got {name!r}.")
        if len(set(optimizers)) != len(optimizers):
            raise ValueError(f"optimizers must not repeat a name but got {list(optimizers)!r}.")
        self.optimizers = tuple(optimizers)
        self.weight_decay = None if weight_decay is None else check_range("weight_decay", weight_decay)
        if group_ratios is not None and not isinstance(group_ratios, Mapping):
            raise ValueError(f"group_ratios must be a dict of group to (low, high) but got {show(group_ratios)}.")
        for group in group_ratios or {}:
            if not isinstance(group, str) or not group:
                raise ValueError(f"group_ratios must have non-empty string keys but got {group!r}.")
        self.group_ratios = {g: check_range(f"group_ratios[{g!r}]", r) for g, r in (group_ratios or {}).items()}
        bounds = [("weight_decay", self.weight_decay, MAX_WEIGHT_DECAY)] + [
            (f"group_ratios[{g!r}]", r, MAX_RATIO) for g, r in self.group_ratios.items()]
        for name, pair, most in bounds:  # what OptimizerSpec accepts, so every sampled spec is valid
            if pair is not None and pair[1] > most:
                raise ValueError(f"{name} must have high <= {most:g} but got {list(pair)!r}.")

    def describe(self) -> dict[str, Any]:
        return {"optimizers": list(self.optimizers),
                "weight_decay": None if self.weight_decay is None else list(self.weight_decay),
                "group_ratios": {g: list(r) for g, r in self.group_ratios.items()}}

    def ratio_range(self, name: str) -> tuple[float, float]:
        """The searched LR ratio of ``name`` to the reference (first) family: a decade either side
        of their typical LRs' ratio; ``(1, 1)`` for the reference itself."""
        if name == self.optimizers[0]:
            return 1.0, 1.0
        centre = OPTIMIZERS[name].typical_lr / OPTIMIZERS[self.optimizers[0]].typical_lr
        return centre / 10, centre * 10

    def suggest(self, trial: optuna.trial.BaseTrial) -> tuple[OptimizerSpec, float]:
        """Sample an optimizer on ``trial``: the spec and the LR ratio to apply to the peak LR."""
        name = trial.suggest_categorical("optimizer", list(self.optimizers)) if len(self.optimizers) > 1 \
            else self.optimizers[0]
        low, high = self.ratio_range(name)
        ratio = 1.0 if low == high else trial.suggest_float(f"optimizer.{name}.lr_ratio", low, high, log=True)
        wd = None
        if self.weight_decay is not None:
            zero = trial.suggest_categorical("weight_decay_is_zero", [True, False])
            wd = 0.0 if zero else trial.suggest_float("weight_decay", *self.weight_decay, log=True)
        ratios = {g: trial.suggest_float(f"group_ratio.{g}", lo, hi, log=True)
                  for g, (lo, hi) in self.group_ratios.items()}
        return OptimizerSpec(name, wd, ratios), ratio

    def seed_params(self) -> dict[str, Any]:
        """The reference family at its default weight decay (or the range's geometric middle) and
        group ratios at the geometric middle of their ranges (1 when inside): what seeds enqueue."""
        params: dict[str, Any] = {}
        if len(self.optimizers) > 1:
            params["optimizer"] = self.optimizers[0]
        if self.weight_decay is not None:
            default = OPTIMIZERS[self.optimizers[0]].weight_decay
            params["weight_decay_is_zero"] = default == 0
            if not params["weight_decay_is_zero"]:
                lo, hi = self.weight_decay
                params["weight_decay"] = min(max(default, lo), hi) if default > 0 else math.sqrt(lo * hi)
        for g, (lo, hi) in self.group_ratios.items():
            params[f"group_ratio.{g}"] = 1.0 if lo <= 1.0 <= hi else math.sqrt(lo * hi)
        return params


def check_groups_cover(space: OptimizerSpace | None, groups: Mapping[str, Any] | None) -> None:
    """A searched group ratio needs a group of that name (``Task(groups=...)``)."""
    for g in (space.group_ratios if space is not None else {}):
        if g != OTHERS and g not in (groups or {}):
            raise ValueError(f"group_ratios names the group {g!r} but the task's groups define "
                             f"{', '.join(repr(n) for n in (groups or {})) or 'none'}.")


def suggest_optimizer(trial: optuna.trial.BaseTrial) -> OptimizerSpec | None:
    """The optimizer sampled on ``trial`` with its schedule (``SearchSpace(optimizer=...)``), or
    ``None`` when the space searches none; build it with ``spec.build(model, lr, groups)``.

    Call it after ``suggest_schedule``, which samples both (the optimizer's LR ratio is part of
    the schedule's peak LR).
    """
    if "schedule" not in trial.user_attrs:
        raise ValueError("suggest_optimizer(trial) must come after suggest_schedule(trial), which samples "
                         "the optimizer with the schedule.")
    spec = trial.user_attrs.get("optimizer")
    return OptimizerSpec.from_dict(spec) if isinstance(spec, dict) else None
