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
from lrsearch.rangetest._suggest import SUGGESTERS
from lrsearch.rangetest._suggest import before_spike
from lrsearch.rangetest._suggest import centred
from lrsearch.rangetest._suggest import ema
from lrsearch.rangetest._suggest import fastai_reference
from lrsearch.rangetest._suggest import midpoint
from lrsearch.rangetest._suggest import prepare
from lrsearch.rangetest._suggest import signal_to_noise
from lrsearch.rangetest._suggest import torch_lr_finder_reference


if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


# search_range() constants, calibrated by studies/bench_lr_find.py on 3 tasks (MNIST-1D, digits and
# breast-cancer MLPs) x SGD/Adam x 10 seeds x 100/300-step sweeps: every grid-best constant LR and
# one-cycle peak lay within [-0.27, +0.91] decades of the normalised midpoint; 0.15 decade margins.
REFERENCE_DENSITY = 99 / 8  # steps per decade of the default sweep: 100 steps over 1e-7..10
RANGE_BELOW = 0.42
RANGE_ABOVE = 1.06
# Noisy curves (signal-to-noise below NOISY_SNR) widen the range to cover the same optima measured
# from the centred curve's minimum: within [-1.81, +0.29] decades of it on the calibration runs.
NOISY_SNR = 3.0
MIN_BELOW = 1.96
MIN_ABOVE = 0.44
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

    def _window(self) -> tuple[np.ndarray, np.ndarray]:
        """``_curve`` before its first spike (``before_spike``): what the suggestion rules read."""
        return before_spike(*self._curve())

    def _raw(self) -> tuple[np.ndarray, np.ndarray]:
        """Raw points up to the first non-finite loss and before ``cutoff_lr``."""
        bad = np.flatnonzero(~np.isfinite(self.losses))
        end = bad[0] if len(bad) else len(self.losses)
        cutoff = self.cutoff_lr()
        if cutoff is not None:
            end = min(end, int(np.searchsorted(self.lrs[:end], cutoff)))
        return self.lrs[:end], self.losses[:end]

    def cutoff_lr(self) -> float | None:
        """The first LR at which the smoothed, trimmed loss exceeds ``SPIKE_FACTOR`` (1.5) times its
        running minimum: a spike the test survived, or the start of its divergence.

        Every suggestion (and ``search_range``) ignores this point and all later ones, so none can
        land on a second descent after a spike. ``None`` when the loss never rose that far.
        """
        lrs, curve = self._curve()
        kept = len(before_spike(lrs, curve)[1])
        return float(lrs[kept]) if kept < len(curve) else None

    def reference_lr(self, lr: float) -> float:
        """The LR at which the default sweep (100 steps over 1e-7..10) has applied as much
        cumulative LR as this sweep had by ``lr``.

        A range test's loss at a step reflects the LR summed over the steps so far, so a sweep
        with k times more steps per decade drops at about k times smaller LRs (measured: 0.45
        decades for 3x). Normalising makes ``search_range`` independent of ``num_iter``,
        ``start_lr``, ``end_lr`` and ``step_mode``.
        """
        applied = float(np.sum(self.lrs[self.lrs <= lr * (1 + 1e-12)]))
        return applied * (1.0 - 10.0 ** (-1.0 / REFERENCE_DENSITY))

    def suggestion(self, method: str = "valley") -> float | None:
        """One suggested LR: fastai's ``valley``, ``slide``, ``minimum``, ``steep``,
        torch-lr-finder's ``steepest``, or lrsearch's ``midpoint``.

        The first five read the EMA-smoothed curve with fastai's trims; ``midpoint`` is the
        density-normalised (``reference_lr``) LR where the zero-lag centred curve is halfway
        down its descent. All six ignore the curve from ``cutoff_lr`` on (a loss spike of 1.5x
        over the running minimum, or the divergence). ``None`` when the curve has too few finite
        points for the rule.
        """
        check_choice("method", method, (*SUGGESTERS, "midpoint"))
        if method == "midpoint":
            h = midpoint(*self._raw())
            return None if h is None else self.reference_lr(h)
        return SUGGESTERS[method](*self._window())

    def suggestions(self) -> dict[str, float | None]:
        """Every suggestion rule, by name."""
        return {name: self.suggestion(name) for name in (*SUGGESTERS, "midpoint")}

    def reference_suggestions(self) -> dict[str, float | None]:
        """What fastai and torch-lr-finder would suggest for this very run.

        Their own pipelines rerun on the raw training losses: fastai's debiased EMA (beta 0.98),
        ``[N//10 : -5]`` trims and its four rules, plus the LR of fastai's smoothed minimum;
        torch-lr-finder's EMA (0.05, seeded with the first loss), 10/5 trims and ``steepest``.
        """
        lrs, raw = self.lrs, self.train_losses
        num_iter = int(self.config.get("num_iter", len(lrs)))
        out: dict[str, float | None] = {f"fastai_{k}": v for k, v in fastai_reference(lrs, raw, num_iter).items()}
        trimmed_lrs, curve = prepare(lrs, ema(raw, 0.02), num_iter // 10, 5)
        out["fastai_smoothed_min"] = float(trimmed_lrs[int(np.argmin(curve))]) if len(curve) else None
        out["torch_lr_finder_steepest"] = torch_lr_finder_reference(lrs, raw)
        return out

    def min_loss_lr(self) -> float | None:
        """The LR at the minimum of the smoothed, trimmed curve before ``cutoff_lr``."""
        lrs, curve = self._window()
        return float(lrs[int(np.argmin(curve))]) if len(curve) else None

    @property
    def signal_to_noise(self) -> float | None:
        """Depth of the loss's descent over its step-to-step noise; below 3 the curve is noisy."""
        return signal_to_noise(*self._raw())

    def sweep(self) -> tuple[float, float]:
        """The LRs the test swept: its ``start_lr`` .. ``end_lr`` (where it stopped is ``lrs[-1]``)."""
        start = float(self.config.get("start_lr", self.lrs[0] if len(self.lrs) else 1e-7))
        return start, float(self.config.get("end_lr", self.lrs[-1] if len(self.lrs) else 10.0))

    def search_range(self) -> tuple[float, float]:
        """Log-scale bounds ``(low, high)`` for the peak LR of a schedule search.

        Rule: with ``h`` the ``midpoint`` suggestion (density-normalised, see ``reference_lr``),
        ``low = h / 10**0.42`` and ``high = h * 10**1.06``, 1.48 decades. On the calibration
        benchmark every grid-best constant LR and one-cycle peak lay within [-0.27, +0.91]
        decades of ``h``. When the curve is noisy (``signal_to_noise < 3``; flagged and warned)
        the range also spans ``m / 10**1.96 .. m * 10**0.44`` around ``m``, the normalised LR of
        the centred curve's minimum: a wider range, because the test could not say more.
        Bounds are clipped to the swept interval; without a usable curve the whole interval is
        returned. README, "Range test benchmark", has the numbers, held-out tasks included.
        """
        start, end = self.sweep()
        h = self.suggestion("midpoint")
        if h is None:
            return start, end
        low, high = h / 10**RANGE_BELOW, h * 10**RANGE_ABOVE
        snr = self.signal_to_noise
        if snr is not None and snr < NOISY_SNR:
            lrs, raw = self._raw()
            m = self.reference_lr(float(lrs[int(np.argmin(centred(lrs, raw)))]))
            low, high = min(low, m / 10**MIN_BELOW), max(high, m * 10**MIN_ABOVE)
        low, high = max(start, low), min(end, high)
        return low, max(high, low)

    # -------------------------------------------------------------- diagnostics
    @property
    def flags(self) -> dict[str, bool]:
        """``never_diverged`` (end_lr too small), ``flat`` (no descent), ``diverged_at_once``,
        ``noisy`` (the descent is under 3x the step-to-step noise)."""
        lrs, curve = self._curve()
        if len(curve) < 3:
            return {"never_diverged": False, "flat": False, "diverged_at_once": self.stop_reason != "completed",
                    "noisy": False}
        start, low = float(curve[0]), float(np.min(curve))
        drop = (start - low) / max(abs(start), 1e-12)
        snr = self.signal_to_noise
        return {
            # completed without the loss climbing back halfway to where it started (and by 5%)
            "never_diverged": self.stop_reason == "completed"
            and float(curve[-1]) <= low + max(0.5 * (start - low), 0.05 * abs(low)),
            "flat": drop < 0.02,
            "diverged_at_once": self.stop_reason != "completed" and int(np.argmin(curve)) == 0,
            "noisy": snr is not None and snr < NOISY_SNR,
        }

    @property
    def warnings(self) -> list[str]:
        """Plain-language warnings for the flags that are set, and for missing suggestions."""
        messages = {
            "never_diverged": "the loss never diverged: end_lr may be too small for the range to be reliable",
            "flat": "the loss curve is flat (less than 2% descent): the model may already be trained, "
                    "or start_lr/end_lr miss the useful range",
            "diverged_at_once": "the loss diverged at once: start_lr may be too large",
            "noisy": "the loss curve is mostly noise (descent under 3x the step-to-step noise): "
                     "search_range() is widened; raise num_iter (e.g. 3x) or the batch size",
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
        from lrsearch.reports import plot_range_test

        return plot_range_test(self, ax=ax, suggestions=suggestions, show_range=show_range)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeTestResult):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]
