"""Novograd (Ginsburg et al. 2019, arXiv 1905.11286): Adam-like, with a second moment per layer.

The algorithm of MONAI's ``monai.optimizers.Novograd`` (adapted there from NVIDIA's Jasper and
OpenSeq2Seq), step for step, without its side effect: MONAI divides ``p.grad`` in place, so a
caller that reads the gradients after ``step()`` (a gradient-norm log, a second optimizer) sees
them changed; here the gradients are left as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import torch

from lrsearch._checks import check_float


class Novograd(torch.optim.Optimizer):
    """Per layer: ``v = b2 v + (1 - b2) |g|^2`` (``v = |g|^2`` at first), ``m = b1 m + g / (sqrt(v) + eps)
    + wd w`` (times ``1 - b1`` with ``grad_averaging``), ``w -= lr m``.

    Args:
        params: Parameters or param-group dicts, as any torch optimizer.
        lr: Learning rate (a schedule replaces it).
        betas: ``(b1, b2)``, each in ``[0, 1)``. Default ``(0.9, 0.98)`` (MONAI's).
        eps: Added to ``sqrt(v)``.
        weight_decay: L2 penalty added to the normalised gradient (not decoupled, as in MONAI).
        grad_averaging: Scale the normalised gradient by ``1 - b1`` (an exponential average).
        amsgrad: Normalise by the running maximum of ``v``.
    """

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.98),
                 eps: float = 1e-8, weight_decay: float = 0.0, grad_averaging: bool = False,
                 amsgrad: bool = False) -> None:
        for name, value in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay)):
            if check_float(name, value) < 0:
                raise ValueError(f"{name} must be >= 0 but got {value!r}.")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (b1, b2) but got {betas!r}.")
        for i, beta in enumerate(betas):
            if not 0.0 <= check_float(f"betas[{i}]", beta) < 1.0:
                raise ValueError(f"betas[{i}] must be in [0, 1) but got {beta!r}.")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "grad_averaging": bool(grad_averaging), "amsgrad": bool(amsgrad)}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ValueError("Novograd does not support sparse gradients.")
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros([], device=p.device, dtype=p.dtype)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros([], device=p.device, dtype=p.dtype)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                norm = p.grad.pow(2).sum()
                # v starts at the first norm (MONAI tests ``v == 0``: so does this, on the device)
                exp_avg_sq.copy_(torch.where(exp_avg_sq == 0, norm, exp_avg_sq * beta2 + norm * (1 - beta2)))
                if group["amsgrad"]:
                    torch.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    denom = state["max_exp_avg_sq"].sqrt().add_(group["eps"])
                else:
                    denom = exp_avg_sq.sqrt().add_(group["eps"])
                grad = p.grad / denom
                if group["weight_decay"] != 0:
                    grad.add_(p, alpha=group["weight_decay"])
                if group["grad_averaging"]:
                    grad.mul_(1 - beta1)
                exp_avg.mul_(beta1).add_(grad)
                p.add_(exp_avg, alpha=-group["lr"])
        return loss
