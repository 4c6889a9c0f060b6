"""Warmup, composed in front of any family that has no rise of its own.

``W = round(frac * T)`` steps (at least 1 when ``frac > 0``, at most ``T - 1``). Step ``t < W``
uses ``v = (t + 1) / W`` so the first step's LR is not zero (HF's linear warmup wastes step 0 at
exactly 0; pytorch_warmup uses ``t + 1`` too), and rises from ``start_ratio`` to the family's
first value with the annealer of ``shape``:

- ``linear``: ``r + (1 - r) v``; ``cosine``: ``r + (1 - r)(1 - cos(pi v)) / 2``;
- ``exp``: ``r ** (1 - v)`` (mmcv; needs ``r > 0``); ``constant``: ``r`` (zero only if asked).

The family's clock starts after warmup (timm's ``warmup_prefix=True``), so a decay still ends where
it should (timm#1242).
"""

from __future__ import annotations

import numpy as np

from lrsearch.schedules._anneal import ANNEALERS
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import steps_of


SHAPES = ("linear", "cosine", "exp", "constant")
_ANNEALER_OF = {"linear": "linear", "cosine": "cos", "exp": "exp", "constant": "constant"}

WARMUP_PARAMS = {
    "frac": Float(0.0, 0.0, 1.0, high_open=True, search=FloatRange(0.005, 0.1, log=True, zero=True),
                  doc="warmup length as a fraction of the run"),
    "shape": Choice("linear", SHAPES, search=Categorical(SHAPES)),
    "start_ratio": Float(0.0, 0.0, 1.0, search=FloatRange(1e-3, 0.1, log=True, zero=True),
                         doc="first warmup LR as a ratio of the peak"),
}


def warmup_steps(frac: float, total: int) -> int:
    """Whole warmup steps for a run of ``total`` steps."""
    if frac <= 0.0:
        return 0
    return min(max(1, steps_of(frac, total)), total - 1)


def warmup_factor(t: np.ndarray, steps: int, shape: str, start_ratio: float) -> np.ndarray:
    """Ratio of the family's first value at warmup steps ``t < steps``."""
    v = (t + 1.0) / steps
    return ANNEALERS[_ANNEALER_OF[shape]](start_ratio, 1.0, v)
