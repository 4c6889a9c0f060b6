"""``FlatOptimizer`` takes the steps torch's own Adam, AdamW and SGD take, member by member."""

from __future__ import annotations

import pytest
import torch

from lrsearch.population import FlatOptimizer
from lrsearch.population import NotStackable


CASES = {
    "adamw": lambda p: torch.optim.AdamW(p, lr=1.0, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6),
    "adam-l2": lambda p: torch.optim.Adam(p, lr=1.0, weight_decay=0.05),
    "sgd": lambda p: torch.optim.SGD(p, lr=1.0),
    "sgd-momentum": lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "nesterov-maximize": lambda p: torch.optim.SGD(p, lr=1.0, momentum=0.8, nesterov=True, maximize=True),
}


def _groups(params: list[torch.Tensor], decay: float) -> list[dict]:
    """Two param groups: the second at a tenth of the LR and without weight decay (the usual bias rule)."""
    return [{"params": params[:1]}, {"params": params[1:], "lr": 0.1, "weight_decay": 0.0}] if decay else \
        [{"params": params[:1]}, {"params": params[1:], "lr": 0.1}]


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("cycled", [False, True])
def test_steps_match_torch_per_member(name: str, cycled: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    k, shapes = 3, [(4, 5), (5,)]
    lrs = torch.tensor([1e-3, 3e-2, 0.2], dtype=torch.float64)
    members = [[torch.randn(s, generator=gen, requires_grad=True) for s in shapes] for _ in range(k)]
    decay = name != "sgd" and name != "nesterov-maximize"
    torch_opts = [CASES[name](_groups(p, decay)) for p in members]
    flat = torch.stack([torch.cat([t.detach().reshape(-1) for t in p]) for p in members])
    cols = torch.tensor([0] * 20 + [1] * 5)
    ours = FlatOptimizer(torch_opts[0], cols, [1.0, 0.1])
    momentum_key = "betas" if "betas" in torch_opts[0].defaults else "momentum"
    for step in range(12):
        grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(k)]
        momenta = torch.tensor([0.85 - 0.01 * step, 0.9, 0.95]) if cycled else None
        for i, (opt, params) in enumerate(zip(torch_opts, members)):
            for group, scale in zip(opt.param_groups, (1.0, 0.1)):
                group["lr"] = float(lrs[i]) * scale
                if cycled and momentum_key == "betas":
                    group["betas"] = (float(momenta[i]), group["betas"][1])
                elif cycled:
                    group["momentum"] = float(momenta[i])
            for p, g in zip(params, grads[i]):
                p.grad = g.clone()
            opt.step()
        grad = torch.stack([torch.cat([g.reshape(-1) for g in gs]) for gs in grads])
        ours.step(flat, grad, lrs, momenta)
        expected = torch.stack([torch.cat([t.detach().reshape(-1) for t in p]) for p in members])
        assert torch.allclose(flat, expected, atol=2e-6, rtol=1e-5), (name, step)


def test_optimizers_it_cannot_batch_are_named() -> None:
    p = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(NotStackable, match="RMSprop"):
        FlatOptimizer(torch.optim.RMSprop(p), torch.zeros(2, dtype=torch.long), [1.0])
    with pytest.raises(NotStackable, match="amsgrad"):
        FlatOptimizer(torch.optim.Adam(p, amsgrad=True), torch.zeros(2, dtype=torch.long), [1.0])
    q = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(NotStackable, match="momentum"):
        FlatOptimizer(torch.optim.SGD([{"params": p, "momentum": 0.9}, {"params": q}], lr=0.1),
                      torch.tensor([0, 0, 1, 1]), [1.0, 1.0])
