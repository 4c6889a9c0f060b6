"""The hand-batched layers equal torch's own, forward and backward, whatever the chunking."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrsearch.population import _conv
from lrsearch.population._conv import ConvReLU
from lrsearch.population._conv import Workspace
from lrsearch.population._stack import Stack


# (length, in channels, out channels, kernel, stride, padding)
GEOMETRIES = [(12, 1, 4, 3, 1, 1), (40, 16, 32, 5, 2, 2), (20, 3, 5, 3, 2, 1), (9, 2, 3, 4, 3, 0),
              (7, 2, 3, 5, 1, 3), (5, 3, 2, 5, 2, 2), (6, 1, 2, 2, 4, 1), (3, 2, 2, 3, 1, 0)]


def _reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, stride: int, pad: int,
               relu: bool) -> torch.Tensor:
    """Each member through ``F.conv1d`` (channels first), back to ``[K, B, L, O]``."""
    outs = [F.conv1d(x[i].transpose(1, 2), w[i], None if b is None else b[i], stride=stride, padding=pad)
            for i in range(x.shape[0])]
    y = torch.stack(outs).transpose(2, 3)
    return y.relu() if relu else y


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(("bias", "relu"), [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 40])
def test_conv_layer_equals_conv1d(geometry, bias, relu, chunk_bytes, monkeypatch) -> None:  # noqa: ANN001
    length, c, o, ks, stride, pad = geometry
    monkeypatch.setattr(_conv, "CHUNK_BYTES", chunk_bytes)  # 1: one member per chunk
    gen = torch.Generator().manual_seed(length * 31 + ks)
    k, b = 5, 6
    x = torch.randn(k, b, length, c, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(k, o, c, ks, generator=gen, dtype=torch.float64, requires_grad=True)
    bb = torch.randn(k, o, generator=gen, dtype=torch.float64, requires_grad=True) if bias else None
    ws = Workspace()
    for batch in (b, 2, b):  # buffers are reused, replaced for another shape, replaced back
        xs = x[:, :batch]
        weight = w.permute(0, 3, 2, 1).reshape(k, ks * c, o)
        y = ConvReLU.apply(xs, weight, bb, (ks, stride, pad), relu, ws, "layer")
        ref = _reference(xs, w, bb, stride, pad, relu)
        assert y.shape == ref.shape
        torch.testing.assert_close(y, ref)
        g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
        inputs = (x, w) + ((bb,) if bias else ())
        got = torch.autograd.grad(y, inputs, g)
        want = torch.autograd.grad(ref, inputs, g)
        for a, e in zip(got, want):
            torch.testing.assert_close(a, e)


def test_outputs_live_in_the_workspace() -> None:
    """A second call writes into the first call's memory (nothing is allocated per step) and is right."""
    ws = Workspace()
    x = torch.randn(2, 3, 8, 2)
    weight = torch.randn(2, 3 * 2, 4)
    first = ConvReLU.apply(x, weight, None, (3, 1, 1), False, ws, 0)
    second = ConvReLU.apply(x * 2, weight, None, (3, 1, 1), False, ws, 0)
    assert first.data_ptr() == second.data_ptr()
    torch.testing.assert_close(second, _reference(x * 2, weight.view(2, 3, 2, 4).permute(0, 3, 2, 1), None, 1, 1,
                                                  False))


def _models() -> list[torch.nn.Module]:
    torch.manual_seed(3)

    def make() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (2, 10)),
            torch.nn.Conv1d(2, 4, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Sequential(torch.nn.Conv1d(4, 6, 4, stride=2, padding=2), torch.nn.Tanh()),
            torch.nn.Conv1d(6, 5, 3, bias=False), torch.nn.ReLU(inplace=True),
            torch.nn.Flatten(), torch.nn.Linear(5 * 4, 7), torch.nn.GELU(), torch.nn.Linear(7, 3))

    return [make().double() for _ in range(4)]


def _conv_tail() -> list[torch.nn.Module]:
    """Ends on a convolution (no Flatten, no Linear): the output stays [B, C, L]."""
    torch.manual_seed(4)
    return [torch.nn.Sequential(torch.nn.Unflatten(1, (1, 20)), torch.nn.Conv1d(1, 3, 5, stride=2, padding=1),
                                torch.nn.ReLU(), torch.nn.Conv1d(3, 2, 3)).double() for _ in range(3)]


@pytest.mark.parametrize("make", [_models, _conv_tail])
@pytest.mark.parametrize("shared", [True, False])
def test_batched_forward_and_gradients_equal_each_module(make, shared) -> None:  # noqa: ANN001
    models = make()
    stack = Stack(models, {id(p) for p in models[0].parameters()})
    assert stack.layers is not None  # the hand-batched path, not vmap
    k = len(models)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(6, 20, generator=gen, dtype=torch.float64) if shared else torch.randn(
        k, 6, 20, generator=gen, dtype=torch.float64)
    for _ in range(2):  # the second pass runs in the first one's buffers
        out = stack.forward(stack.flat, stack.fixed, x, shared)
        (grad,) = torch.autograd.grad(out.square().sum(), stack.flat)
        for i, m in enumerate(models):
            m.zero_grad()
            ref = m(x if shared else x[i])
            torch.testing.assert_close(out[i], ref)
            ref.square().sum().backward()
            want = torch.cat([p.grad.reshape(-1) for p in m.parameters()])
            torch.testing.assert_close(grad[i], want)
