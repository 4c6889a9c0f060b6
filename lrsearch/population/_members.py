"""What a population is made of: its members (one schedule, seed, run length and callback each),
their results, the checks on a ``Task``, and the one-at-a-time fallback.

A member is built exactly as ``train`` builds a run (``torch.manual_seed(seed)``, then the model,
the optimizer and the schedule's ``ScheduleLR``), so its initial weights are the reference loop's.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lrsearch._checks import check_int
from lrsearch.training import Task
from lrsearch.training import TrainResult
from lrsearch.training import length_of
from lrsearch.training import tensor_pair
from lrsearch.training import new_run
from lrsearch.training import train
from lrsearch.schedules import Schedule


class PopulationWarning(UserWarning):
    """A population could not be trained together and ran one member at a time; says why."""


@dataclass
class MemberResult(TrainResult):
    """``TrainResult`` of one member, and what stopped it early: the exception its ``on_eval``
    raised (``optuna.TrialPruned`` when pruned), or ``None`` when it trained to its end. ``model``
    is ``None`` for a member stopped in the one-at-a-time fallback."""

    error: Exception | None = None


@dataclass
class Member:
    """One run of the population: what ``train(task, schedule, seed=, total_steps=, on_eval=)`` takes."""

    schedule: Schedule
    seed: int
    total: int
    on_eval: Callable[[int, float], None] | None
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None

    def evals(self, task: Task) -> list[int]:
        """The optimizer steps after which this member evaluates (as ``train``)."""
        return task.eval_steps(self.total)

    def build(self, task: Task, device: torch.device, *, schedule: bool = True) -> Member:
        self.model, self.optimizer = new_run(task, device, self.seed, self.schedule)
        if schedule:
            self.scheduler = self.schedule.build(self.optimizer, self.total)
        return self


# Task fields a population trains as ``train`` does; any other field set away from its default
# (a feature added to the reference loop later) sends the population to the one-at-a-time fallback.
# (``groups`` only shapes an ``OptimizerSpec``, and searched optimizers already train one at a time.)
_SUPPORTED = {"model_fn", "train_data", "val_data", "loss_fn", "metric", "epochs", "optimizer_fn", "batch_size",
              "direction", "device", "amp", "accumulation_steps", "clip_grad_norm", "threads", "groups", "steps",
              "eval_every"}


def task_reason(task: Task) -> str | None:
    """Why ``task`` cannot be trained as a population (before looking at its model), or ``None``."""
    if not tensor_pair(task.train_data):
        stream = " (a stream without a length)" if length_of(task.train_data) is None else ""
        return (f"train_data must be (inputs, targets) tensors to batch members' data orders, "
                f"not {type(task.train_data).__name__}{stream}")
    if task.amp is not None:
        return f"amp={task.amp!r} is not batched"
    if task.accumulation_steps != 1:
        return f"accumulation_steps={task.accumulation_steps} is not batched"
    for f in dataclasses.fields(task):
        if f.name in _SUPPORTED:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if getattr(task, f.name) is not default and getattr(task, f.name) != default:
            return f"Task.{f.name}={getattr(task, f.name)!r} is not supported by the population runner"
    return None


def schedule_reason(schedules: Sequence[Schedule]) -> str | None:
    """Why these schedules cannot be batched (features ``train`` applies outside the LR), or ``None``."""
    for i, s in enumerate(schedules):
        if s.tail is not None:
            return f"schedules[{i}] has an averaging tail (SWA/EMA of the weights), which is not batched"
        if s.groups:
            return f"schedules[{i}] gives param groups their own schedules, which is not batched"
        if s.spec_family.schedule_free:
            return f"schedules[{i}] is {s.family} (a Schedule-Free optimizer), which is not batched"
    return None


def make_members(task: Task, schedules: Sequence[Schedule], seeds: int | Sequence[int],
                 total_steps: int | Sequence[int] | None,
                 on_eval: Sequence[Callable[[int, float], None] | None] | None) -> list[Member]:
    """Validate ``train_population``'s arguments into members."""
    if isinstance(schedules, Schedule) or not isinstance(schedules, Sequence) or not schedules:
        raise ValueError(f"schedules must be a non-empty sequence of Schedule but got {schedules!r}.")
    for i, s in enumerate(schedules):
        if not isinstance(s, Schedule):
            raise ValueError(f"schedules[{i}] must be a Schedule but got {type(s).__name__}.")
    n = len(schedules)

    def per_member(name: str, value: Any) -> list[Any]:
        if isinstance(value, Sequence):
            if len(value) != n:
                raise ValueError(f"{name} must have one entry per schedule ({n}) but got {len(value)}.")
            return list(value)
        return [value] * n

    seeds_ = [check_int(f"seeds[{i}]", s) for i, s in enumerate(per_member("seeds", seeds))]
    full = task.full_steps()
    totals = [full if t is None else check_int(f"total_steps[{i}]", t, low=1)
              for i, t in enumerate(per_member("total_steps", total_steps))]
    callbacks = per_member("on_eval", on_eval)
    for i, cb in enumerate(callbacks):
        if cb is not None and not callable(cb):
            raise ValueError(f"on_eval[{i}] must be callable or None but got {cb!r}.")
    return [Member(s, seed, total, cb) for s, seed, total, cb in zip(schedules, seeds_, totals, callbacks)]


def one_by_one(task: Task, members: list[Member], reason: str,
               on_exit: Callable[[int, MemberResult], None] | None, optimizers: Sequence[Any]) -> list[MemberResult]:
    """The fallback: ``train`` each member in turn, with a ``PopulationWarning`` naming ``reason``."""
    warnings.warn(f"lrsearch.train_population: training the {len(members)} members one at a time "
                  f"because {reason}.", PopulationWarning, stacklevel=3)
    results = []
    for i, (member, spec) in enumerate(zip(members, optimizers)):
        values: list[float] = []
        raised: list[Exception] = []

        def record(index: int, value: float, member: Member = member) -> None:
            values.append(value)
            if member.on_eval is not None:
                try:
                    member.on_eval(index, value)
                except Exception as err:
                    raised.append(err)
                    raise

        try:
            run = train(task, member.schedule, on_eval=record, seed=member.seed, total_steps=member.total,
                        optimizer=spec)
            result = MemberResult(run.values, run.steps, run.device, run.model)
        except Exception as err:
            if not raised or err is not raised[0]:
                raise
            steps = member.evals(task)[len(values) - 1]
            result = MemberResult(values, steps, str(task.resolve_device()), None, error=err)
        results.append(result)
        if on_exit is not None:
            on_exit(i, result)
    return results
