"""The reference training loop: a ``Task`` (model factory, data, loss, metric) trained under a
``Schedule``. It knows nothing of Optuna: ``on_eval(step, value)`` is the only link out.

Read top to bottom like minGPT's ``Trainer.run``: the schedule is stepped once per optimizer step;
evaluation runs at the task's evaluation steps (``Task.eval_steps``: per epoch, or every
``eval_every`` optimizer steps) and is the only place the host waits for the device (``float``).
In-memory tensors are sliced on the device (``TensorBatches``), other loaders are moved batch by
batch with ``non_blocking=True`` (pin their memory for truly asynchronous copies).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch

from lrsearch.training._averaging import Averager
from lrsearch._checks import check_int
from lrsearch.training._data import eval_mean
from lrsearch.training._data import length_of
from lrsearch.training._data import to_device
from lrsearch.training._threads import training_threads
from lrsearch.optim import OptimizerSpec
from lrsearch.optim import ScheduleFree
from lrsearch.optim import schedule_free
from lrsearch.training._data import unpack
from lrsearch.schedules import Schedule


from lrsearch.training._task import Task


@dataclass
class TrainResult:
    """What ``train`` did: the metric per evaluation, optimizer steps, the device, the trained model
    (with a schedule's averaging tail, the averaged model: its weights, BN statistics recomputed)."""

    values: list[float]
    steps: int
    device: str
    model: torch.nn.Module = field(repr=False, compare=False)

    @property
    def final(self) -> float:
        return self.values[-1]


def train(
    task: Task,
    schedule: Schedule,
    *,
    on_eval: Callable[[int, float], None] | None = None,
    seed: int = 0,
    total_steps: int | None = None,
    optimizer: OptimizerSpec | None = None,
) -> TrainResult:
    """Train ``task`` from scratch under ``schedule``; call ``on_eval(index, value)`` per evaluation.

    A full run is ``task.full_steps()`` optimizer steps, evaluated at ``task.eval_steps()``. With
    ``total_steps`` the run trains that many optimizer steps instead (a short run for a
    multi-fidelity search: the schedule spans exactly those steps, its decay included), evaluated
    at ``task.eval_steps(total_steps)``: ``task.epochs`` times evenly spaced (runs of every length
    are judged at the same fractions), or every ``task.eval_every`` steps.

    ``on_eval`` may raise (``optuna.TrialPruned``) to stop the run. A non-finite training loss
    is not checked per step (that would sync the host every step); it surfaces at evaluation.
    On a CPU the run uses ``task.threads`` threads (see ``Task``).

    ``optimizer``: an ``OptimizerSpec`` (a searched one: ``lrsearch.suggest_optimizer(trial)``)
    built over ``task.groups`` instead of ``task.optimizer_fn``.

    A schedule with a ``tail`` (SWA or EMA) keeps an averaged model from the tail's start
    (``lrsearch.training._averaging``); evaluations after its first update, and ``TrainResult.model``, use
    the averaged weights. An SWA of a model with BatchNorm recomputes its statistics over the
    training batches (in order) before each such evaluation.
    """
    device = task.resolve_device()
    with training_threads(device, task.threads):
        return _train(task, schedule, device, on_eval, seed, total_steps, optimizer)


def new_run(task: Task, device: torch.device, seed: int, schedule: Schedule,
            spec: OptimizerSpec | None = None) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A run's fresh model and optimizer, seeded: ``torch.manual_seed(seed)``, ``task.model_fn()`` on
    ``device``, then ``spec`` built over ``task.groups`` (or ``task.optimizer_fn``). The population
    builds its members with it, so their initial weights are ``train``'s."""
    if spec is not None and not isinstance(spec, OptimizerSpec):
        raise ValueError(f"optimizer must be a lrsearch.optim.OptimizerSpec or None but got {type(spec).__name__}.")
    torch.manual_seed(seed)
    model = task.model_fn().to(device)
    optimizer = task.optimizer_fn(model.parameters()) if spec is None else spec.build(
        model, lr=schedule.lr, groups=task.groups)
    return model, schedule_free(optimizer) if schedule.spec_family.schedule_free else optimizer


def _train(task: Task, schedule: Schedule, device: torch.device, on_eval: Callable[[int, float], None] | None,
           seed: int, total_steps: int | None, spec: OptimizerSpec | None) -> TrainResult:
    model, optimizer = new_run(task, device, seed, schedule, spec)
    train_batches = task.batches(task.train_data, device, shuffle=True, seed=seed)
    val_batches = task.batches(task.val_data, device, shuffle=False, seed=seed)
    acc = task.accumulation_steps
    total = task.full_steps() if total_steps is None else check_int("total_steps", total_steps, low=1)
    evals = task.eval_steps(total)
    scheduler = schedule.build(optimizer, total)
    averager = Averager.of(schedule, model, total, lambda: (  # inputs for update_bn, unshuffled
        to_device(unpack(b, None)[0], device) for b in task.batches(task.train_data, device, shuffle=False, seed=seed)))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(task.amp or "")
    scaler = torch.amp.GradScaler(device.type) if task.amp == "fp16" else None

    def autocast() -> Any:
        return torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()

    values: list[float] = []
    steps = 0
    model.train()
    while steps < total:  # passes over the data until the run's optimizer steps are done
        n, before = length_of(train_batches), steps
        for i, batch in enumerate(train_batches):
            inputs, target = unpack(batch, None)
            inputs, target = to_device(inputs, device), to_device(target, device)
            with autocast():
                loss = task.loss_fn(model(inputs), target)
            loss = loss / acc if acc > 1 else loss
            (scaler.scale(loss) if scaler else loss).backward()
            if (i + 1) % acc and (n is None or i != n - 1):
                continue  # accumulate: the optimizer steps on the last micro-batch of a group
            if task.clip_grad_norm is not None:
                if scaler:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), task.clip_grad_norm)
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()  # once per optimizer step: the schedule's clock is in optimizer steps
            if averager is not None:
                averager.step(steps)
            steps += 1
            while len(values) < len(evals) and steps == evals[len(values)]:
                judged = model if averager is None else averager.model()
                _mode(optimizer, train=False)  # a Schedule-Free run is judged at its average
                value = float(eval_mean(judged, val_batches, task.metric or task.loss_fn, device, autocast=autocast))
                _mode(optimizer, train=steps < total)
                values.append(value)
                if scheduler.accepts_metric and math.isfinite(value):
                    scheduler.step(value)  # the plateau family's LR reduction
                if on_eval is not None:
                    on_eval(len(values) - 1, value)
            if steps == total:
                break
        if steps < total and (n is None or steps == before):  # a stream is read once; a pass must step
            raise ValueError(f"train_data must yield batches for the run's {total} optimizer steps "
                             f"(Task.steps, accumulation_steps={acc}) but ran out after {steps}.")
    _mode(optimizer, train=False)  # the weights a Schedule-Free run returns are its average
    return TrainResult(values, steps, str(device), model if averager is None else averager.model())


def _mode(optimizer: torch.optim.Optimizer, train: bool) -> None:
    """Switch a Schedule-Free optimizer's parameters between ``y`` (train) and the average (eval)."""
    if isinstance(optimizer, ScheduleFree):
        optimizer.train() if train else optimizer.eval()
