"""The hand-batched layers equal torch's own, forward and backward, whatever the chunking."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrsearch.population import _chain
from lrsearch.population._chain import ConvChain
from lrsearch.population._chain import Workspace
from lrsearch.population._chain import out_length
from lrsearch.population._stack import Stack


# (length, in channels, out channels, kernel, stride, padding)
GEOMETRIES = [(12, 1, 4, 3, 1, 1), (40, 16, 32, 5, 2, 2), (20, 3, 5, 3, 2, 1), (9, 2, 3, 4, 3, 0),
              (7, 2, 3, 5, 1, 3), (5, 3, 2, 5, 2, 2), (6, 1, 2, 2, 4, 1), (3, 2, 2, 3, 1, 0)]


def _reference(x: torch.Tensor, params: list[torch.Tensor | None], convs: list[tuple[int, int, int, bool]]
               ) -> torch.Tensor:
    """Each member through ``F.conv1d`` layer by layer (channels first), back to ``[K, B, L, O]``."""
    outs = []
    for i in range(x.shape[0]):
        h = x[i].transpose(1, 2)
        for (_, stride, pad, relu), w, b in zip(convs, params[0::2], params[1::2]):
            h = F.conv1d(h, w[i], None if b is None else b[i], stride=stride, padding=pad)
            h = h.relu() if relu else h
        outs.append(h)
    return torch.stack(outs).transpose(2, 3)


def _chain_case(geometry: tuple[int, ...], relu: bool, bias: bool, want_x: bool,  # noqa: ANN202
                seed: int = 0):
    """The geometry's layer, then a (3, stride 2, padding 1) layer, and a (2, 1, 0) one if it fits."""
    length, c, o, ks, stride, pad = geometry
    gen = torch.Generator().manual_seed(length * 31 + ks + seed)
    convs = [(ks, stride, pad, relu), (3, 2, 1, not relu), (2, 1, 0, True)]
    if out_length(convs, length) < 1:
        convs = convs[:2]
    channels = [c, o, 4, 3]
    k = 5
    params: list[torch.Tensor | None] = []
    for i, (kernel, *_rest) in enumerate(convs):
        params.append(torch.randn(k, channels[i + 1], channels[i], kernel, generator=gen, dtype=torch.float64,
                                  requires_grad=True))
        has_bias = bias or i > 0
        params.append(torch.randn(k, channels[i + 1], generator=gen, dtype=torch.float64, requires_grad=True)
                      if has_bias else None)
    x = torch.randn(k, 6, length, c, generator=gen, dtype=torch.float64, requires_grad=want_x)
    return x, params, convs


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize(("bias", "relu"), [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize("want_x", [False, True])
@pytest.mark.parametrize("chunk_bytes", [1, 1 << 40])
def test_chain_equals_conv1d(geometry, bias, relu, want_x, chunk_bytes, monkeypatch) -> None:  # noqa: ANN001
    """Outputs and every gradient equal ``F.conv1d``'s in float64: the first layer as im2col (data in,
    no gradient) or as shifted products (a gradient wanted), one member per chunk or all in one."""
    monkeypatch.setattr(_chain, "CHUNK_BYTES", chunk_bytes)  # 1: one member per chunk
    x, params, convs = _chain_case(geometry, relu, bias, want_x)
    gen = torch.Generator().manual_seed(9)
    ws = Workspace()
    for batch in (6, 2, 6):  # buffers are reused, others made for another batch size, reused again
        xs = x[:, :batch]
        out = out_length(convs, xs.shape[2])
        y = ConvChain.apply(xs, convs, ws, "chain", *params)[:, :, :out]
        ref = _reference(xs, params, convs)
        assert y.shape == ref.shape
        torch.testing.assert_close(y, ref)
        g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
        inputs = [t for t in (x, *params) if t is not None and t.requires_grad]
        for got, want in zip(torch.autograd.grad(y, inputs, g), torch.autograd.grad(ref, inputs, g)):
            torch.testing.assert_close(got, want)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_an_overflowed_member_leaves_the_others_gradients_alone(bad) -> None:  # noqa: ANN001
    """Forward reads run past a member's rows into the next member's; a member full of NaN or inf
    must still not reach its neighbours' outputs or gradients (it would, through 0 * inf)."""
    x, params, convs = _chain_case((40, 16, 32, 5, 2, 2), True, True, False, seed=1)
    with torch.no_grad():
        x[2] = bad  # member 2 sits between members 1 and 3
    y = ConvChain.apply(x, convs, Workspace(), "chain", *params)[:, :, :out_length(convs, 40)]
    ref = _reference(x, params, convs)
    g = torch.randn(ref.shape, dtype=torch.float64)
    got = torch.autograd.grad(y, params, g)
    want = torch.autograd.grad(ref, params, g)
    for member in (0, 1, 3, 4):
        torch.testing.assert_close(y[member], ref[member])
        for a, e in zip(got, want):
            assert torch.isfinite(a[member]).all()
            torch.testing.assert_close(a[member], e[member])


def test_outputs_live_in_the_workspace() -> None:
    """A second call writes into the first call's memory (nothing is allocated per step) and is right."""
    ws = Workspace()
    x, params, convs = _chain_case((8, 2, 4, 3, 1, 1), False, False, False)
    first = ConvChain.apply(x.detach(), convs, ws, 0, *params)
    second = ConvChain.apply(x.detach() * 2, convs, ws, 0, *params)
    assert first.data_ptr() == second.data_ptr()
    torch.testing.assert_close(second[:, :, :out_length(convs, 8)], _reference(x.detach() * 2, params, convs))


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
