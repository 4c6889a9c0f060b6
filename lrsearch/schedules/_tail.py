"""An averaging tail: the last part of a run keeps a running average of the weights (SWA or EMA).

The tail is part of a schedule's spec (``Schedule(..., tail={...})``), plain data like the warmup;
the loop and the integrations keep the averaged model with torch's ``swa_utils`` and evaluate it.
This module is the pure part: its parameters, which steps update the average, and the optional
``SWALR``-style change of the LR from the tail's start. Keys (fractions are of the run):

- ``kind``: ``"swa"`` (equal average of the updates, torch's ``AveragedModel`` default) or
  ``"ema"`` (``avg <- decay * avg + (1 - decay) * w``, ``get_ema_multi_avg_fn``); required.
- ``start``: in (0, 1), default 0.75: the first tail step is ``S = round(start * T)`` (at most
  ``T - 1``).
- ``every``: in [0, 1), default 0: ``K = max(1, round(every * T))`` steps between updates. The
  average is updated after optimizer step ``t >= S`` when ``(t - S + 1) % K == 0``, and always
  after the last step, so it includes the final weights. 0 updates after every step.
- ``decay`` (``ema`` only): in [0, 1), default 0.999.
- ``swa_lr``: ``None`` (default: the schedule's LR runs on) or a ratio of the peak in (0, 1]: from
  step ``S`` on, the LR anneals from the schedule's value at ``S``, ``m(S)``, to ``swa_lr`` over
  ``A = round(anneal * T)`` steps and then holds it, as torch's ``SWALR`` does when built at step
  ``S`` and stepped once per optimizer step: ``m(S + k) = m(S) (1 - a) + swa_lr a`` with
  ``a = f(min(1, k / A))``, ``f`` = ``(1 - cos(pi x)) / 2`` (``anneal_shape="cos"``) or ``x``
  (``"linear"``); ``A = 0`` sets ``swa_lr`` at once (torch's ``anneal_epochs=0``).
- ``anneal``: in [0, 1), default 0.05; ``anneal_shape``: ``"cos"`` (default, torch's) or
  ``"linear"``.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import show
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import steps_of
from lrsearch.schedules._specdata import normalise


KINDS = ("swa", "ema")
ANNEAL_SHAPES = ("cos", "linear")


@dataclass(frozen=True)
class OptionalRatio:
    """``None`` or a ratio of the peak LR in (0, 1]."""

    default: Any = None
    doc: str = ""
    rule = "None or a ratio of the peak LR in (0, 1]"

    def check(self, name: str, value: Any) -> float | None:
        if value is None:
            return None
        number = check_float(name, value)
        if not 0.0 < number <= 1.0:
            raise ValueError(f"{name} must be {self.rule} but got {number!r}.")
        return number


_COMMON = {
    "start": Float(0.75, 0.0, 1.0, low_open=True, high_open=True,
                   doc="first tail step as a fraction of the run"),
    "every": Float(0.0, 0.0, 1.0, high_open=True,
                   doc="fraction of the run between averaging updates; 0: every step"),
    "swa_lr": OptionalRatio(doc="LR held in the tail, a ratio of the peak; None keeps the schedule"),
    "anneal": Float(0.05, 0.0, 1.0, high_open=True,
                    doc="fraction of the run over which the LR anneals to swa_lr"),
    "anneal_shape": Choice("cos", ANNEAL_SHAPES),
}
TAIL_PARAMS: dict[str, dict[str, Any]] = {
    "swa": {"kind": Choice("swa", KINDS), **_COMMON},
    "ema": {"kind": Choice("ema", KINDS),
            "decay": Float(0.999, 0.0, 1.0, high_open=True, doc="EMA decay per update"), **_COMMON},
}


def normalise_tail(given: Any) -> MappingProxyType[str, Any] | None:
    """Validate a ``tail`` spec, fill its defaults and freeze it; ``None`` stays ``None``."""
    if given is None:
        return None
    if not isinstance(given, Mapping):
        raise ValueError(f"tail must be None or a dict but got {show(given)}.")
    if "kind" not in given:
        kinds = ", ".join(map(repr, KINDS))
        raise ValueError(f"tail.kind must be given (one of {kinds}) but got {show(dict(given))}.")
    kind = check_choice("tail.kind", given["kind"], KINDS)
    return normalise("tail", given, TAIL_PARAMS[kind], f" for tail kind {kind!r}")


def tail_start(tail: Mapping[str, Any], total_steps: int) -> int:
    """The first tail step ``S`` of a ``total_steps`` run, in [0, total_steps - 1]."""
    return min(steps_of(tail["start"], total_steps), total_steps - 1)


def tail_every(tail: Mapping[str, Any], total_steps: int) -> int:
    """Optimizer steps between averaging updates, at least 1."""
    return max(1, steps_of(tail["every"], total_steps))


def is_update_step(step: int, start: int, every: int, total_steps: int) -> bool:
    """Whether the average is updated after optimizer step ``step`` (from 0)."""
    return start <= step < total_steps and ((step - start + 1) % every == 0 or step == total_steps - 1)


def update_steps(tail: Mapping[str, Any], total_steps: int) -> np.ndarray:
    """Every optimizer step after which the average is updated, in order."""
    start, every = tail_start(tail, total_steps), tail_every(tail, total_steps)
    steps = np.arange(start + every - 1, total_steps, every)
    return steps if steps.size and steps[-1] == total_steps - 1 else np.append(steps, total_steps - 1)


def apply_swa_lr(
    tail: Mapping[str, Any], t: np.ndarray, total_steps: int, out: np.ndarray,
    base_at: Callable[[int], float],
) -> np.ndarray:
    """``out`` (multipliers at steps ``t``) with the SWALR anneal from the tail's start, if any."""
    swa_lr = tail["swa_lr"]
    if swa_lr is None:
        return out
    start = tail_start(tail, total_steps)
    late = t >= start
    if not np.any(late):
        return out
    anneal = steps_of(tail["anneal"], total_steps)
    x = np.ones(int(late.sum())) if anneal == 0 else np.minimum(1.0, (t[late] - start) / anneal)
    alpha = (1.0 - np.cos(np.pi * x)) / 2.0 if tail["anneal_shape"] == "cos" else x
    out = out.copy()
    out[late] = base_at(start) * (1.0 - alpha) + swa_lr * alpha
    return out


def describe_tail(tail: Mapping[str, Any]) -> str:
    """``SWA from 75%``, ``EMA(0.999) from 80% every 1%, LR -> 0.05 over 5% cos``."""
    text = "SWA" if tail["kind"] == "swa" else f"EMA({tail['decay']:.4g})"
    text += f" from {tail['start']:.0%}"
    if tail["every"] > 0:
        text += f" every {tail['every']:.2%}"
    if tail["swa_lr"] is not None:
        text += f", LR -> {tail['swa_lr']:.3g} over {tail['anneal']:.1%} {tail['anneal_shape']}"
    return text
