"""Step arguments of the schedule math: run lengths, step indices and step arrays, validated.

Run lengths are at most 2**53 (``MAX_STEPS``), past which steps are not exact floats; a step past
the run is held at its last step, however large. ``curve`` materialises one float per step, so it
is limited to ``MAX_CURVE_STEPS``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lrsearch._checks import check_int
from lrsearch._checks import check_steps
from lrsearch._checks import show


MAX_CURVE_STEPS = 10**7  # curve() holds one float per step: 80 MB at the limit


def total_of(total_steps: Any) -> int:
    """A valid run length: an integer in [1, 2**53]."""
    return check_steps("total_steps", total_steps, low=1)


def step_and_total(step: Any, total_steps: Any) -> tuple[int, int]:
    """A valid ``(step, total_steps)``, the step held at the last one (a huge step is fine)."""
    step, total_steps = check_int("step", step, low=0), total_of(total_steps)
    return min(step, total_steps - 1), total_steps


def curve_length(total_steps: Any) -> int:
    """A valid run length for a whole curve: at most ``MAX_CURVE_STEPS``."""
    total_steps = total_of(total_steps)
    if total_steps > MAX_CURVE_STEPS:
        raise ValueError(
            f"curve(total_steps) is limited to 10**7 steps (one float each) but got {total_steps}; "
            "use lr_at, or lr * multipliers(steps, total_steps) on a coarser grid of steps."
        )
    return total_steps


def steps_array(steps: Any) -> np.ndarray:
    """Whole, non-negative steps (integers or whole floats) as a float array."""
    t = np.asarray(steps)
    if t.dtype == bool or not np.issubdtype(t.dtype, np.integer):
        if not (np.issubdtype(t.dtype, np.floating) and np.all(np.isfinite(t)) and np.all(t == np.round(t))):
            raise ValueError(f"steps must be whole numbers (an integer or float array) but got {show(steps)}.")
    if np.any(t < 0):
        raise ValueError(f"steps must be >= 0 but got {show(steps)}.")
    return t.astype(float)
