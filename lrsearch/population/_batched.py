"""Hand-batched forward for the common small models, faster than ``vmap`` on a CPU.

A model that is an ``nn.Sequential`` (nested ones too) of ``Linear``, ``Conv1d`` (no groups or
dilation, zero padding), ``Flatten``/``Unflatten`` and elementwise modules (activations, dropout)
runs here on ``[K, B, ...]`` tensors with one ``baddbmm`` per layer. ``vmap`` turns a batched
``Conv1d`` into a grouped convolution, whose CPU backward is slower than K separate ones; here a
convolution is an im2col matrix product in a channels-last layout, and the im2col's backward is
``kernel_size`` strided additions instead of torch's generic ``unfold_backward``. Anything else
returns ``None`` from ``plan`` and runs through ``vmap``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


_ELEMENTWISE = (torch.nn.ReLU, torch.nn.GELU, torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.SiLU, torch.nn.LeakyReLU,
                torch.nn.ELU, torch.nn.Softplus, torch.nn.Identity, torch.nn.Dropout, torch.nn.Mish)


class _Im2col(torch.autograd.Function):
    """``[K, B, L, C]`` (channels last) -> ``[K, B * L_out, ks * C]`` windows, zero-padded."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, ks: int, stride: int, pad: int) -> torch.Tensor:
        if pad:
            a = F.pad(a, (0, 0, pad, pad))
        a = a.contiguous()
        k, b, length, c = a.shape
        out = (length - ks) // stride + 1
        ctx.shape, ctx.conv = a.shape, (ks, stride, pad, out)
        windows = a.as_strided((k, b, out, ks, c), (b * length * c, length * c, stride * c, c, 1))
        return windows.reshape(k, b * out, ks * c)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        if not ctx.needs_input_grad[0]:  # the model's input: no gradient wanted
            return None, None, None, None
        k, b, length, c = ctx.shape
        ks, stride, pad, out = ctx.conv
        grad = grad.view(k, b, out, ks, c)
        result = grad.new_zeros(ctx.shape)
        for j in range(ks):
            result[:, :, j:j + stride * (out - 1) + 1:stride].add_(grad[:, :, :, j])
        return (result[:, :, pad:length - pad] if pad else result), None, None, None


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


def forward(layers: list[tuple[str, torch.nn.Module]], params: dict[str, torch.Tensor], x: torch.Tensor,
            k: int, shared: bool) -> torch.Tensor:
    """Every member's output: ``x`` is ``[B, ...]`` (``shared``) or ``[K, B, ...]``; ``[K, B, ...]`` out."""
    if shared:
        x = x.expand(k, *x.shape)
    last = False  # whether x is a conv activation in channels-last layout [K, B, L, C]
    for name, m in layers:
        prefix = f"{name}." if name else ""
        if isinstance(m, torch.nn.Conv1d):
            x = x if last else x.transpose(2, 3)
            w, ks = params[prefix + "weight"], m.kernel_size[0]
            cols = _Im2col.apply(x, ks, m.stride[0], m.padding[0])
            weight = w.permute(0, 3, 2, 1).reshape(k, ks * w.shape[2], w.shape[1])
            bias = params.get(prefix + "bias")
            y = torch.bmm(cols, weight) if bias is None else torch.baddbmm(bias[:, None, :], cols, weight)
            x, last = y.view(k, x.shape[1], -1, w.shape[1]), True
        elif isinstance(m, _ELEMENTWISE):
            x = m(x)
        else:
            if last:
                x, last = x.transpose(2, 3), False
            if isinstance(m, torch.nn.Linear):
                w, bias = params[prefix + "weight"], params.get(prefix + "bias")
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
