"""Schedule-Free AdamW and SGD (Defazio et al., 2024, "The Road Less Scheduled"), and ``schedule_free``,
which turns a built AdamW / Adam / SGD optimizer into its Schedule-Free form.

Three sequences per parameter: ``z`` takes the plain (Adam or SGD) steps, ``x`` is the running average of
the ``z`` iterates weighted by the squared peak LR so far (``weight_lr_power`` = 2, ``r`` = 0), and the
gradient is taken at ``y = beta1 * x + (1 - beta1) * z``. In ``train()`` mode the parameters hold ``y``; in
``eval()`` mode they hold ``x``, the weights to evaluate and keep. The average stands in for an LR decay,
so the LR is held after its warmup: the ``schedule_free`` family. Same update as the authors'
``AdamWScheduleFreeReference`` / ``SGDScheduleFreeReference`` (``schedulefree`` 1.4) with the warmup left
to the schedule; ``tests/optim_tests/test_schedulefree.py`` checks it step by step against them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lrsearch._checks import check_float
from lrsearch._checks import show


# the group keys of torch's AdamW, Adam and SGD: replaced by ScheduleFree's own
_TORCH_KEYS = frozenset({"params", "lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize", "foreach",
                         "differentiable", "fused", "betas", "eps", "amsgrad", "capturable", "decoupled_weight_decay"})


class ScheduleFree(torch.optim.Optimizer):
    """Schedule-Free AdamW (``adaptive=True``) or SGD (``adaptive=False``).

    Call ``train()`` before training steps and ``eval()`` before evaluating or saving the weights: the
    ``Task`` loop does both for the ``schedule_free`` family. Drive ``lr`` with a warmup-then-constant
    schedule (``Schedule("schedule_free", lr=..., warmup=...)``).

    Args:
        params: Parameters or param groups.
        lr: The peak LR (a schedule rescales it every step).
        betas: ``(beta1, beta2)``: ``beta1`` interpolates ``y`` between ``x`` and ``z`` (SGD's momentum);
            ``beta2`` is Adam's second-moment decay (unused by SGD).
        eps: Adam's denominator term.
        weight_decay: Applied at ``y``: decoupled (AdamW) or, with ``decoupled=False``, added to the
            gradient (Adam's and SGD's L2).
        adaptive: Adam's per-coordinate scaling (``True``) or plain SGD steps.
        weight_lr_power: The average's weight of a step is ``max LR so far ** weight_lr_power``.
    """

    schedule_free = True  # what ``ScheduleLR`` checks before driving a ``schedule_free`` schedule

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, adaptive: bool = True, decoupled: bool = True,
                 weight_lr_power: float = 2.0) -> None:
        for name, value in (("lr", lr), ("eps", eps), ("weight_decay", weight_decay),
                            ("weight_lr_power", weight_lr_power)):
            if check_float(name, value) < 0:
                raise ValueError(f"{name} must be >= 0 but got {show(value)}.")
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2
                or not all(0.0 <= check_float("betas", b) < 1.0 for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1) but got {show(betas)}.")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "adaptive": bool(adaptive), "decoupled": bool(decoupled), "weight_lr_power": weight_lr_power,
                    "k": 0, "lr_max": 0.0, "weight_sum": 0.0, "train_mode": True}
        super().__init__(params, defaults)

    @property
    def training(self) -> bool:
        """Whether the parameters hold ``y`` (train mode) rather than the average ``x``."""
        return bool(self.param_groups[0]["train_mode"])

    @torch.no_grad()
    def eval(self) -> None:
        """Put the average ``x`` in the parameters (to evaluate, save or return the model)."""
        self._switch(False)

    @torch.no_grad()
    def train(self) -> None:
        """Put the gradient point ``y`` back in the parameters (before training steps)."""
        self._switch(True)

    def _switch(self, train: bool) -> None:
        for group in self.param_groups:
            if group["train_mode"] == train:
                continue
            beta1 = group["betas"][0]
            for p in group["params"]:
                state = self.state[p]
                if "z" in state:
                    p.copy_(state["x"].mul(beta1).add_(state["z"], alpha=1 - beta1) if train else state["x"])
            group["train_mode"] = train

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # noqa: ANN401
        """One step; ``closure`` re-evaluates the loss (as torch's optimizers take it)."""
        if not self.training:
            raise RuntimeError("ScheduleFree.step needs train mode: call optimizer.train() after optimizer.eval().")
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), k = group["lr"], group["betas"], group["k"]
            group["lr_max"] = lr_max = max(lr, group["lr_max"])
            weight = lr_max ** group["weight_lr_power"]
            group["weight_sum"] += weight
            ckp1 = weight / group["weight_sum"] if group["weight_sum"] > 0 else 0.0
            decay, bias2 = group["weight_decay"], 1 - beta2 ** (k + 1)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "z" not in state:
                    state["z"], state["x"] = p.detach().clone(), p.detach().clone()
                    if group["adaptive"]:
                        state["exp_avg_sq"] = torch.zeros_like(p)
                grad, z, x = p.grad, state["z"], state["x"]
                if decay and not group["decoupled"]:
                    grad = grad.add(p, alpha=decay)
                if decay and group["decoupled"]:
                    z.sub_(p, alpha=lr * decay)  # AdamW's decay, taken at y
                if group["adaptive"]:
                    v = state["exp_avg_sq"]
                    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    z.addcdiv_(grad, v.div(bias2).sqrt_().add_(group["eps"]), value=-lr)
                else:
                    z.sub_(grad, alpha=lr)
                x.mul_(1 - ckp1).add_(z, alpha=ckp1)
                p.copy_(x.mul(beta1).add_(z, alpha=1 - beta1))
            group["k"] = k + 1
        return loss


def schedule_free(optimizer: torch.optim.Optimizer) -> ScheduleFree:
    """The Schedule-Free form of a built AdamW, Adam or SGD optimizer: the same parameter groups, LRs
    and weight decay; ``beta1`` is Adam's ``beta1`` or SGD's momentum (0.9 when it has none). Adam's and
    SGD's weight decay stay an L2 term; AdamW's stays decoupled. A ``ScheduleFree`` is returned as is."""
    if isinstance(optimizer, ScheduleFree):
        return optimizer
    kind = type(optimizer)
    if kind not in (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD):
        raise ValueError("optimizer must be a torch.optim AdamW, Adam or SGD to take its Schedule-Free form "
                         f"(the schedule_free family) but got {kind.__name__}.")
    groups = []
    for group in optimizer.param_groups:
        if group.get("maximize") or group.get("amsgrad"):
            raise ValueError(f"optimizer must not use maximize or amsgrad for its Schedule-Free form but got "
                             f"{kind.__name__} with maximize={group.get('maximize')}, amsgrad={group.get('amsgrad')}.")
        sgd = kind is torch.optim.SGD
        beta1 = (group["momentum"] or 0.9) if sgd else group["betas"][0]
        beta2 = 0.999 if sgd else group["betas"][1]
        lr = group["lr"].item() if isinstance(group["lr"], torch.Tensor) else group["lr"]
        extra = {k: v for k, v in group.items() if k not in _TORCH_KEYS}  # a group's name, say
        groups.append({**extra, "params": group["params"], "lr": lr, "betas": (beta1, beta2),
                       "eps": group.get("eps", 1e-8), "weight_decay": group["weight_decay"], "adaptive": not sgd,
                       "decoupled": kind is torch.optim.AdamW})
    default = optimizer.defaults["lr"]  # a schedule scales each group by its ratio to this default
    return ScheduleFree(groups, lr=float(default))
