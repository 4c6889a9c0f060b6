"""Range-test analysis over plain arrays (numpy only): smoothing and suggestion rules.

Each rule is a pure function ``(lrs, losses) -> lr | None`` over a curve that has already been
smoothed, trimmed and cut at the first non-finite value (``prepare``). The rules follow their
sources exactly:

- ``valley``: fastai's longest-valley rule (ESRI, fastai PR #3377), including its quirks: the
  valley start is fixed when the valley first becomes the longest, and ``idx = start + len/3 +
  len/6`` is about the valley's midpoint.
- ``slide``: fastai's interval-slide rule (Novetta): from the divergent end, slide a 15-point
  window left until the per-index gradients at its ends agree within 0.005.
- ``minimum``: fastai: the LR of the lowest loss, divided by 10.
- ``steep``: fastai: the steepest forward difference in log-LR.
- ``steepest``: torch-lr-finder's and MONAI's: ``argmin(np.gradient(losses))`` (per index).

lrsearch adds ``midpoint`` (on raw losses, with its own zero-lag smoothing; see its docstring),
and ``before_spike``: ``RangeTestResult`` hands every rule only the curve before the smoothed
loss first rises ``SPIKE_FACTOR`` (1.5) times above its running minimum, so a spike the test
survived (under its ``diverge_th`` stop) cannot put a suggestion on the descent after it.

``fastai_reference`` and ``torch_lr_finder_reference`` rerun those libraries' own smoothing and
trimming on raw losses, so their suggestions can be compared with lrsearch's on the same runs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


Suggester = Callable[[np.ndarray, np.ndarray], float | None]


def ema(losses: np.ndarray, smooth_f: float) -> np.ndarray:
    """Bias-corrected EMA with weight ``smooth_f`` on the newest loss; NaN stays NaN.

    ``L_k = v_k / (1 - (1 - f)^(k + 1))`` with ``v_k = (1 - f) v_(k-1) + f x_k``, so the first value
    is the first loss (no start at 0, no off-by-one as in Lightning #14167).
    """
    losses = np.asarray(losses, dtype=float)
    out = np.empty_like(losses)
    decay, v = 1.0 - smooth_f, 0.0
    for k, x in enumerate(losses):
        v = decay * v + smooth_f * x
        out[k] = v / (1.0 - decay ** (k + 1))
    return out


def prepare(lrs: np.ndarray, smoothed: np.ndarray, skip_start: int, skip_end: int) -> tuple[np.ndarray, np.ndarray]:
    """Trim ``skip_start`` points from the start and ``skip_end`` from the end, then cut at the
    first non-finite loss (fastai: ``[num_it // 10 : -5]``, then cut at the first NaN)."""
    end = len(lrs) - skip_end
    lrs, smoothed = np.asarray(lrs, float)[skip_start:end], np.asarray(smoothed, float)[skip_start:end]
    bad = np.flatnonzero(~np.isfinite(smoothed))
    if len(bad):
        lrs, smoothed = lrs[: bad[0]], smoothed[: bad[0]]
    return lrs, smoothed


# Real curves (7 tasks x SGD/Adam x 100/300 steps x 4 seeds) never rose more than 1.14x over their
# running minimum before their minimum; the spikes after which steep/steepest landed on a second
# descent rose 1.6x to 4x (and a synthetic 3.8x one). 1.5 separates the two.
SPIKE_FACTOR = 1.5


def before_spike(
    lrs: np.ndarray, curve: np.ndarray, factor: float = SPIKE_FACTOR
) -> tuple[np.ndarray, np.ndarray]:
    """The points before the first at which ``curve`` exceeds ``factor`` times its running minimum.

    That point (a spike, or the start of the final divergence) and every later one are dropped.
    A ratio means something only while the running minimum is positive; elsewhere nothing is cut.
    """
    lrs, curve = np.asarray(lrs, dtype=float), np.asarray(curve, dtype=float)
    if not len(curve):
        return lrs, curve
    low = np.minimum.accumulate(curve)
    over = np.flatnonzero((low > 0) & (curve > factor * low))
    return (lrs[: over[0]], curve[: over[0]]) if len(over) else (lrs, curve)


def valley(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai's ``valley``: about halfway down the longest decreasing run of the curve."""
    n = len(losses)
    if n < 2:
        return None
    lds = np.ones(n, dtype=int)
    max_start = max_end = 0
    for i in range(1, n):
        # lds[i] grows as j runs; fastai fixes max_start the moment lds[i] first beats the record
        steps = np.where(losses[:i] > losses[i], lds[:i] + 1, 1)
        running = np.maximum.accumulate(steps)
        lds[i] = running[-1]
        beats = np.flatnonzero(running > lds[max_end])
        if len(beats):
            max_end, max_start = i, i - int(running[beats[0]])
    sections = (max_end - max_start) / 3
    return float(lrs[max_start + int(sections) + int(sections / 2)])


def slide(lrs: np.ndarray, losses: np.ndarray, lr_diff: int = 15, thresh: float = 0.005) -> float | None:
    """fastai's ``slide`` (``adjust_value=1``); ``None`` with fewer than ``lr_diff + 1`` points."""
    if len(losses) < lr_diff + 1:
        return None
    grad = np.gradient(losses)
    right, left = -1, -1 - lr_diff
    found = lrs[left]
    while left >= -len(losses) and abs(grad[right] - grad[left]) > thresh:
        found = lrs[left]
        right, left = right - 1, left - 1
    return float(found)


def minimum(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai's ``minimum``: the LR of the lowest (smoothed) loss, divided by 10."""
    return float(lrs[int(np.argmin(losses))]) / 10.0 if len(losses) else None


def steep(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """fastai's ``steep``: the left end of the steepest segment, slope taken in log-LR."""
    if len(losses) < 2:
        return None
    grads = np.diff(losses) / np.diff(np.log(lrs))
    return float(lrs[int(np.argmin(grads))])


def steepest(lrs: np.ndarray, losses: np.ndarray) -> float | None:
    """torch-lr-finder's (and MONAI's) rule: the most negative ``np.gradient`` per index."""
    if len(losses) < 2:
        return None
    return float(lrs[int(np.argmin(np.gradient(losses)))])


def centred(lrs: np.ndarray, losses: np.ndarray, half_decades: float = 0.25) -> np.ndarray:
    """Zero-lag smoothing: the mean of the losses within ``half_decades`` of each LR (in log10).

    The window is fixed in decades, not steps, so the curve's shape does not depend on how many
    steps the sweep took; more steps only average more noise away. ``lrs`` must increase.
    """
    x = np.log10(np.asarray(lrs, dtype=float))
    y = np.asarray(losses, dtype=float)
    lo = np.searchsorted(x, x - half_decades - 1e-12, side="left")
    hi = np.searchsorted(x, x + half_decades + 1e-12, side="right")
    sums = np.concatenate([[0.0], np.cumsum(y)])
    return (sums[hi] - sums[lo]) / (hi - lo)


def _finite_prefix(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    bad = np.flatnonzero(~np.isfinite(losses))
    return (lrs[: bad[0]], losses[: bad[0]]) if len(bad) else (lrs, losses)


def midpoint(lrs: np.ndarray, raw: np.ndarray) -> float | None:
    """lrsearch's rule, on *raw* losses: the first LR at which the zero-lag ``centred`` curve is
    halfway down from its start to its minimum (points up to the first non-finite loss).

    Defined by loss levels rather than slopes, and free of EMA lag, it barely moves with noise
    or with the EMA weight; it anchors ``RangeTestResult.search_range``.
    """
    lrs, raw = _finite_prefix(lrs, raw)
    if len(raw) < 3:
        return None
    curve = centred(lrs, raw)
    lowest = int(np.argmin(curve))
    halfway = curve[0] - 0.5 * (curve[0] - curve[lowest])
    return float(lrs[int(np.argmax(curve[: lowest + 1] <= halfway))])


def signal_to_noise(lrs: np.ndarray, raw: np.ndarray) -> float | None:
    """Depth of the loss's descent over its step-to-step noise (robust, before the minimum).

    Below about 3 the curve is mostly noise and every rule, ``midpoint`` included, is unreliable:
    raise ``num_iter`` or the batch size. (Measured: a noisy regression task went from 0.5-1.1 at
    100 steps to 2.2-4 at 300; the classification tasks sit at 10-100.)
    """
    lrs, raw = _finite_prefix(lrs, raw)
    if len(raw) < 5:
        return None
    curve = centred(lrs, raw)
    lowest = int(np.argmin(curve))
    steps = np.diff(raw[: max(lowest + 1, 5)]) / np.sqrt(2.0)
    sigma = 1.4826 * float(np.median(np.abs(steps - np.median(steps))))
    depth = float(curve[0] - curve[lowest])
    return depth / sigma if sigma > 0 else float("inf")


SUGGESTERS: dict[str, Suggester] = {
    "valley": valley,
    "slide": slide,
    "minimum": minimum,
    "steep": steep,
    "steepest": steepest,
}


def fastai_reference(lrs: np.ndarray, raw: np.ndarray, num_iter: int) -> dict[str, float | None]:
    """fastai's pipeline on raw losses: debiased EMA (beta 0.98), trim ``[N//10 : -5]``, 4 rules."""
    lrs, curve = prepare(lrs, ema(raw, 0.02), num_iter // 10, 5)
    return {name: SUGGESTERS[name](lrs, curve) for name in ("valley", "slide", "minimum", "steep")}


def torch_lr_finder_reference(lrs: np.ndarray, raw: np.ndarray) -> float | None:
    """torch-lr-finder's pipeline: EMA (f 0.05) seeded with the first loss, skip 10/5, steepest."""
    raw = np.asarray(raw, dtype=float)
    curve = np.empty_like(raw)
    for k, x in enumerate(raw):
        curve[k] = x if k == 0 else 0.05 * x + 0.95 * curve[k - 1]
    lrs, curve = prepare(lrs, curve, 10, 5)
    return steepest(lrs, curve)
