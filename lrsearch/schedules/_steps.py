"""Piecewise-constant decays: ``step`` (every ``step_frac`` of the run) and ``multistep``.

Fractions become whole steps by rounding half up (``steps_of``), so ``step_frac=s/T`` gives torch's
``StepLR(step_size=s)`` exactly and milestone fractions ``m/T`` give ``MultiStepLR(milestones=[m])``
(the decay applies from step ``m`` on, as in torch, not one step early as in timm).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lrsearch.schedules._params import Float
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import Fractions
from lrsearch.schedules._params import SortedFractions
from lrsearch.schedules._params import steps_of
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import register


GAMMA = Float(0.1, 0.0, 1.0, low_open=True, search=FloatRange(0.1, 0.5, log=True),
              doc="factor applied at each decay")


def _step(t: np.ndarray, total: int, p: Mapping[str, Any]) -> np.ndarray:
    size = max(1, steps_of(p["step_frac"], total))
    return p["gamma"] ** np.floor(t / size)


def _multistep(t: np.ndarray, total: int, p: Mapping[str, Any]) -> np.ndarray:
    milestones = [steps_of(f, total) for f in p["milestones"]]
    passed = np.searchsorted(np.asarray(milestones, dtype=float), t, side="right")
    return p["gamma"] ** passed.astype(float)


register(
    Family(
        "step",
        "multiply by gamma every step_frac of the run",
        {
            "gamma": GAMMA,
            "step_frac": Float(0.3, 0.0, 1.0, low_open=True, search=FloatRange(0.2, 0.5),
                               doc="interval between decays, as a fraction of the run"),
        },
        _step,
        decays_late=True,
    )
)
register(
    Family(
        "multistep",
        "multiply by gamma at each milestone fraction",
        {
            "gamma": GAMMA,
            "milestones": Fractions((0.5, 0.75), search=SortedFractions(0.3, 0.95, 1, 3)),
        },
        _multistep,
        decays_late=True,
    )
)
