"""A population's run of ``Conv1d`` (+ ``ReLU``) layers as matrix products over padded buffers.

On a CPU a population's convolutions are bound by memory traffic and small-matrix overheads, so
this path copies almost nothing. Activations are channels last. Each layer's input lives in a
*padded buffer*: per member, every sample's rows with its zero padding around them (``per`` rows
a sample), members one after another. Read ``stride`` rows at a time, the buffer is a matrix whose
row ``q`` holds padded rows ``q*stride ..``, so output ``l``'s window is folded rows
``l .. l+taps-1`` and the convolution is ``taps = ceil(kernel / stride)`` products of shifted views
of one buffer, added up: no im2col copy forward, no col2im backward.

Outputs come out ``f`` rows a sample, the first ``out`` real and the rest garbage (windows across
two samples), and ``f`` is chosen along the chain so that one layer's output, written ``padding``
rows further on, is exactly the next layer's padded buffer: the garbage lands on padding rows,
zeroed after the write. So every product's output is one contiguous block (torch's fast batched
path). In the backward, ``ReLU``'s mask zeroes every garbage row's gradient (the output is 0 at
padding), or they are zeroed; the weight gradients use each member's own rows only, and the
input gradient is a correlation of the output gradient (kept behind ``taps - 1`` zero rows) with
the flipped taps, so nothing of one member reaches another's gradients even if its values
overflowed (forward reads past a member's rows feed only garbage rows). The last layer's
garbage rows go out with the output: a ``Flatten`` + ``Linear`` after it gives them zero weights
(``_batched``), anything else slices them off.

The first layer, whose input is the data (no gradient wanted), multiplies im2col windows instead
(one small copy: products over only ``stride * channels`` columns would waste the matrix units)
and uses them again for its weight gradient.

Members go through in chunks (``CHUNK_BYTES`` per torch thread), one on a GPU. Buffers live in a
``Workspace`` the ``Stack`` keeps from step to step, per batch size; a buffer is valid until the
chain runs again on that batch size: the runner finishes a step's backward before the next
forward, which is all this relies on.

Measured on the 2-core dev machine (MNIST-1D CNN, K = 16, one step forward and backward, same
process, alternating): 20-27% less time than the im2col layer it replaced; whole runs 16% less.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F


CHUNK_BYTES = 3 << 20  # a chunk's padded inputs on a CPU, per thread (2-6 MB measured alike)


class Workspace:
    """Large buffers reused from one call to the next."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[Any, ...], torch.Tensor] = {}

    def get(self, key: tuple[Any, ...], shape: tuple[int, ...], like: torch.Tensor,
            zero: bool = False) -> torch.Tensor:
        buf = self.buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = (torch.zeros if zero else torch.empty)(shape, dtype=like.dtype, device=like.device)
            self.buffers[key] = buf
        return buf


