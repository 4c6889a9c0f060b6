"""K models of one architecture as one flat ``[K, P]`` parameter tensor, run through ``vmap``.

``Stack`` holds the trainable parameters of K member models as the rows of one tensor (each
member's parameters, flattened and concatenated in ``named_parameters`` order) and everything else
the model reads (buffers, parameters the optimizer does not train) stacked per name. ``forward``
splits the flat tensor into per-parameter views (autograd turns the split back into one gradient
``[K, P]``) and calls the base module functionally under ``torch.func.vmap``.

``why_not_stackable`` probes a model before a population trains it: buffers a train-mode forward
changes (BatchNorm's running statistics) cannot be batched, and a model ``vmap`` cannot run
(data-dependent Python control flow, ``.item()``) is reported with vmap's own error.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import torch
from torch.func import functional_call
from torch.func import vmap

from lrsearch.population import _batched
from lrsearch.population._chain import Workspace


#: The most members trained at once when the size is chosen automatically.
MAX_POPULATION = 32
#: Share of the available host memory a CPU population may use.
RAM_SHARE = 0.25
#: Share of the free device memory a CUDA population may use.
CUDA_SHARE = 0.8


class Stack:
    """The parameters of K member models, ``model`` being one of them (the shape donor)."""

    def __init__(self, models: list[torch.nn.Module], trained: set[int]) -> None:
        base = models[0]
        self.names = [n for n, p in base.named_parameters() if id(p) in trained]
        params = [dict(m.named_parameters()) for m in models]
        self.shapes = [params[0][n].shape for n in self.names]
        self.sizes = [params[0][n].numel() for n in self.names]
        with torch.no_grad():
            self.flat = torch.stack([torch.cat([p[n].reshape(-1) for n in self.names]) for p in params])
        self.flat.requires_grad_(True)
        fixed = [n for n in params[0] if n not in self.names] + [n for n, _ in base.named_buffers()]
        states = [{**dict(m.named_parameters()), **dict(m.named_buffers())} for m in models]
        self.fixed = {n: torch.stack([s[n].detach() for s in states]) for n in fixed}
        self.module = copy.deepcopy(base)  # the shape donor whose forward runs functionally
        self.layers = _batched.plan(self.module)  # None: through vmap
        self.workspace = Workspace()  # the batched convolutions' buffers, reused step to step
        self.models = models

    def __len__(self) -> int:
        return self.flat.shape[0]

    def params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        k = flat.shape[0]
        views = torch.split(flat, self.sizes, dim=1)
        return {n: v.view(k, *s) for n, v, s in zip(self.names, views, self.shapes)}

    def forward(self, flat: torch.Tensor, fixed: dict[str, torch.Tensor], inputs: Any, shared: bool) -> Any:
        """Every member's output for its inputs (``shared``: one batch for all members)."""
        if self.layers is not None and isinstance(inputs, torch.Tensor):
            return _batched.forward(self.layers, {**self.params(flat), **fixed}, inputs, flat.shape[0], shared,
                                    self.workspace)
        module = self.module

        def one(p: dict[str, torch.Tensor], f: dict[str, torch.Tensor], x: Any) -> Any:
            return functional_call(module, {**p, **f}, (x,))

        return vmap(one, in_dims=(0, 0, None if shared else 0), randomness="different")(
            self.params(flat), fixed, inputs)

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the members in ``rows``; the others' parameters go back to their models."""
        with torch.no_grad():
            self.flat = self.flat.detach().index_select(0, rows).requires_grad_(True)
        self.fixed = {n: v.index_select(0, rows) for n, v in self.fixed.items()}

    def write_back(self, row: int, model: torch.nn.Module) -> None:
        """Copy member ``row``'s trained parameters into ``model``."""
        own = dict(model.named_parameters())
        with torch.no_grad():
            for name, value in self.params(self.flat[row:row + 1].detach()).items():
                own[name].copy_(value[0])


def _changed_buffers(model: torch.nn.Module, inputs: Any) -> list[str]:
    probe = copy.deepcopy(model).train()
    before = {n: b.clone() for n, b in probe.named_buffers()}
    with torch.no_grad():
        probe(inputs)
    return [n for n, b in probe.named_buffers() if n in before and not torch.equal(before[n], b)]


def why_not_stackable(model: torch.nn.Module, trained: set[int], inputs: Any, targets: Any,
                      loss_fn: Callable[[Any, Any], torch.Tensor]) -> str | None:
    """Why ``model`` cannot be trained as a population, or ``None`` when it can."""
    changed = _changed_buffers(model, inputs)
    if changed:
        owners = {n.rsplit(".", 1)[0] if "." in n else "" for n in changed}
        kinds = sorted({type(model.get_submodule(o)).__name__ for o in owners})
        return (f"the model updates buffers in train mode ({', '.join(kinds)}: {', '.join(changed[:4])}), "
                "as BatchNorm does with its running statistics; vmap cannot batch that")
    stack = Stack([model, model], trained)
    stack.module.train()
    try:
        out = stack.forward(stack.flat, stack.fixed, torch.stack([inputs, inputs]), shared=False)
        losses = vmap(loss_fn)(out, torch.stack([targets, targets]))
        torch.autograd.grad(losses.sum(), stack.flat)
    except Exception as err:  # vmap's refusals are RuntimeErrors and ValueErrors of many kinds
        text = " ".join(str(err).split())
        return f"torch.func.vmap cannot run the model or loss ({type(err).__name__}: {text[:300]})"
    return None


def member_bytes(model: torch.nn.Module, trained: set[int], inputs: Any, state_slots: int) -> int:
    """Bytes one more member needs: its parameters, gradients and optimizer state (``state_slots``
    copies), its other tensors, and twice the activations of one batch (kept for the backward)."""
    activations = 0

    def hook(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal activations
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                activations += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        for h in handles:
            h.remove()
    trained_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if id(p) in trained)
    other = sum(p.numel() * p.element_size() for p in model.parameters() if id(p) not in trained)
    other += sum(b.numel() * b.element_size() for b in model.buffers())
    batch = inputs.numel() * inputs.element_size() if isinstance(inputs, torch.Tensor) else 0
    return trained_bytes * (2 + state_slots) + other + 2 * activations + batch


def free_bytes(device: torch.device) -> int:
    """Memory a population may use on ``device``: a share of the free CUDA memory, or of the
    host's available RAM."""
    if device.type == "cuda":
        return int(CUDA_SHARE * torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        available = int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return int(RAM_SHARE * available)


def population_size(per_member: int, available: int, members: int) -> int:
    """How many members to train at once: what fits in ``available`` bytes, 1 to ``MAX_POPULATION``,
    never more than there are ``members``."""
    fits = available // max(1, per_member)
    return int(max(1, min(MAX_POPULATION, members, fits)))
