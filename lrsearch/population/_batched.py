"""Hand-batched forward for the common small models, faster than ``vmap`` on a CPU.

A model that is an ``nn.Sequential`` (nested ones too) of ``Linear``, ``Conv1d`` (no groups or
dilation, zero padding), ``Flatten``/``Unflatten`` and elementwise modules (activations, dropout)
runs here on ``[K, B, ...]`` tensors with one batched matrix product per layer. ``vmap`` turns a
batched ``Conv1d`` into a grouped convolution, whose CPU backward is slower than K separate
ones; here a convolution (with a ``ReLU`` after it fused in) is ``_conv.ConvReLU``, an im2col
product in a channels-last layout, and a ``Flatten`` of its output into a ``Linear`` permutes
the ``Linear``'s columns instead of the activation. Anything else returns ``None`` from
``plan`` and runs through ``vmap``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from lrsearch.population._conv import ConvReLU
from lrsearch.population._conv import Workspace


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


def forward(layers: list[tuple[str, torch.nn.Module]], params: dict[str, torch.Tensor], x: torch.Tensor,
            k: int, shared: bool, ws: Workspace | None = None) -> torch.Tensor:
    """Every member's output: ``x`` is ``[B, ...]`` (``shared``) or ``[K, B, ...]``; ``[K, B, ...]`` out.
    ``ws`` keeps the convolutions' large buffers from one call to the next."""
    ws = ws if ws is not None else Workspace()
    if shared:
        x = x.expand(k, *x.shape)
    last = False  # whether x is a conv activation in channels-last layout [K, B, L, C]
    permuted = None  # (L, C) of a flattened channels-last activation: the Linear's columns permute
    skip = -1
    for i, (name, m) in enumerate(layers):
        if i == skip:
            continue
        prefix = f"{name}." if name else ""
        if isinstance(m, torch.nn.Conv1d):
            x = x if last else x.transpose(2, 3)
            w, ks = params[prefix + "weight"], m.kernel_size[0]
            weight = w.permute(0, 3, 2, 1).reshape(k, ks * w.shape[2], w.shape[1])
            relu = i + 1 < len(layers) and type(layers[i + 1][1]) is torch.nn.ReLU
            skip = i + 1 if relu else -1
            x = ConvReLU.apply(x, weight, params.get(prefix + "bias"), (ks, m.stride[0], m.padding[0]), relu, ws, i)
            last = True
        elif isinstance(m, _ELEMENTWISE):
            x = m(x)
        elif last and _flattens_channels_last(layers, i):
            x, last, permuted = x.flatten(2), False, (x.shape[2], x.shape[3])
        else:
            if last:
                x, last = x.transpose(2, 3), False
            if isinstance(m, torch.nn.Linear):
                w, bias = params[prefix + "weight"], params.get(prefix + "bias")
                if permuted is not None:  # the module flattens (c, l); x is flat in (l, c) order
                    length, c = permuted
                    w, permuted = w.unflatten(2, (c, length)).transpose(2, 3).flatten(2), None
                flat = x.reshape(k, -1, x.shape[-1])
                y = torch.bmm(flat, w.transpose(1, 2)) if bias is None else torch.baddbmm(
                    bias[:, None, :], flat, w.transpose(1, 2))
                x = y.view(*x.shape[:-1], w.shape[1])
            elif isinstance(m, torch.nn.Flatten):
                x = torch.flatten(x, m.start_dim + 1 if m.start_dim >= 0 else m.start_dim,
                                  m.end_dim + 1 if m.end_dim >= 0 else m.end_dim)
            else:  # Unflatten
                dim = m.dim + 1 if m.dim >= 0 else m.dim
                x = x.unflatten(dim, m.unflattened_size)
    return x.transpose(2, 3) if last else x
