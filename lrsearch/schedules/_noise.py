"""timm's LR noise as spec data: ``noise: {"range", "pct", "std", "seed", "type"}``.

Over the steps ``round(a T) <= t < round(b T)`` of ``range: [a, b]`` (fractions of the run; ``b``
left out or null: to the end) the LR is multiplied by ``1 + n_t``, where ``n_t`` is timm's
``Scheduler._calculate_noise(t)`` (timm 1.0): a ``torch.Generator`` seeded with ``seed + t``;
``normal``: ``torch.randn(1) * std`` drawn again until ``|n| < pct``; ``uniform``:
``2 (torch.rand(1) - 0.5) pct``. ``t`` is the optimizer step (timm's ``num_updates`` with
``t_in_epochs=False``), or the epoch with ``stairs``. The noise comes after the clip to [0, 1], so
the LR may exceed the peak by ``pct``. ``pct`` is at most 1, so the LR stays >= 0.

torch's generator is what makes the draws match timm's; torch is imported only here, when a
schedule with noise is evaluated, so ``import lrsearch.schedules`` still does not load it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from lrsearch._checks import check_float
from lrsearch._checks import show
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import Int
from lrsearch.schedules._params import steps_of
from lrsearch.schedules._specdata import normalise


NOISE_TYPES = ("normal", "uniform")
_SEED_MAX = 2**62  # seed + t stays inside torch.Generator.manual_seed's range for any run length


class _Range:
    """``[a, b]`` fractions of the run with ``0 <= a < b <= 1``; ``b`` optional (the end)."""

    default = (0.0, 1.0)
    rule = "a list [a, b] of fractions of the run with 0 <= a < b <= 1 (b may be null: the end)"

    def check(self, name: str, value: Any) -> tuple[float, float]:
        items = [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else value
        if not isinstance(items, (list, tuple)) or not 1 <= len(items) <= 2:
            raise ValueError(f"{name} must be {self.rule} but got {show(value)}.")
        a = check_float(f"{name}[0]", items[0])
        b = 1.0 if len(items) == 1 or items[1] is None else check_float(f"{name}[1]", items[1])
        if not 0.0 <= a < b <= 1.0:
            raise ValueError(f"{name} must be {self.rule} but got {show(value)}.")
        return (a, b)


NOISE_PARAMS = {
    "range": _Range(),
    "pct": Float(0.67, 0.0, 1.0, low_open=True, doc="largest relative change of the LR (timm noise_pct)"),
    "std": Float(1.0, 0.0, None, low_open=True, doc="std of the normal draw before the cut (timm noise_std)"),
    "seed": Int(42, 0, doc="timm noise_seed; step t draws from a generator seeded with seed + t"),
    "type": Choice("normal", NOISE_TYPES, doc="normal (redrawn until |n| < pct) or uniform in [-pct, pct)"),
}


def normalise_noise(given: Any) -> MappingProxyType[str, Any] | None:
    """``None`` (no noise) or the validated noise spec with defaults filled."""
    if given is None:
        return None
    noise = normalise("noise", given, NOISE_PARAMS, "")
    if noise["seed"] > _SEED_MAX:
        raise ValueError(f"noise.seed must be <= 2**62 but got {noise['seed']!r}.")
    if noise["type"] == "normal" and noise["pct"] < 0.01 * noise["std"]:  # ~100 draws per step at most
        raise ValueError(f"noise.pct must be >= 0.01 * noise.std for normal noise (it redraws until "
                         f"|n| < pct) but got pct={noise['pct']!r}, std={noise['std']!r}.")
    return noise


def timm_noise(noise: Mapping[str, Any], t: int, g: Any = None) -> float:
    """timm's ``_calculate_noise(t)``, draw for draw (``g``: a ``torch.Generator`` to reseed)."""
    import torch

    g = torch.Generator() if g is None else g
    g.manual_seed(noise["seed"] + t)
    if noise["type"] == "normal":
        while True:
            n = torch.randn(1, generator=g).item() * noise["std"]
            if abs(n) < noise["pct"]:
                return n
    return 2.0 * (torch.rand(1, generator=g).item() - 0.5) * noise["pct"]


def apply_noise(noise: Mapping[str, Any], t: np.ndarray, total: int, values: np.ndarray) -> np.ndarray:
    """``values * (1 + n_t)`` at the steps ``t`` of a ``total``-step run inside the noise range."""
    lo, hi = (steps_of(f, total) for f in noise["range"])
    inside = (t >= lo) & (t < hi)
    if not np.any(inside):
        return values
    import torch

    out, g = values.copy(), torch.Generator()  # one generator reseeded per step: ~10 us a step
    draws = {int(s): timm_noise(noise, int(s), g) for s in np.unique(t[inside])}
    out[inside] *= 1.0 + np.array([draws[int(s)] for s in t[inside]])
    return out


def describe_noise(noise: Mapping[str, Any]) -> str:
    a, b = noise["range"]
    return f"{noise['type']} LR noise ±{noise['pct']:.2g} over {a:.0%}-{b:.0%} (seed {noise['seed']})"
