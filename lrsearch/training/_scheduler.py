"""``ScheduleLR``: drive a torch optimizer from a ``Schedule``, one ``step()`` per optimizer step.

The LR of step ``t`` is computed in closed form from the spec, never from the optimizer's current
LR, so resuming is a matter of loading ``{"schedule", "total_steps", "step", ...}``: no replay, no
chained state (pytorch#162591, mmengine#1542). The constructor neither steps nor wraps
``optimizer.step`` (torch's base class does both); it only sets step 0's LR.

Param groups keep their ratio to the peak: group ``g`` runs at
``schedule.lr * initial_lr_g / optimizer.defaults["lr"]`` times the schedule's ratio, so groups
built at ``lr`` and ``lr / 10`` stay 10:1 whatever peak the schedule picks. A spec with ``groups``
gives group ``g`` its own schedule, ``schedule.for_group(g)``, at that same ratio to the peak.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch._checks import check_steps
from lrsearch._checks import show
from lrsearch._plateau import PlateauMonitor
from lrsearch.schedules import Schedule


_CHUNK = 4096  # steps of the closed form evaluated at once (vectorised) and cached
_EPS = 1e-8  # torch ReduceLROnPlateau's eps: smaller LR changes are ignored


def _reference_lr(optimizer: torch.optim.Optimizer) -> float:
    ref = optimizer.defaults.get("lr")
    if isinstance(ref, torch.Tensor):
        ref = float(ref)
    if isinstance(ref, (int, float)) and not isinstance(ref, bool) and ref > 0:
        return float(ref)
    lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
    if max(lrs) <= 0:
        raise ValueError(f"optimizer param groups must have an lr > 0 to scale but got {lrs}.")
    return max(lrs)


def scales_of(optimizer: torch.optim.Optimizer) -> list[float]:
    """Each param group's ratio to the peak: ``initial_lr`` (else ``lr``) over the default lr."""
    ref = _reference_lr(optimizer)
    return [float(g.get("initial_lr", g["lr"])) / ref for g in optimizer.param_groups]


