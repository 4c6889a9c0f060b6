"""``RangeTestResult``: what an LR range test measured, and what it suggests (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from lrsearch._checks import check_choice
from lrsearch._suggest import SUGGESTERS
from lrsearch._suggest import ema
from lrsearch._suggest import prepare


if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# search_range(): anchored on the LR of the smoothed loss minimum (the least noisy feature of the
# curve), from RANGE_BELOW decades under it to RANGE_ABOVE decades over it. Calibrated by
# studies/bench_lr_find.py (see the README's range-test benchmark).
RANGE_BELOW = 1.25
RANGE_ABOVE = 0.15
_ARRAYS = ("lrs", "losses", "smoothed", "train_losses")


def _floats(values: Any) -> np.ndarray:
    return np.asarray([math.nan if v is None else v for v in values], dtype=float)


@dataclass(frozen=True)
class RangeTestResult:
    """The recorded curve of an LR range test.

    Attributes:
        lrs: The peak LR (the multiplier of the optimizer's LRs) at each recorded point.
        losses: The raw loss the suggestions read: the training loss, or the validation / probe
            loss when the test ran with ``val_loader``.
        smoothed: ``losses`` after a bias-corrected EMA with weight ``smooth_f``.
        train_losses: The raw training loss at each point (equal to ``losses`` in train mode).
        config: The test's settings: ``start_lr``, ``end_lr``, ``num_iter``, ``step_mode``,
            ``smooth_f``, ``diverge_th``, ``mode`` ("train", "val", "probe"), ...
        stop_reason: ``"completed"``, ``"diverged"`` (smoothed loss above ``diverge_th`` times the
            best) or ``"non_finite"`` (a NaN or infinite loss).
        iterations: Optimizer steps run (skipped AMP steps included).
        skipped_steps: Steps a GradScaler skipped (inf/NaN gradients); they are not points.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    train_losses: np.ndarray
    config: Mapping[str, Any] = field(default_factory=dict)
    stop_reason: str = "completed"
    iterations: int = 0
    skipped_steps: int = 0

    # -------------------------------------------------------------- suggestions
    def _curve(self) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed curve with fastai's trims: the first 10% of ``num_iter`` and the last 5 points."""
        num_iter = int(self.config.get("num_iter", len(self.lrs)))
        return prepare(self.lrs, self.smoothed, num_iter // 10, min(5, max(0, len(self.lrs) - 2)))

    def suggestion(self, method: str = "valley") -> float | None:
        """One suggested LR: ``valley``, ``slide``, ``minimum``, ``steep`` or ``steepest``.

        ``None`` when the curve has too few finite points for the rule (see ``warnings``).
        """
        check_choice("method", method, tuple(SUGGESTERS))
        lrs, curve = self._curve()
        return SUGGESTERS[method](lrs, curve)

    def suggestions(self) -> dict[str, float | None]:
        """Every suggestion rule, by name."""
        lrs, curve = self._curve()
        return {name: rule(lrs, curve) for name, rule in SUGGESTERS.items()}

    def min_loss_lr(self) -> float | None:
        """The LR at the minimum of the smoothed, trimmed curve."""
        lrs, curve = self._curve()
        return float(lrs[int(np.argmin(curve))]) if len(curve) else None

    def search_range(self) -> tuple[float, float]:
        """Log-scale bounds ``(low, high)`` for the peak LR of a schedule search.

        Rule: with ``m`` the LR of the smoothed loss minimum (after fastai's trims),
        ``low = m / 10**RANGE_BELOW`` and ``high = m * 10**RANGE_ABOVE`` (1.4 decades), clipped to
        the swept interval. The minimum is where training still makes progress fastest before it
        turns unstable; the best constant LR sits about a decade under it and the best one-cycle
        peak just under it (measured over 3 tasks x 2 optimizers x 10 seeds, see the README).
        Without a usable minimum (too few points) the whole swept interval is returned.
        """
        start, end = float(self.config.get("start_lr", self.lrs[0])), float(self.config.get("end_lr", self.lrs[-1]))
        m = self.min_loss_lr()
        if m is None:
            return start, end
        low = max(start, m / 10**RANGE_BELOW)
        high = min(end, m * 10**RANGE_ABOVE)
        return low, max(high, low)

    # -------------------------------------------------------------- diagnostics
    @property
    def flags(self) -> dict[str, bool]:
        """``never_diverged`` (end_lr too small), ``flat`` (no descent), ``diverged_at_once``."""
        lrs, curve = self._curve()
        if len(curve) < 3:
            return {"never_diverged": False, "flat": False, "diverged_at_once": self.stop_reason != "completed"}
        start, low = float(curve[0]), float(np.min(curve))
        drop = (start - low) / max(abs(start), 1e-12)
        return {
            "never_diverged": self.stop_reason == "completed" and float(curve[-1]) < 2.0 * low + 1e-12,
            "flat": drop < 0.02,
            "diverged_at_once": self.stop_reason != "completed" and int(np.argmin(curve)) == 0,
        }

    @property
    def warnings(self) -> list[str]:
        """Plain-language warnings for the flags that are set, and for missing suggestions."""
        messages = {
            "never_diverged": "the loss never diverged: end_lr may be too small for the range to be reliable",
            "flat": "the loss curve is flat (less than 2% descent): the model may already be trained, "
                    "or start_lr/end_lr miss the useful range",
            "diverged_at_once": "the loss diverged at once: start_lr may be too large",
        }
        out = [messages[k] for k, on in self.flags.items() if on]
        usable = len(self._curve()[1])
        if usable < 16:
            out.append(f"only {usable} usable points after trimming: raise num_iter")
        return out

    # -------------------------------------------------------------- data
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (non-finite losses become ``None``)."""
        def clean(a: np.ndarray) -> list[float | None]:
            return [float(v) if math.isfinite(v) else None for v in a]

        return {
            **{name: clean(getattr(self, name)) for name in _ARRAYS},
            "config": dict(self.config),
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "skipped_steps": self.skipped_steps,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RangeTestResult:
        """Rebuild a result from ``to_dict`` output."""
        if not isinstance(data, Mapping) or any(k not in data for k in ("lrs", "losses")):
            raise ValueError("data must be a RangeTestResult.to_dict() with at least 'lrs' and 'losses'.")
        lrs, losses = _floats(data["lrs"]), _floats(data["losses"])
        if len(lrs) != len(losses) or not np.all(np.isfinite(lrs)) or np.any(lrs <= 0):
            raise ValueError("data['lrs'] must be finite positive LRs, one per loss.")
        config = dict(data.get("config", {}))
        smoothed = _floats(data["smoothed"]) if "smoothed" in data else ema(losses, config.get("smooth_f", 0.05))
        train = _floats(data["train_losses"]) if "train_losses" in data else losses
        return cls(lrs, losses, smoothed, train, config, str(data.get("stop_reason", "completed")),
                   int(data.get("iterations", len(lrs))), int(data.get("skipped_steps", 0)))

    @classmethod
    def from_arrays(cls, lrs: Any, losses: Any, **config: Any) -> RangeTestResult:
        """A result from a recorded curve (for tests, or curves measured elsewhere)."""
        config.setdefault("smooth_f", 0.05)
        return cls.from_dict({"lrs": list(lrs), "losses": list(losses), "config": config})

    def plot(self, ax: Axes | None = None, *, suggestions: bool = True, show_range: bool = True) -> Figure:
        """Loss against LR (log axis) with the suggestions and the search range marked."""
        from lrsearch.plots import plot_range_test

        return plot_range_test(self, ax=ax, suggestions=suggestions, show_range=show_range)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeTestResult):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
