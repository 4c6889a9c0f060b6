"""Batched optimizers over a population's flat parameters: one ``[K, P]`` tensor, one row per member.

Each member's LR (and cycled momentum or beta1) is a ``[K]`` tensor applied row by row, so K
members with K schedules take one optimizer step in a handful of whole-tensor operations, whatever
the number of parameter tensors. The arithmetic follows torch's single-tensor ``Adam``, ``AdamW``
and ``SGD`` step for step (same order of operations; a tensor LR where torch has a float), so a
member's parameters match the ones torch's optimizer gives within float rounding.

Param groups may differ in their LR ratio to the peak and in ``weight_decay`` (one value per
column of the flat tensor); every other setting must be the same in every group.
"""

from __future__ import annotations

from typing import Any

import torch


class NotStackable(ValueError):
    """The population cannot train these members together; the message says why."""


_ADAM_KEYS = ("betas", "eps", "amsgrad", "maximize")
_SGD_KEYS = ("momentum", "dampening", "nesterov", "maximize")


def _kind(optimizer: torch.optim.Optimizer) -> str:
    if type(optimizer) in (torch.optim.Adam, torch.optim.AdamW):
        decoupled = optimizer.defaults.get("decoupled_weight_decay", type(optimizer) is torch.optim.AdamW)
        return "adamw" if decoupled else "adam"
    if type(optimizer) is torch.optim.SGD:
        return "sgd"
    raise NotStackable(f"the optimizer {type(optimizer).__name__} has no batched version (Adam, AdamW and SGD do)")


def _scalar(value: Any) -> Any:
    return float(value) if isinstance(value, torch.Tensor) else value


def _shared(groups: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    first = {k: (tuple(_scalar(v) for v in groups[0][k]) if k == "betas" else _scalar(groups[0].get(k)))
             for k in keys}
    for i, group in enumerate(groups[1:], 1):
        for k in keys:
            value = tuple(_scalar(v) for v in group[k]) if k == "betas" else _scalar(group.get(k))
            if value != first[k]:
                raise NotStackable(f"param groups 0 and {i} differ in {k} ({first[k]!r} vs {value!r})")
    return first


class FlatOptimizer:
    """Adam, AdamW or SGD over a ``[K, P]`` parameter tensor with per-member LRs.

    Args:
        optimizer: Member 0's torch optimizer (every member's is built by the same factory); its
            kind and settings are read, never stepped.
        group_of_column: ``[P]`` long tensor, the param group of each column.
        group_scales: Each group's LR ratio to the peak (``ScheduleLR.group_scales``).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, group_of_column: torch.Tensor,
                 group_scales: list[float]) -> None:
        self.kind = _kind(optimizer)
        groups = optimizer.param_groups
        if any(g.get("differentiable") or g.get("capturable") for g in groups):
            raise NotStackable("differentiable or capturable optimizers are not batched")
        self.settings = _shared(groups, _SGD_KEYS if self.kind == "sgd" else _ADAM_KEYS)
        if self.settings.get("amsgrad"):
            raise NotStackable("amsgrad is not batched")
        decays = [float(_scalar(g.get("weight_decay", 0.0))) for g in groups]
        self.weight_decay = self._per_column(decays, group_of_column)
        self.lr_scale = self._per_column([float(s) for s in group_scales], group_of_column)
        self.state: dict[str, torch.Tensor] = {}
        self.steps = 0

    @staticmethod
    def _per_column(values: list[float], group_of_column: torch.Tensor) -> float | torch.Tensor:
        """One float when every group has the same value, else a ``[P]`` tensor."""
        if len(set(values)) == 1:
            return values[0]
        return torch.tensor(values, dtype=torch.float64)[group_of_column.cpu()].to(group_of_column.device)

    def to(self, device: torch.device, dtype: torch.dtype) -> FlatOptimizer:
        for name in ("weight_decay", "lr_scale"):
            value = getattr(self, name)
            if isinstance(value, torch.Tensor) and (value.device != device or value.dtype != dtype):
                setattr(self, name, value.to(device=device, dtype=dtype))
        return self

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members in ``rows`` (the others left the population)."""
        self.state = {k: v.index_select(0, rows) for k, v in self.state.items()}

    def step(self, params: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor,
             momentum: torch.Tensor | None = None) -> None:
        """One step of every member: ``params`` and ``grad`` are ``[K, P]``, ``lr`` and the cycled
        ``momentum`` (beta1 for Adam; ``None``: the optimizer's own) are ``[K]``.

        Scalars torch computes in double (``1 - lr * weight_decay``, ``lr / bias_correction``) are
        computed in double here too, and updates use ``addcmul_``/``addcdiv_``, whose rounding is
        that of torch's ``add_(..., alpha=)``/``addcdiv_(..., value=)``: a member's steps are
        torch's bit for bit (weights of one param group) up to the order of its gradient sums.
        """
        self.to(params.device, params.dtype)
        lr = lr.to(torch.float64)[:, None]
        if isinstance(self.lr_scale, torch.Tensor) or self.lr_scale != 1.0:
            lr = lr * self.lr_scale
        if momentum is not None:
            momentum = momentum.to(torch.float64)[:, None]
        with torch.no_grad():
            if self.settings["maximize"]:
                grad = -grad
            if self.kind == "sgd":
                self._sgd(params, grad, lr, momentum)
            else:
                self._adam(params, grad, lr, momentum)

    def _decay(self) -> bool:
        return isinstance(self.weight_decay, torch.Tensor) or self.weight_decay != 0

    def _add_decay(self, grad: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``grad + weight_decay * params`` (L2), rounded as torch's ``grad.add(param, alpha=wd)``."""
        if isinstance(self.weight_decay, torch.Tensor):
            return torch.addcmul(grad, params, self.weight_decay)
        return grad.add(params, alpha=self.weight_decay)

    def _sgd(self, params: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor, momentum: Any) -> None:
        s, dtype = self.settings, params.dtype
        if self._decay():
            grad = self._add_decay(grad, params)
        cycled = momentum is not None
        momentum = momentum.to(dtype) if cycled else s["momentum"]
        if cycled or momentum != 0:
            buf = self.state.get("momentum_buffer")
            if buf is None:
                buf = self.state["momentum_buffer"] = grad.detach().clone()
            else:
                buf.mul_(momentum).add_(grad, alpha=1 - s["dampening"])
            if s["nesterov"]:
                grad = torch.addcmul(grad, buf, momentum) if cycled else grad.add(buf, alpha=momentum)
            else:
                grad = buf
        params.addcmul_(grad, lr.to(dtype), value=-1)

    def _adam(self, params: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor, beta1: Any) -> None:
        s, dtype = self.settings, params.dtype
        b1 = s["betas"][0] if beta1 is None else beta1
        b2, eps = s["betas"][1], s["eps"]
        if not self.state:
            self.state = {"exp_avg": torch.zeros_like(params), "exp_avg_sq": torch.zeros_like(params)}
        self.steps += 1
        if self._decay():
            if self.kind == "adamw":
                params.mul_((1 - lr * self.weight_decay).to(dtype))
            else:
                grad = self._add_decay(grad, params)
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        weight = 1 - b1
        exp_avg.lerp_(grad, weight.to(dtype) if isinstance(weight, torch.Tensor) else weight)
        exp_avg_sq.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        bias_correction1 = 1 - b1**self.steps
        bias_correction2_sqrt = (1 - b2**self.steps) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        params.addcdiv_(exp_avg * (-lr / bias_correction1).to(dtype), denom)
