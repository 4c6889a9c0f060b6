"""``OptimizerSpec``: which optimizer a run uses, as plain data (a family, weight decay, group ratios).

Like a ``Schedule``, the spec is data a study stores (the trial user attr ``optimizer``) and JSON
round-trips; ``build`` turns it into a torch optimizer for a model. The peak LR is not part of it:
the schedule owns the LR, and ``build``'s ``lr`` only sets the ratios the schedule keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import show
from lrsearch.optim._groups import OTHERS
from lrsearch.optim._groups import check_groups
from lrsearch.optim._groups import check_ratios
from lrsearch.optim._groups import param_groups
from lrsearch.optim._novograd import Novograd


@dataclass(frozen=True)
class _Family:
    cls: type[torch.optim.Optimizer]
    fixed: Mapping[str, Any]  # constructor arguments the family name implies
    weight_decay: float  # the torch default
    typical_lr: float  # a typical good peak LR for small nets: the centre of a searched LR ratio


OPTIMIZERS: Mapping[str, _Family] = MappingProxyType({
    "adamw": _Family(torch.optim.AdamW, {}, 0.01, 1e-3),
    "adam": _Family(torch.optim.Adam, {}, 0.0, 1e-3),
    "sgd": _Family(torch.optim.SGD, {"momentum": 0.9}, 0.0, 3e-2),
    "nesterov": _Family(torch.optim.SGD, {"momentum": 0.9, "nesterov": True}, 0.0, 3e-2),
    "novograd": _Family(Novograd, {}, 0.0, 1e-2),
})
_KEYS = ("name", "weight_decay", "ratios")
MAX_WEIGHT_DECAY = 10.0  # far above any used (AdamW 0.01-1, SGD 1e-5-1e-3); past it the weights only shrink


@dataclass(frozen=True, eq=True)
class OptimizerSpec:
    """An optimizer as data.

    Example:
        >>> spec = OptimizerSpec("nesterov", weight_decay=5e-4, ratios={"backbone": 0.1})
        >>> opt = spec.build(model, lr=0.05, groups={"backbone": "features.*"})

    Args:
        name: ``adamw``, ``adam``, ``sgd`` (momentum 0.9), ``nesterov`` (SGD, Nesterov momentum 0.9)
            or ``novograd`` (``lrsearch.optim.Novograd``, MONAI's algorithm).
        weight_decay: ``None``: the optimizer's default (AdamW 0.01, others 0); decoupled for AdamW,
            an L2 term for the others (torch's and MONAI's semantics).
        ratios: ``{group: LR ratio}`` for named layer groups (see ``param_groups``).
    """

    name: str = "adamw"
    weight_decay: float | None = None
    ratios: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        check_choice("name", self.name, tuple(OPTIMIZERS))
        if self.weight_decay is not None:
            wd = check_float("weight_decay", self.weight_decay)
            if not 0 <= wd <= MAX_WEIGHT_DECAY:
                raise ValueError(f"weight_decay must be in [0, {MAX_WEIGHT_DECAY:g}] but got {show(self.weight_decay)}.")
            object.__setattr__(self, "weight_decay", wd)
        ratios = self.ratios or {}
        if not isinstance(ratios, Mapping):
            raise ValueError(f"ratios must be a dict of group name to LR ratio but got {show(ratios)}.")
        object.__setattr__(self, "ratios", MappingProxyType(check_ratios(ratios, [k for k in ratios if k != OTHERS])))

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"OptimizerSpec.from_dict({self.to_dict()!r})"

    @property
    def decay(self) -> float:
        """The weight decay the optimizer runs with (the family default when unset)."""
        return OPTIMIZERS[self.name].weight_decay if self.weight_decay is None else self.weight_decay

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "weight_decay": self.weight_decay, "ratios": dict(self.ratios)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Any) -> OptimizerSpec:
        if not isinstance(data, Mapping):
            raise ValueError(f"an optimizer spec must be a dict but got {show(data)}.")
        unknown = [k for k in data if k not in _KEYS]
        if unknown:
            raise ValueError(f"an optimizer spec has an unknown key {unknown[0]!r}; expected {', '.join(_KEYS)}.")
        return cls(**{k: data[k] for k in _KEYS if k in data})

    def describe(self) -> str:
        text = self.name + (f"(wd={self.weight_decay:.3g})" if self.weight_decay is not None else "")
        return text + "".join(f", {g} x{r:.3g}" for g, r in self.ratios.items())

    def build(self, model: torch.nn.Module, lr: float = 1e-3,
              groups: Mapping[str, str | Any] | None = None) -> torch.optim.Optimizer:
        """The torch optimizer for ``model``: param groups from ``groups`` (name patterns, see
        ``param_groups``) at ``lr`` times their ratio, the family's fixed arguments, the weight decay."""
        names = check_groups(groups)
        missing = [g for g in self.ratios if g != OTHERS and g not in names]
        if missing:
            raise ValueError(f"ratios names the group {missing[0]!r} but groups defines "
                             f"{', '.join(repr(n) for n in names) or 'none'}.")
        fam = OPTIMIZERS[self.name]
        params: Any = param_groups(model, names, self.ratios, lr=lr) if names else model.parameters()
        return fam.cls(params, lr=lr, weight_decay=self.decay, **fam.fixed)
