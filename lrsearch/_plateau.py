"""``PlateauMonitor``: the one plateau state machine, shared by LR reduction and pruning.

Semantics are torch's ``ReduceLROnPlateau`` (mode, patience, threshold, threshold_mode, cooldown):
a value is better than the best so far when, for ``mode="min"``, it is below ``best * (1 -
threshold)`` (``rel``) or ``best - threshold`` (``abs``), and mirror-wise for ``"max"``. After
``patience + 1`` consecutive evaluations without improvement ``update`` returns ``True`` (a
plateau), the count restarts and ``cooldown`` evaluations follow in which no plateau is counted.

One deliberate difference: ``rel`` is relative to ``|best|`` (``best - threshold * |best|``
for min), which equals torch's ``best * (1 - threshold)`` whenever ``best > 0``; torch's form is
wrong-signed for negative metrics (it counts a stalled negative log-likelihood as improving for
ever). A NaN never counts as an improvement.

The state is plain data (``state_dict`` is JSON-ready), so it can sit on an Optuna trial.
"""

from __future__ import annotations

import math
from typing import Any

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import check_int


class PlateauMonitor:
    """Count evaluations without improvement and report plateaus.

    Example:
        >>> m = PlateauMonitor(mode="min", patience=1)
        >>> [m.update(v) for v in [1.0, 0.9, 0.95, 0.92, 0.8]]
        [False, False, False, True, False]

    Args:
        mode: ``"min"`` if lower is better, ``"max"`` if higher is better.
        patience: Evaluations without improvement tolerated; the plateau is reported at the
            ``patience + 1``-th. ``patience=0`` reports at the first stall.
        threshold: Smallest change that counts as an improvement, >= 0.
        threshold_mode: ``"rel"`` (a fraction of the best) or ``"abs"``.
        cooldown: Evaluations after a plateau during which stalls are not counted.
    """

    def __init__(
        self,
        mode: str = "min",
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
    ) -> None:
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.patience = check_int("patience", patience, low=0)
        self.threshold = check_float("threshold", threshold)
        if self.threshold < 0:
            raise ValueError(f"threshold must be >= 0 but got {threshold!r}.")
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_int("cooldown", cooldown, low=0)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_evals = 0
        self.cooldown_counter = 0
        self.num_evals = 0
        self.num_plateaus = 0

    def is_better(self, value: float) -> bool:
        """Whether ``value`` improves on the best so far by more than the threshold."""
        best = self.best
        margin = self.threshold * abs(best) if self.threshold_mode == "rel" and math.isfinite(best) else self.threshold
        if self.threshold_mode == "rel" and not math.isfinite(best):
            margin = 0.0
        return value < best - margin if self.mode == "min" else value > best + margin

    @property
    def in_cooldown(self) -> bool:
        """Whether the monitor is in the cooldown that follows a plateau."""
        return self.cooldown_counter > 0

    def update(self, value: float) -> bool:
        """Record one evaluation; ``True`` when it completes a plateau."""
        value = float(value)
        self.num_evals += 1
        if self.is_better(value):
            self.best = value
            self.num_bad_evals = 0
        else:
            self.num_bad_evals += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_evals = 0
        if self.num_bad_evals > self.patience:
            self.cooldown_counter = self.cooldown
            self.num_bad_evals = 0
            self.num_plateaus += 1
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """Settings and counters as JSON-ready data (``best`` is ``None`` before any value)."""
        return {
            "mode": self.mode,
            "patience": self.patience,
            "threshold": self.threshold,
            "threshold_mode": self.threshold_mode,
            "cooldown": self.cooldown,
            "best": self.best if math.isfinite(self.best) else None,
            "num_bad_evals": self.num_bad_evals,
            "cooldown_counter": self.cooldown_counter,
            "num_evals": self.num_evals,
            "num_plateaus": self.num_plateaus,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PlateauMonitor:
        """A monitor in exactly the state ``state_dict`` described."""
        monitor = cls()
        monitor.load_state_dict(state)
        return monitor

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore settings and counters from ``state_dict`` output."""
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict from PlateauMonitor.state_dict() but got {state!r}.")
        fresh = PlateauMonitor(
            **{k: state.get(k, getattr(self, k)) for k in
               ("mode", "patience", "threshold", "threshold_mode", "cooldown")}
        )
        best = state.get("best")
        fresh.best = fresh.best if best is None else check_float("best", best)
        for key in ("num_bad_evals", "cooldown_counter", "num_evals", "num_plateaus"):
            setattr(fresh, key, check_int(key, state.get(key, 0), low=0))
        self.__dict__.update(fresh.__dict__)
