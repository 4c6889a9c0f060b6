"""Warmup, composed in front of (a phase) or on top of (an overlay) any family that has no rise of its own.

``W = round(frac * T)`` steps (at least 1 when ``frac > 0``, at most ``T - 1``). Step ``t < W``
uses ``v = (t + 1) / W`` so the first step's LR is not zero (HF's linear warmup wastes step 0 at
exactly 0; pytorch_warmup uses ``t + 1`` too), and rises from ``start_ratio`` to 1 with the
annealer of ``shape``:

- ``linear``: ``r + (1 - r) v``; ``cosine``: ``r + (1 - r)(1 - cos(pi v)) / 2``;
- ``exp``: ``r ** (1 - v)`` (mmcv; needs ``r > 0``); ``constant``: ``r`` (zero only if asked);
- ``exp_tau`` (overlay only): ``r + (1 - r)(1 - exp(-(t + 1) / W))`` at every step of the run,
  pytorch_warmup's ``ExponentialWarmup(warmup_period=W)``, which never quite reaches 1.

As a **phase** (``overlay: false``, the default) the factor multiplies the family's first value and
the family's clock starts after warmup (timm's ``warmup_prefix=True``), so a decay still ends where
it should (timm#1242). As an **overlay** (``overlay: true``) the family runs on the whole run from
step 0 and the factor multiplies it: pytorch_warmup's dampening, ``lr(t) = sched_lr(t) * w(t)``
(``LinearWarmup(W)`` is the ``linear`` overlay, ``ExponentialWarmup(W)`` the ``exp_tau`` one).
``overlay`` appears in a spec's ``to_dict`` only when true, so older specs keep their JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrsearch.schedules._anneal import ANNEALERS
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import steps_of


SHAPES = ("linear", "cosine", "exp", "constant", "exp_tau")
_ANNEALER_OF = {"linear": "linear", "cosine": "cos", "exp": "exp", "constant": "constant"}

WARMUP_PARAMS = {
    "frac": Float(0.0, 0.0, 1.0, high_open=True, search=FloatRange(0.005, 0.1, log=True, zero=True),
                  doc="warmup length as a fraction of the run (exp_tau: the time constant tau)"),
    "shape": Choice("linear", SHAPES, search=Categorical(SHAPES[:4])),
    "start_ratio": Float(0.0, 0.0, 1.0, search=FloatRange(1e-3, 0.1, log=True, zero=True),
                         doc="first warmup LR as a ratio of the peak"),
    "overlay": Choice(False, (False, True),
                      doc="multiply the undelayed schedule (pytorch_warmup) instead of delaying it"),
}


def check_warmup(warmup: Mapping[str, Any]) -> None:
    """The rules between warmup keys (each key is already valid on its own)."""
    if warmup["shape"] == "exp" and warmup["start_ratio"] <= 0.0:
        raise ValueError(
            f"warmup.start_ratio must be > 0 when warmup.shape is 'exp' but got {warmup['start_ratio']!r}."
        )
    if warmup["shape"] == "exp_tau" and not warmup["overlay"]:
        raise ValueError("warmup.shape 'exp_tau' never reaches the peak, so it needs warmup.overlay "
                         "true (pytorch_warmup's ExponentialWarmup) but got overlay false.")


def warmup_to_dict(warmup: Mapping[str, Any]) -> dict[str, Any]:
    """The warmup as plain data: ``overlay`` only when true, so older specs keep their JSON."""
    return {k: v for k, v in warmup.items() if k != "overlay" or v}


def warmup_steps(frac: float, total: int) -> int:
    """Whole warmup steps for a run of ``total`` steps."""
    if frac <= 0.0:
        return 0
    return min(max(1, steps_of(frac, total)), total - 1)


def warmup_factor(t: np.ndarray, steps: int, shape: str, start_ratio: float) -> np.ndarray:
    """Ratio of the peak (or of the family's first value) at warmup steps ``t < steps``; for
    ``exp_tau`` at any step, ``steps`` being the time constant."""
    if shape == "exp_tau":
        return start_ratio + (1.0 - start_ratio) * -np.expm1(-(t + 1.0) / steps)
    v = (t + 1.0) / steps
    return ANNEALERS[_ANNEALER_OF[shape]](start_ratio, 1.0, v)