class _Layer:
    """One convolution's geometry in a chain, for inputs of ``length`` rows."""

    def __init__(self, conv: tuple[int, int, int, bool], c: int, o: int, length: int) -> None:
        self.ks, self.s, self.p, self.relu = conv
        self.c, self.o, self.length = c, o, length
        self.out = out_length([conv], length)
        if self.out < 1:
            raise ValueError(f"Conv1d: kernel {self.ks} is longer than the padded input "
                             f"({length} + 2 * {self.p})")
        self.taps = -(-self.ks // self.s)
        # rows per sample, at least: every valid window inside its sample, and the data
        self.least = max(self.out + self.taps - 1, -(-(self.p + length) // self.s))
        self.f = 0  # output rows per sample, set by the chain
        self.per = 0  # padded input rows per sample: stride * f

    def view(self, buf: torch.Tensor, a: int, n: int, b: int, first: int, rows: int, cols: int,
             step: int) -> torch.Tensor:
        """Members ``a .. a+n-1`` of ``buf`` (``[rows, C]``, members' padded inputs one after the
        other): ``rows`` rows of ``cols`` values ``step`` values apart, from each member's ``first``."""
        member = b * self.per * buf.shape[1]
        start = buf.storage_offset() + a * member + first * buf.shape[1]
        return buf.as_strided((n, rows, cols), (member, step, 1), start)

    def tap_weights(self, full: torch.Tensor) -> list[torch.Tensor]:
        """One ``[K, columns, O]`` view of ``full`` (``_ordered``) per folded row of the window."""
        width = self.s * self.c
        return [full[:, t * width:(t + 1) * width] for t in range(self.taps)]


def _ordered(w: torch.Tensor) -> torch.Tensor:
    """``w [K, O, C, ks]`` as ``[K, ks * C, O]`` in a padded buffer's order: window rows, then channels."""
    return w.permute(0, 3, 2, 1).reshape(w.shape[0], -1, w.shape[1])


def out_length(convs: list[tuple[int, int, int, bool]], length: int) -> int:
    """The chain's output rows per sample for inputs of ``length`` rows."""
    for ks, s, p, _ in convs:
        length = (length + 2 * p - ks) // s + 1
    return length


def chain_layers(convs: list[tuple[int, int, int, bool]], shapes: list[tuple[int, int]],
                 length: int) -> list[_Layer]:
    """The chain's layers for inputs of ``length`` rows, ``shapes`` being each ``(C, O)``: rows per
    sample ``f`` chosen so that each layer's output rows are the next one's padded rows."""
    layers = []
    for conv, (c, o) in zip(convs, shapes):
        layers.append(_Layer(conv, c, o, length))
        length = layers[-1].out
    later = [math.prod(m.s for m in layers[i + 1:]) for i in range(len(layers))]
    last = max(-(-m.least // k) for m, k in zip(layers, later))
    for m, k in zip(layers, later):
        m.f, m.per = last * k, last * k * m.s
    return layers


def _zero_pads(buf: torch.Tensor, m: _Layer, a: int, n: int, b: int) -> None:
    """Zero the padding rows of members ``a .. a+n-1`` in ``buf``, layer ``m``'s padded inputs."""
    samples = m.view(buf, a, n, b, 0, b * m.per, m.c, m.c).view(n, b, m.per, m.c)
    samples[:, :, :m.p].zero_()
    samples[:, :, m.p + m.length:].zero_()


class ConvChain(torch.autograd.Function):
    """``x [K, B, L, C]`` through the chain; out ``[K, B, f, O]`` whose first ``out`` rows per
    sample are the last layer's output. ``params`` alternate weights ``[K, O, C, ks]`` and biases
    ``[K, O]`` (or ``None``).

    Reads past a member's rows (the last sample's garbage windows) see the next member's rows, in
    the forward only, into garbage rows that are zeroed; the backward uses each member's own rows
    alone, so a member whose values overflowed cannot reach another's gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, convs: list[tuple[int, int, int, bool]], ws: Workspace, key: Any,
                *params: torch.Tensor | None) -> torch.Tensor:
        k, b, length, _ = x.shape
        weights, biases = params[0::2], params[1::2]
        layers = chain_layers(convs, [(w.shape[2], w.shape[1]) for w in weights], length)
        first, last = layers[0], layers[-1]
        im2col = not ctx.needs_input_grad[0]
        key = (key, b, length)  # buffers per input shape (training and evaluation batches differ)
        bufs = [ws.get((key, i, "x"), (k * b * m.per + m.s * m.taps + m.p + m.ks, m.c), x, zero=True)
                for i, m in enumerate(layers)]
        y = ws.get((key, "y"), (k, b * last.f, last.o), x)
        cols = ws.get((key, "cols"), (k, b * first.f, first.ks * first.c), x) if im2col else None
        ordered = [_ordered(w) for w in weights]
        full = ordered[0]  # the first layer's, for its im2col windows
        taps = [m.tap_weights(o) for m, o in zip(layers, ordered)]
        for a, z in _chunks(layers, k, b, x):
            n = z - a
            data = first.view(bufs[0], a, n, b, 0, b * first.per, first.c, first.c)
            data.view(n, b, first.per, first.c)[:, :, first.p:first.p + length] = x[a:z]
            for i, m in enumerate(layers):
                if m is last:
                    dst = y[a:z]
                else:
                    nxt = layers[i + 1]
                    # one contiguous block; the last sample's garbage spills onward
                    dst = nxt.view(bufs[i + 1], a, n, b, nxt.p, b * m.f, m.o, m.o)
                if cols is not None and i == 0:
                    win = cols[a:z]
                    win.copy_(m.view(bufs[0], a, n, b, 0, b * m.f, m.ks * m.c, m.s * m.c))
                    torch.bmm(win, full[a:z], out=dst)
                else:
                    for t, w in enumerate(taps[i]):
                        part = m.view(bufs[i], a, n, b, t * m.s, b * m.f, w.shape[1], m.s * m.c)
                        torch.bmm(part, w[a:z], out=dst) if t == 0 else dst.baddbmm_(part, w[a:z])
                _bias_relu(dst, None if biases[i] is None else biases[i][a:z, None, :], m.relu)
                if m is not last:
                    _zero_pads(bufs[i + 1], layers[i + 1], a, n, b)
        ctx.state = (layers, bufs, y, cols, taps, ws, key, b)
        return y.view(k, b, last.f, last.o)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        layers, bufs, y, cols, taps, ws, key, b = ctx.state
        k = y.shape[0]
        grad = grad.reshape(k, -1, layers[-1].o)
        want_x = ctx.needs_input_grad[0]
        gw = [[y.new_empty(k, w.shape[1], m.o) for w in taps[i]] for i, m in enumerate(layers)]
        if cols is not None:  # the first layer's windows: one product
            gw[0] = [y.new_empty(k, cols.shape[2], layers[0].o)]
        gb = [y.new_empty(k, m.o) if need else None for m, need in zip(layers, ctx.needs_input_grad[5::2])]
        # each layer's output gradient after its ReLU, behind taps - 1 zero rows (the gX products read there)
        gs = [ws.get((key, i, "g"), (k, m.taps - 1 + b * m.f, m.o), y, zero=True)
              for i, m in enumerate(layers)]
        gxs = [ws.get((key, i, "gx"), (k, b * m.per, m.c), y) if i or want_x else None
               for i, m in enumerate(layers)]
        wide = [[_full_width(w, m) for w in ts] if gx is not None else None
                for m, ts, gx in zip(layers, taps, gxs)]
        for a, z in _chunks(layers, k, b, y):
            n = z - a
            for i in reversed(range(len(layers))):
                m = layers[i]
                g = gs[i][a:z, m.taps - 1:]
                if m is layers[-1]:
                    g_out, out, rows = grad[a:z], y[a:z], b * m.f
                else:
                    nxt = layers[i + 1]
                    rows = b * m.f - nxt.p  # the last sample's last garbage rows spilled onward: left at 0
                    g_out = gxs[i + 1][a:z, nxt.p:]
                    out = nxt.view(bufs[i + 1], a, n, b, nxt.p, rows, m.o, m.o)
                if m.relu:  # zero at every padding row, where the output is 0
                    torch.ops.aten.threshold_backward.grad_input(g_out, out, 0, grad_input=g[:, :rows])
                else:
                    g[:, :rows].copy_(g_out)
                    g[:, :b * m.f].view(n, b, m.f, m.o)[:, :, m.out:].zero_()
                g = g[:, :b * m.f]
                if gb[i] is not None:
                    torch.sum(g, 1, out=gb[i][a:z])
                own = b * m.f - (m.f - m.out)  # rows whose windows lie in this member's rows
                if cols is not None and i == 0:
                    torch.bmm(cols[a:z, :own].transpose(1, 2), g[:, :own], out=gw[0][0][a:z])
                    continue
                for t, w in enumerate(taps[i]):
                    part = m.view(bufs[i], a, n, b, t * m.s, own, w.shape[1], m.s * m.c)
                    torch.bmm(part.transpose(1, 2), g[:, :own], out=gw[i][t][a:z])
                if gxs[i] is not None:
                    _input_grad(gs[i][a:z], wide[i], a, z, m, b, gxs[i][a:z].view(n, b * m.f, m.s * m.c))
        grad_x = None
        if want_x:
            first = layers[0]
            grad_x = gxs[0].view(k, b, first.per, first.c)[:, :, first.p:first.p + first.length].clone()
        grads = []
        for m, parts, g_bias in zip(layers, gw, gb):
            full = torch.cat(parts, 1).view(k, m.ks, m.c, m.o)  # the weight's gradient in _ordered's order
            grads += [full.permute(0, 3, 2, 1).contiguous(), g_bias]
        return (grad_x, None, None, None, *grads)


def _bias_relu(dst: torch.Tensor, bias: torch.Tensor | None, relu: bool) -> None:
    """``dst = relu?(dst + bias)`` in place (cheaper than baddbmm's copy of the bias into the output)."""
    if bias is not None and relu and dst.device.type == "cpu":
        torch.ops.aten._add_relu_(dst, bias)  # one pass instead of two; a CPU kernel only
        return
    if bias is not None:
        dst.add_(bias)
    if relu:
        dst.relu_()


def _full_width(w: torch.Tensor, m: _Layer) -> torch.Tensor:
    """A tap narrower than a folded row (the window's end, or a stride longer than the kernel) with
    zero rows added: a few wasted products cost less than torch's per-member path for an output
    that is not one contiguous block."""
    return F.pad(w, (0, 0, 0, m.s * m.c - w.shape[1])) if w.shape[1] < m.s * m.c else w


def _input_grad(g: torch.Tensor, taps: list[torch.Tensor], a: int, z: int, m: _Layer, b: int,
                out: torch.Tensor) -> None:
    """``out [n, b * f, stride * C]`` (the padded input's gradient, folded) ``= sum_t g[q - t] @ taps[t]^T``,
    ``g`` having ``taps - 1`` zero rows in front, ``taps`` all a folded row wide (``_full_width``)."""
    rows, lead = b * m.f, m.taps - 1
    for t, w in enumerate(taps):
        w = w[a:z].transpose(1, 2)
        src = g[:, lead - t:lead - t + rows]
        torch.bmm(src, w, out=out) if t == 0 else out.baddbmm_(src, w)


def _chunks(layers: list[_Layer], k: int, b: int, like: torch.Tensor) -> list[tuple[int, int]]:
    """``(first, end)`` member ranges whose activations fit the cache budget (one range on a GPU)."""
    per_member = sum(b * m.per * m.c for m in layers) * like.element_size()
    budget = CHUNK_BYTES * torch.get_num_threads()
    size = k if like.device.type != "cpu" else max(1, min(k, budget // max(per_member, 1)))
    count = -(-k // size)
    return [(i * k // count, (i + 1) * k // count) for i in range(count)]  # as even as they can be