class ScheduleLR(LRScheduler):
    """A torch LR scheduler for a ``Schedule``; call ``step()`` after each optimizer step.

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
        >>> sched = Schedule("cosine", lr=0.1).build(opt, total_steps=100)
        >>> for _ in range(100):
        ...     opt.step()
        ...     sched.step()

    Args:
        optimizer: Any ``torch.optim.Optimizer``.
        schedule: The spec (a ``Schedule`` or its ``to_dict()``).
        total_steps: Optimizer steps in the run, 1 to 2**53. Steps past it hold the last LR.
        group_scales: Optional ratio of each param group to the peak; by default each group's
            ``initial_lr`` (set from its ``lr`` on first use) over ``optimizer.defaults["lr"]``.
            A group whose peak ``schedule.lr * scale`` overflows a float is refused, so every LR
            this scheduler sets is finite and >= 0.

    The ``plateau`` family also takes ``step(metric)`` after each evaluation: a
    ``PlateauMonitor`` decides, and the LR is multiplied by ``factor`` (never below
    ``min_ratio``), as torch's ``ReduceLROnPlateau`` does.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule | Mapping[str, Any],
        total_steps: int,
        *,
        group_scales: list[float] | None = None,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer but got {type(optimizer).__name__}.")
        self.optimizer = optimizer
        if group_scales is None:
            for group in optimizer.param_groups:  # the base LR survives the LRs this scheduler sets
                group.setdefault("initial_lr", group["lr"])
            group_scales = scales_of(optimizer)
        self.__dict__.update(self._validated(schedule, total_steps, group_scales, step=0))
        self._apply()

    def _validated(
        self, schedule: Any, total_steps: Any, group_scales: Any, step: Any,
        plateau_scale: Any = 1.0, plateau: Any = None,
    ) -> dict[str, Any]:
        """The scheduler's attributes for these settings, every one checked; nothing is set here,
        so a refused ``load_state_dict`` leaves the scheduler as it was."""
        if not isinstance(schedule, Schedule):
            schedule = Schedule.from_dict(schedule)
        if schedule.spec_family.schedule_free and not getattr(self.optimizer, "schedule_free", False):
            raise ValueError(f"optimizer must be Schedule-Free for the {schedule.family} family (a held LR whose "
                             f"decay is the optimizer's weight average) but got {type(self.optimizer).__name__}: "
                             "build it with lrsearch.optim.schedule_free(optimizer) and call its train() and eval().")
        total_steps = check_steps("total_steps", total_steps, low=1)
        groups = self.optimizer.param_groups
        if not isinstance(group_scales, (list, tuple)) or len(group_scales) != len(groups):
            raise ValueError(
                f"group_scales must have one value per param group ({len(groups)}) but got {show(group_scales)}."
            )
        scales = [check_float(f"group_scales[{i}]", s) for i, s in enumerate(group_scales)]
        if any(s < 0 for s in scales):
            raise ValueError(f"group_scales must be >= 0 but got {scales!r}.")
        base_lrs = [schedule.lr * s for s in scales]
        named = [int(i) for i in schedule.groups or {}]
        if named and max(named) >= len(groups):
            raise ValueError(f"schedule.groups names param group {max(named)} but the optimizer has "
                             f"{len(groups)} param group(s).")
        group_schedules = [schedule.for_group(i) for i in range(len(groups))] if named else [schedule]
        top = max(1.0 + (s.noise["pct"] if s.noise else 0.0) for s in group_schedules)
        for i, base in enumerate(base_lrs):
            if not math.isfinite(base * top):  # the largest ratio of the peak is 1 (1 + pct with noise)
                raise ValueError(
                    f"param group {i} would run at lr * group_scales[{i}] = {schedule.lr!r} * {scales[i]!r}, "
                    "which overflows a float; lower lr or that group's ratio to the peak."
                )
        step = check_int("step", step, low=0)
        plateau_scale = check_float("plateau_scale", plateau_scale)
        if not 0.0 < plateau_scale <= 1.0:
            raise ValueError(f"plateau_scale must be in (0, 1] but got {plateau_scale!r}.")
        p = schedule.params
        monitor = (
            PlateauMonitor(p["mode"], p["patience"], p["threshold"], p["threshold_mode"], p["cooldown"])
            if schedule.family == "plateau"
            else None
        )
        if plateau is not None and not isinstance(plateau, Mapping):
            raise ValueError(f"plateau must be None or a PlateauMonitor.state_dict() but got {show(plateau)}.")
        if monitor is not None and plateau is not None:
            try:
                monitor.load_state_dict(dict(plateau))
            except ValueError as err:
                raise ValueError(f"plateau: {err}") from None
        use_beta1 = "betas" in self.optimizer.defaults
        for sched in group_schedules:
            if sched.has_momentum and not use_beta1 and "momentum" not in self.optimizer.defaults:
                raise ValueError(
                    f"optimizer must have momentum or betas for family {sched.family!r} with "
                    f"cycle_momentum=True but {type(self.optimizer).__name__} has neither."
                )
        unique = list(dict.fromkeys(group_schedules))
        return {
            "schedule": schedule, "total_steps": total_steps, "group_scales": scales, "base_lrs": base_lrs,
            "last_epoch": step, "_step_count": step + 1, "plateau_scale": plateau_scale, "monitor": monitor,
            "_use_beta1": use_beta1, "_cache_start": -1, "_cache": [], "_momentum_cache": [],
            "_unique": unique, "_which": [unique.index(s) for s in group_schedules],
        }

    # ------------------------------------------------------------------ stepping
    def _ratios(self, t: int) -> list[tuple[float, float | None]]:
        """Each param group's ratio (and momentum) at step ``t``, from vectorised cached chunks."""
        t = min(t, self.total_steps - 1)
        if not self._cache_start <= t < self._cache_start + _CHUNK or not self._cache:
            steps = np.arange(t, min(t + _CHUNK, self.total_steps))
            self._cache_start = t
            self._cache = [s.multipliers(steps, self.total_steps) for s in self._unique]
            self._momentum_cache = [s.momentum_curve(self.total_steps, steps) for s in self._unique]
        i = t - self._cache_start
        out = []
        for k in self._which:
            momenta = self._momentum_cache[k]
            out.append((float(self._cache[k][i]), None if momenta is None else float(momenta[i])))
        return out * len(self.base_lrs) if len(out) == 1 else out

    def get_lr(self) -> list[float]:
        """The LR of every param group at the current step (no side effects)."""
        ratios = self._ratios(self.last_epoch)
        return [base * ratio * self.plateau_scale for base, (ratio, _) in zip(self.base_lrs, ratios)]

    def _apply(self) -> None:
        ratios = self._ratios(self.last_epoch)
        for group, base, (ratio, momentum) in zip(self.optimizer.param_groups, self.base_lrs, ratios):
            lr = base * ratio * self.plateau_scale
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
            if momentum is not None:
                if self._use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]

    def step(self, metric: float | None = None) -> None:  # type: ignore[override]
        """Advance one optimizer step; or, with ``metric``, feed the plateau monitor."""
        if metric is None:
            self.last_epoch += 1
            self._step_count += 1
        else:
            self.report(metric)
            return
        self._apply()

    def report(self, metric: float) -> bool:
        """Feed one evaluation to the plateau monitor; ``True`` when the LR was reduced."""
        if self.monitor is None:
            raise ValueError(
                f"metric is only taken by the 'plateau' family but this schedule is {self.schedule.family!r}."
            )
        value = float(metric)
        reduced = False
        if self.monitor.update(value):
            new = max(self.plateau_scale * self.schedule.params["factor"], self.schedule.params["min_ratio"])
            if (self.plateau_scale - new) * self.schedule.lr > _EPS:
                self.plateau_scale = new
                reduced = True
        self._apply()
        return reduced

    @property
    def accepts_metric(self) -> bool:
        """Whether ``step(metric)`` is meaningful (the plateau family)."""
        return self.monitor is not None

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Plain data: the spec, the run length, the step and the plateau state."""
        return {
            "schedule": self.schedule.to_dict(),
            "total_steps": self.total_steps,
            "step": self.last_epoch,
            "group_scales": list(self.group_scales),
            "plateau_scale": self.plateau_scale,
            "plateau": None if self.monitor is None else self.monitor.state_dict(),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Resume exactly where ``state_dict`` was taken; sets the optimizer's LRs at once.

        The state is self-contained: it restores the saved schedule (family, peak, params), run
        length, step, group ratios and plateau state, whatever this scheduler was built with, as
        torch's ``load_state_dict`` replaces a scheduler's state. A state saved from a cosine
        scheduler loaded into a step one therefore resumes the cosine run.

        The whole state is checked before anything changes: a refused state (``ValueError`` naming
        the key) leaves this scheduler, and the optimizer's LRs, as they were.
        """
        keys = ("schedule", "total_steps", "step", "group_scales")
        if not isinstance(state_dict, Mapping) or any(k not in state_dict for k in keys):
            raise ValueError(f"state_dict must be a ScheduleLR.state_dict() with keys {', '.join(keys)}.")
        new = self._validated(
            state_dict["schedule"], state_dict["total_steps"], state_dict["group_scales"], state_dict["step"],
            state_dict.get("plateau_scale", 1.0), state_dict.get("plateau"),
        )
        self.__dict__.update(new)
        self._apply()

    def __repr__(self) -> str:
        return f"ScheduleLR({self.schedule.describe()}, step={self.last_epoch}/{self.total_steps})"
