"""Hand-batched forward for the common small models, faster than ``vmap`` on a CPU.

A model that is an ``nn.Sequential`` (nested ones too) of ``Linear``, ``Conv1d`` (no groups or
dilation, zero padding), ``Flatten``/``Unflatten`` and elementwise modules (activations, dropout)
runs here on ``[K, B, ...]`` tensors with batched matrix products. ``vmap`` turns a batched
``Conv1d`` into a grouped convolution, whose CPU backward is slower than K separate ones; here each
run of ``Conv1d`` layers (a ``ReLU`` right after one fused in) is one ``_chain.ConvChain`` over
padded, channels-last buffers, and a ``Flatten`` of its output into a ``Linear`` permutes the
``Linear``'s columns (zero ones for the chain's garbage rows) instead of the activation. Anything
else returns ``None`` from ``plan`` and runs through ``vmap``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lrsearch.population._chain import ConvChain
from lrsearch.population._chain import Workspace
from lrsearch.population._chain import out_length


_ELEMENTWISE = (torch.nn.ReLU, torch.nn.GELU, torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.SiLU, torch.nn.LeakyReLU,
                torch.nn.ELU, torch.nn.Softplus, torch.nn.Identity, torch.nn.Dropout, torch.nn.Mish)


def _supported(module: torch.nn.Module) -> bool:
    if isinstance(module, torch.nn.Sequential):
        return all(_supported(m) for m in module)
    if isinstance(module, torch.nn.Conv1d):
        pad = module.padding
        return (module.groups == 1 and module.dilation == (1,) and module.padding_mode == "zeros"
                and isinstance(pad, tuple) and len(pad) == 1)
    return isinstance(module, (torch.nn.Linear, torch.nn.Flatten, torch.nn.Unflatten, *_ELEMENTWISE))


def plan(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]] | None:
    """The model's layers in order with their parameter prefixes, or ``None`` if not supported."""
    if not isinstance(module, torch.nn.Sequential) or not _supported(module):
        return None
    layers = [(name, m) for name, m in module.named_modules() if not isinstance(m, torch.nn.Sequential)]
    return layers or None


def member_losses(loss_fn: Any, out: torch.Tensor, target: torch.Tensor, shared: bool) -> torch.Tensor | None:
    """Each member's ``F.cross_entropy`` as one call over ``[K * B, C]`` (``None`` for other losses;
    the caller checked that no target is an ``ignore_index``)."""
    if loss_fn is not F.cross_entropy or out.dim() != 3 or target.dtype != torch.long:
        return None
    k, b = out.shape[:2]
    target = target.expand(k, b) if shared else target
    return F.cross_entropy(out.reshape(k * b, -1), target.reshape(-1), reduction="none").view(k, b).mean(1)


def _flattens_channels_last(layers: list[tuple[str, torch.nn.Module]], i: int) -> bool:
    """Whether layer ``i`` is a ``Flatten`` of a whole ``[C, L]`` activation feeding a ``Linear``."""
    m = layers[i][1]
    return (isinstance(m, torch.nn.Flatten) and m.start_dim == 1 and m.end_dim == -1 and i + 1 < len(layers)
            and isinstance(layers[i + 1][1], torch.nn.Linear))


class _Linear(torch.autograd.Function):
    """``y = x @ w^T + bias`` for ``x [K, N, in]``, ``w [K, out, in]``; the input's gradient goes into a
    reused buffer (a fresh one would fault in megabytes each step)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, ws: Workspace,
                key: Any) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        ctx.ws, ctx.key, ctx.has_bias = ws, key, bias is not None
        wt = w.transpose(1, 2)
        return torch.bmm(x, wt) if bias is None else torch.baddbmm(bias[:, None, :], x, wt)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, w = ctx.saved_tensors
        gx = None
        if ctx.needs_input_grad[0]:  # only read by the layer before, which runs before the next step
            gx = torch.bmm(grad, w, out=ctx.ws.get((ctx.key, "gx", x.shape[1]), tuple(x.shape), grad))
        gw = torch.bmm(grad.transpose(1, 2), x) if ctx.needs_input_grad[1] else None
        gb = grad.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


def _chain_end(layers: list[tuple[str, torch.nn.Module]], i: int
               ) -> tuple[list[tuple[int, int, int, bool]], list[str], int]:
    """The run of ``Conv1d`` (each with the ``ReLU`` right after it fused in) starting at layer ``i``:
    each convolution's ``(kernel, stride, padding, relu)``, its parameter prefix, and the index after
    the run."""
    convs, prefixes = [], []
    while i < len(layers) and isinstance(layers[i][1], torch.nn.Conv1d):
        name, m = layers[i]
        relu = i + 1 < len(layers) and type(layers[i + 1][1]) is torch.nn.ReLU
        convs.append((m.kernel_size[0], m.stride[0], m.padding[0], relu))
        prefixes.append(f"{name}." if name else "")
        i += 2 if relu else 1
    return convs, prefixes, i


def forward(layers: list[tuple[str, torch.nn.Module]], params: dict[str, torch.Tensor], x: torch.Tensor,
            k: int, shared: bool, ws: Workspace | None = None) -> torch.Tensor:
    """Every member's output: ``x`` is ``[B, ...]`` (``shared``) or ``[K, B, ...]``; ``[K, B, ...]`` out.
    ``ws`` keeps the convolutions' large buffers from one call to the next."""
    ws = ws if ws is not None else Workspace()
    if shared:
        x = x.expand(k, *x.shape)
    last = False  # whether x is a conv activation in channels-last layout [K, B, L, C]
    permuted = None  # (rows, C, L) of a flattened conv output: the Linear's columns permute (and pad)
    resume = 0
    for i, (name, m) in enumerate(layers):
        if i < resume:
            continue
        prefix = f"{name}." if name else ""
        if isinstance(m, torch.nn.Conv1d):
            convs, prefixes, resume = _chain_end(layers, i)
            x = x if last else x.transpose(2, 3)
            out = out_length(convs, x.shape[2])
            x = ConvChain.apply(x, convs, ws, i, *[t for p in prefixes for t in (params[p + "weight"],
                                                                                   params.get(p + "bias"))])
            if resume < len(layers) and _flattens_channels_last(layers, resume):
                x, permuted, last = x.flatten(2), (x.shape[2], x.shape[3], out), False
                resume += 1  # the Flatten is done
            else:
                x, last = x[:, :, :out], True
        elif isinstance(m, _ELEMENTWISE):
            x = m(x)
        else:
            if last:
                x, last = x.transpose(2, 3), False
            if isinstance(m, torch.nn.Linear):
                w, bias = params[prefix + "weight"], params.get(prefix + "bias")
                if permuted is not None:  # the module flattens (c, l); x is flat in (l, c) order, with
                    rows, c, length = permuted  # garbage rows after the real ones: zero weights there
                    w = w.unflatten(2, (c, length)).transpose(2, 3)
                    w, permuted = F.pad(w, (0, 0, 0, rows - length)).flatten(2), None
                y = _Linear.apply(x.reshape(k, -1, x.shape[-1]), w, bias, ws, i)
                x = y.view(*x.shape[:-1], w.shape[1])
            elif isinstance(m, torch.nn.Flatten):
                x = torch.flatten(x, m.start_dim + 1 if m.start_dim >= 0 else m.start_dim,
                                  m.end_dim + 1 if m.end_dim >= 0 else m.end_dim)
            else:  # Unflatten
                dim = m.dim + 1 if m.dim >= 0 else m.dim
                x = x.unflatten(dim, m.unflattened_size)
    return x.transpose(2, 3) if last else x
