"""``Schedule``: one learning-rate schedule as plain data with closed-form math.

Time is a fraction of the run and LRs are ratios of the peak ``lr``, so the same spec rebuilds a
schedule for a run of any length. The spec round-trips exactly through ``to_dict``/JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from lrsearch._checks import check_float
from lrsearch._checks import show
from lrsearch.schedules._grid import curve_length
from lrsearch.schedules._grid import step_and_total
from lrsearch.schedules._grid import steps_array
from lrsearch.schedules._grid import total_of
from lrsearch.schedules._modifiers import EXTRA_KEYS
from lrsearch.schedules._modifiers import describe_extras
from lrsearch.schedules._modifiers import extras_to_dict
from lrsearch.schedules._modifiers import group_schedule
from lrsearch.schedules._modifiers import normalise_extras
from lrsearch.schedules._modifiers import params_to_dict
from lrsearch.schedules._modifiers import schedule_multipliers
from lrsearch.schedules._modifiers import stair_clock
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import get_family
from lrsearch.schedules._specdata import check_spec_size
from lrsearch.schedules._specdata import compact
from lrsearch.schedules._specdata import normalise
from lrsearch.schedules._specdata import plain
from lrsearch.schedules._tail import apply_swa_lr
from lrsearch.schedules._tail import describe_tail
from lrsearch.schedules._tail import normalise_tail
from lrsearch.schedules._tail import tail_start
from lrsearch.schedules._warmup import WARMUP_PARAMS
from lrsearch.schedules._warmup import check_warmup
from lrsearch.schedules._warmup import warmup_steps
from lrsearch.schedules._warmup import warmup_to_dict


if TYPE_CHECKING:
    import torch

    from lrsearch.training import ScheduleLR


SPEC_VERSION = 1
_CHUNK = 2**16  # steps evaluated at once, so that temporaries stay small on long step arrays
_FIELDS = ("lr", "params", "warmup", "tail", *EXTRA_KEYS)
_TOP_KEYS = ("version", "family", *_FIELDS, "chosen_for", "optimizer")
# ``chosen_for`` and ``optimizer`` are notes, not part of the schedule. ``optimizer``: the optimizer
# an exported best trial searched with (``lrsearch.optim.OptimizerSpec.from_dict`` reads it);
# ``chosen_for``: the run length an exported spec was chosen for and what the loss model predicted there (``SearchResult.export_best(total_steps=...)``).


@dataclass(frozen=True, eq=True)
class Schedule:
    """A learning-rate schedule: a family, a peak ``lr``, the family's params and a warmup.

    Example:
        >>> s = Schedule("cosine", lr=3e-3, params={"min_ratio": 0.01}, warmup={"frac": 0.05})
        >>> round(s.lr_at(0, 1000), 8), s.lr_at(50, 1000)
        (6e-05, 0.003)
        >>> Schedule.from_dict(s.to_dict()) == s
        True

    Args:
        family: One of ``lrsearch.schedules.families()``.
        lr: Peak learning rate, finite and > 0. Each param group keeps its ratio to it.
        params: The family's parameters; anything left out takes its default, so
            ``Schedule(family)`` is valid for every family.
        warmup: ``{"frac", "shape", "start_ratio", "overlay"}``; ``frac`` in [0, 1) of the run,
            ``shape`` one of linear, cosine, exp, constant, exp_tau (overlay only); ``overlay``
            multiplies the undelayed schedule (pytorch_warmup). Refused with ``frac > 0`` for
            onecycle and cyclic, which rise on their own.
        tail: ``None`` or an averaging tail (SWA or EMA of the weights over the last part of
            the run, optionally with an ``SWALR``-style LR): ``{"kind": "swa"|"ema", "start",
            "every", "decay" (ema), "swa_lr", "anneal", "anneal_shape"}``; see
            ``lrsearch.schedules._tail``. In ``to_dict`` only when set.
        noise, floor, stairs, groups: timm's LR noise, a floor ratio after warmup (MONAI
            ``end_lr``), per-epoch stepping over ``stairs`` parts, per-param-group schedules; see
            ``lrsearch.schedules._modifiers``. Each in ``to_dict`` only when set.
    """

    family: str = "constant"
    lr: float = 1e-3
    params: Mapping[str, Any] | None = None
    warmup: Mapping[str, Any] | None = None
    tail: Mapping[str, Any] | None = None
    noise: Mapping[str, Any] | None = None
    floor: float | None = None
    stairs: int | None = None
    groups: Any = None

    def __post_init__(self) -> None:
        for key in ("params", "warmup", "tail", "noise", "groups"):
            check_spec_size(key, getattr(self, key))
        fam = get_family(self.family)
        lr = check_float("lr", self.lr)
        if lr <= 0.0:
            raise ValueError(f"lr must be > 0 but got {lr!r}.")
        params = normalise("params", self.params, fam.params, f" for family {fam.name!r}")
        if fam.check is not None:
            fam.check(params)
        warmup = normalise("warmup", self.warmup, WARMUP_PARAMS, "")
        if fam.rises and warmup["frac"] > 0.0:
            raise ValueError(
                f"warmup.frac must be 0 for family {fam.name!r}, which rises on its own, "
                f"but got {warmup['frac']!r}."
            )
        check_warmup(warmup)
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "warmup", warmup)
        object.__setattr__(self, "tail", normalise_tail(self.tail))
        if fam.schedule_free and self.tail is not None:
            raise ValueError(f"tail must be None for family {fam.name!r}, whose optimizer averages the weights "
                             f"itself, but got {self.tail!r}.")
        extras = normalise_extras({k: getattr(self, k) for k in EXTRA_KEYS}, lr, type(self))
        for key, value in extras.items():
            object.__setattr__(self, key, value)

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"Schedule.from_dict({self.to_dict()!r})"

    # ----------------------------------------------------------------- data
    @property
    def spec_family(self) -> Family:
        """The registry entry of this schedule's family."""
        return get_family(self.family)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready) that ``from_dict`` turns back into an equal schedule."""
        out = {
            "version": SPEC_VERSION,
            "family": self.family,
            "lr": self.lr,
            "params": params_to_dict(self.spec_family, self.params),
            "warmup": plain(warmup_to_dict(self.warmup)),
        }
        if self.tail is not None:
            out["tail"] = plain(self.tail)
        return {**out, **extras_to_dict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> Schedule:
        """Rebuild a schedule from ``to_dict()`` output (JSON-decoded or not)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a schedule spec must be a dict but got {show(data)}.")
        unknown = [k for k in data if k not in _TOP_KEYS]
        if unknown:
            raise ValueError(
                f"a schedule spec has an unknown key {unknown[0]!r}; expected {', '.join(_TOP_KEYS)}."
            )
        for note in ("chosen_for", "optimizer"):
            if not isinstance(data.get(note, {}), Mapping):
                raise ValueError(f"{note} must be a dict but got {show(data[note])}.")
        version = data.get("version", SPEC_VERSION)
        if version != SPEC_VERSION or isinstance(version, bool):
            raise ValueError(f"version must be {SPEC_VERSION} but got {show(version)}.")
        if "family" not in data:
            raise ValueError("a schedule spec must have the key 'family'.")
        kwargs = {k: data[k] for k in _FIELDS if k in data}
        return cls(data["family"], **kwargs)

    def to_json(self) -> str:
        """The spec as a JSON string with sorted keys."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Schedule:
        """Parse ``to_json`` output; malformed JSON (or nested past Python's recursion limit, or
        with an integer of more than 4300 digits) raises ``ValueError``."""
        try:
            data = json.loads(text)
        except RecursionError:
            raise ValueError("a schedule spec must be valid JSON: nested too deeply to parse.") from None
        except (TypeError, ValueError) as err:  # JSONDecodeError is a ValueError
            raise ValueError(f"a schedule spec must be valid JSON: {err}") from None
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> Schedule:
        """A copy with some of ``family``, ``lr``, ``params``, ``warmup``, ``tail`` ... changed."""
        data = {k: getattr(self, k) for k in ("family", *_FIELDS)}
        data.update(changes)
        return Schedule(**data)

    # ----------------------------------------------------------------- math
    def warmup_steps(self, total_steps: int) -> int:
        """Number of warmup steps in a run of ``total_steps`` optimizer steps."""
        total_steps = total_of(total_steps)
        return warmup_steps(self.warmup["frac"], total_steps)

    def tail_start_step(self, total_steps: int) -> int | None:
        """The first step of the averaging tail in a ``total_steps`` run, or ``None`` without one."""
        return None if self.tail is None else tail_start(self.tail, total_of(total_steps))

    def multipliers(self, steps: Any, total_steps: int) -> np.ndarray:
        """LR as a ratio of the peak at each of ``steps`` (vectorised ``lr_at / lr``), in [0, 1]
        (up to ``1 + noise.pct`` with noise)."""
        t, total_steps = steps_array(steps), total_of(total_steps)
        flat_t = np.minimum(t, total_steps - 1).ravel()
        out = np.empty(flat_t.shape)
        for lo in range(0, flat_t.size, _CHUNK):
            out[lo:lo + _CHUNK] = self._multipliers(flat_t[lo:lo + _CHUNK], total_steps)
        if self.tail is not None:  # the SWALR anneal from the tail's start, if swa_lr is set
            out = apply_swa_lr(self.tail, flat_t, total_steps, out,
                               lambda s: float(self._multipliers(np.array([float(s)]), total_steps)[0]))
        if not np.all(np.isfinite(out)):  # the closed forms are meant to make this impossible
            raise ValueError(f"{self!r} gives a non-finite LR at a step of a {total_steps}-step run: "
                             "a bug in lrsearch, please report it.")
        return out.reshape(t.shape)

    def _multipliers(self, t: np.ndarray, total_steps: int) -> np.ndarray:
        return schedule_multipliers(self, t, total_steps)

    def for_group(self, index: int) -> Schedule:
        """The schedule param group ``index`` runs: its entry of ``groups``, else this one's main."""
        return group_schedule(self, index)

    def lr_at(self, step: int, total_steps: int) -> float:
        """The LR at optimizer step ``step`` (from 0) of a ``total_steps`` run, in closed form.

        Steps at or past ``total_steps`` hold the last step's value (torch's cosine would rise
        again past ``T_max``; its OneCycleLR would raise), however large. ``total_steps`` is at
        most 2**53, past which step counts are not exact floats.
        """
        step, total_steps = step_and_total(step, total_steps)
        return self.lr * float(self.multipliers(np.array([step]), total_steps)[0])

    def curve(self, total_steps: int) -> np.ndarray:
        """The LR at every step ``0 .. total_steps - 1``, for plots and tables.

        At most ``MAX_CURVE_STEPS`` (10**7) steps, one float each; for a longer run use ``lr_at`` or
        ``lr * multipliers(steps, total_steps)`` on a coarser grid of steps.
        """
        total_steps = curve_length(total_steps)
        return self.lr * self.multipliers(np.arange(total_steps), total_steps)

    @property
    def has_momentum(self) -> bool:
        """Whether this schedule cycles momentum (or Adam's beta1), as torch's one-cycle does."""
        return self.momentum_curve(1) is not None

    def momentum_curve(self, total_steps: int, steps: Any = None) -> np.ndarray | None:
        """Momentum (or beta1) at ``steps`` (default: every step, at most 10**7 as ``curve``), or
        ``None`` if not cycled."""
        total_steps = (curve_length if steps is None else total_of)(total_steps)
        fam = self.spec_family
        if fam.momentum is None:
            return None
        t = steps_array(np.arange(total_steps) if steps is None else steps)
        t, total_steps = stair_clock(self, np.minimum(t, total_steps - 1), total_steps)
        with np.errstate(over="ignore", under="ignore"):
            return fam.momentum(t, total_steps, self.params)

    def momentum_at(self, step: int, total_steps: int) -> float | None:
        """Momentum (or beta1) at ``step``, or ``None`` when this schedule does not cycle it."""
        step, total_steps = step_and_total(step, total_steps)
        values = self.momentum_curve(total_steps, np.array([step]))
        return None if values is None else float(values[0])

    # ----------------------------------------------------------------- views
    def build(
        self, optimizer: torch.optim.Optimizer, total_steps: int, **kwargs: Any
    ) -> ScheduleLR:
        """A torch LR scheduler driving ``optimizer``, stepped once per optimizer step."""
        from lrsearch.training import ScheduleLR

        return ScheduleLR(optimizer, self, total_steps, **kwargs)

    def key_params(self) -> str:
        """The params that differ from the family's defaults, 3 significant digits, as ``k=v``."""
        defaults, fam = self.spec_family.defaults, self.spec_family
        if fam.describe is not None:
            return fam.describe(self.params)
        return ", ".join(f"{k}={compact(v)}" for k, v in self.params.items() if v != defaults[k])

    def describe(self) -> str:
        """A short, human-readable line: family, peak LR, non-default params, warmup."""
        changed = self.key_params()
        text = f"{self.family}(lr={self.lr:.3g}{', ' if changed else ''}{changed})"
        if self.warmup["frac"] > 0:
            text += f" + {self.warmup['frac']:.1%} {self.warmup['shape']} warmup"
            text += " overlay" if self.warmup["overlay"] else ""
        if self.tail is not None:
            text += f" + {describe_tail(self.tail)}"
        return text + describe_extras(self)

