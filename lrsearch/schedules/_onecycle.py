"""One-cycle (Smith & Topin; torch ``OneCycleLR``), two- or three-phase, with momentum cycling.

Phase boundaries are torch's, in steps: the rise ends at ``pct_start * T - 1``, the three-phase
fall back to the start at ``2 * pct_start * T - 2``, the run at ``T - 1``, where the LR reaches
``1 / (div_factor * final_div_factor)`` of the peak (torch's convention; fastai's ``div_final`` is
relative to the peak instead). Torch raises past ``total_steps`` and divides by zero on a phase of
zero length (a tiny run); here the first holds the last value and the second takes the phase's end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrsearch.schedules._anneal import anneal_cos
from lrsearch.schedules._anneal import anneal_linear
from lrsearch.schedules._cycles import check_momenta
from lrsearch.schedules._cycles import momentum_params
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import register


P = Mapping[str, Any]
ANNEAL = {"cos": anneal_cos, "linear": anneal_linear}


def _phases(t: np.ndarray, ends: list[float], points: list[float], anneal: Any) -> np.ndarray:
    """Anneal from ``points[i]`` to ``points[i + 1]`` on the phase ending at step ``ends[i]``."""
    ends_arr = np.asarray(ends)
    starts = np.concatenate([[0.0], ends_arr[:-1]])
    idx = np.minimum(np.searchsorted(ends_arr, t, side="left"), len(ends) - 1)
    out = np.empty(t.shape)
    for i in range(len(ends)):
        mask = idx == i
        if np.any(mask):
            width = ends_arr[i] - starts[i]
            pos = (t[mask] - starts[i]) / width if width > 0 else np.ones(int(mask.sum()))
            out[mask] = anneal(points[i], points[i + 1], pos)
    return out


def _ends(total: int, p: P) -> list[float]:
    first = p["pct_start"] * total - 1.0
    if p["three_phase"]:
        return [first, 2.0 * p["pct_start"] * total - 2.0, total - 1.0]
    return [first, total - 1.0]


def _onecycle(t: np.ndarray, total: int, p: P) -> np.ndarray:
    initial = 1.0 / p["div_factor"]
    final = initial / p["final_div_factor"]
    points = [initial, 1.0, initial, final] if p["three_phase"] else [initial, 1.0, final]
    return _phases(t, _ends(total, p), points, ANNEAL[p["anneal"]])


def _onecycle_momentum(t: np.ndarray, total: int, p: P) -> np.ndarray | None:
    if not p["cycle_momentum"]:
        return None
    high, low = p["max_momentum"], p["base_momentum"]
    points = [high, low, high, high] if p["three_phase"] else [high, low, high]
    return _phases(t, _ends(total, p), points, ANNEAL[p["anneal"]])


def _check(p: P) -> None:
    if p["three_phase"] and p["pct_start"] >= 0.5:
        raise ValueError(
            f"params.pct_start must be < 0.5 when three_phase is True but got {p['pct_start']!r}."
        )
    check_momenta(p)


register(
    Family(
        "onecycle",
        "one-cycle: rise from peak/div_factor, anneal to peak/(div*final_div)",
        {
            "pct_start": Float(0.3, 0.0, 1.0, low_open=True, high_open=True,
                               search=FloatRange(0.1, 0.4)),
            "div_factor": Float(25.0, 1.0, None, search=FloatRange(10.0, 100.0, log=True),
                                doc="the run starts at peak / div_factor"),
            "final_div_factor": Float(1e4, 1.0, None, search=FloatRange(1e2, 1e5, log=True),
                                      doc="the run ends at peak / (div_factor * final_div_factor)"),
            "anneal": Choice("cos", ("cos", "linear"), search=Categorical(("cos", "linear"))),
            "three_phase": Choice(False, (False, True), search=Categorical((False, True))),
            **momentum_params(0.85, 0.95),
        },
        _onecycle,
        momentum=_onecycle_momentum,
        rises=True,
        check=_check,
    )
)
