"""The reference training loop: a ``Task`` (model factory, data, loss, metric) trained under a
``Schedule``. It knows nothing of Optuna: ``on_eval(step, value)`` is the only link out.

Read top to bottom like minGPT's ``Trainer.run``: the schedule is stepped once per optimizer step;
evaluation runs once per epoch and is the only place the host waits for the device (``float``).
In-memory tensors are sliced on the device (``TensorBatches``), other loaders are moved batch by
batch with ``non_blocking=True`` (pin their memory for truly asynchronous copies).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch

from lrsearch.training._averaging import Averager
from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch._checks import show
from lrsearch.training._data import TensorBatches
from lrsearch.training._data import check_device
from lrsearch.training._data import eval_mean
from lrsearch.training._data import to_device
from lrsearch.training._threads import training_threads
from lrsearch.optim import OptimizerSpec
from lrsearch.optim._groups import check_groups
from lrsearch.training._data import unpack
from lrsearch.schedules import Schedule


def _tensor_pair(data: Any) -> bool:
    """``(inputs, targets)`` tensors, batched on the device by ``TensorBatches``."""
    return isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data)


def _check_data(name: str, data: Any) -> None:
    """``(inputs, targets)`` tensors of one length, or a re-iterable of batches whose first one is
    ``(inputs, targets)`` (or an ``{"image", "label"}`` dict)."""
    if isinstance(data, (tuple, list)) and data and all(isinstance(t, torch.Tensor) for t in data):
        if len(data) != 2 or data[0].dim() == 0 or data[1].dim() == 0 or len(data[0]) != len(data[1]) \
                or len(data[0]) == 0:
            shapes = [tuple(t.shape) for t in data][:4]
            raise ValueError(f"{name} must be an (inputs, targets) pair of tensors with one non-zero length "
                             f"but got {len(data)} tensor(s) of shapes {shapes}.")
        return
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Iterable) or iter(data) is data:
        raise ValueError(f"{name} must be (inputs, targets) tensors or a re-iterable of batches (a DataLoader, "
                         f"a list) but got {type(data).__name__}.")
    if isinstance(data, Sequence) and data:
        try:
            unpack(data[0], None)
        except ValueError:
            raise ValueError(f"{name}'s batches must be (inputs, targets) pairs or dicts with 'image' and 'label' "
                             f"keys but the first is a {type(data[0]).__name__}.") from None


def _adamw(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3)


@dataclass
class Task:
    """A training job whose LR schedule is to be searched.

    Args:
        model_fn: Builds a fresh model (called once per trial).
        train_data, val_data: ``(inputs, targets)`` tensors (batched on the device, no per-sample
            DataLoader) or any re-iterable of batches.
        loss_fn: ``loss_fn(model(inputs), targets)``, a scalar tensor.
        metric: ``metric(outputs, targets)`` averaged over the validation set (a batch mean);
            ``None`` means the validation loss.
        epochs: Evaluations, one per epoch; the schedule spans them all.
        optimizer_fn: Builds the optimizer from the parameters; its default LR is replaced by the
            schedule's peak (param groups keep their ratios). Default: AdamW.
        batch_size: For tensor data.
        direction: ``"minimize"`` or ``"maximize"`` the metric.
        device: ``"auto"`` (CUDA when present), or any torch device.
        amp: ``None``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 with a GradScaler).
        accumulation_steps: Micro-batches per optimizer step.
        clip_grad_norm: Clip the gradient norm to this value (after unscaling), if set.
        groups: Named layer groups, ``{name: fnmatch pattern(s) over parameter names}`` (see
            ``lrsearch.optim.param_groups``), for an ``OptimizerSpec``'s per-group LR ratios (a
            searched ``group_ratio.<name>``); unused by ``optimizer_fn``.
        threads: CPU threads for training; ``None`` follows the rule in ``lrsearch.training._threads``
            (``$LRSEARCH_THREADS``, else ``$OMP_NUM_THREADS``, else half the cores, 1 to 4), ``0``
            leaves torch's setting alone. Only CPU runs are affected.
    """

    model_fn: Callable[[], torch.nn.Module]
    train_data: Any
    val_data: Any
    loss_fn: Callable[[Any, Any], torch.Tensor]
    metric: Callable[[Any, Any], Any] | None = None
    epochs: int = 10
    optimizer_fn: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer] = field(default=_adamw)
    batch_size: int = 64
    direction: str = "minimize"
    device: str | torch.device = "auto"
    amp: str | None = None
    accumulation_steps: int = 1
    clip_grad_norm: float | None = None
    threads: int | None = None
    groups: Mapping[str, str | Sequence[str]] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.model_fn, torch.nn.Module):
            raise ValueError(f"model_fn must build a fresh model for each trial (a class or a function, e.g. "
                             f"lambda: Net()) but got a model, {type(self.model_fn).__name__}: pass its class.")
        for name in ("model_fn", "loss_fn", "optimizer_fn"):
            if not callable(getattr(self, name)):
                raise ValueError(f"{name} must be callable but got {show(getattr(self, name))}.")
        if self.metric is not None and not callable(self.metric):
            raise ValueError(f"metric must be callable or None but got {show(self.metric)}.")
        self.epochs = check_int("epochs", self.epochs, low=1)
        self.batch_size = check_int("batch_size", self.batch_size, low=1)
        self.accumulation_steps = check_int("accumulation_steps", self.accumulation_steps, low=1)
        check_choice("direction", self.direction, ("minimize", "maximize"))
        check_choice("amp", self.amp, (None, "bf16", "fp16"))
        if not (isinstance(self.device, str) and self.device == "auto"):
            check_device("device", self.device)
        if self.clip_grad_norm is not None and check_float("clip_grad_norm", self.clip_grad_norm) <= 0:
            raise ValueError(f"clip_grad_norm must be > 0 but got {self.clip_grad_norm!r}.")
        if self.threads is not None:
            self.threads = check_int("threads", self.threads, low=0)
        if self.groups is not None:
            self.groups = check_groups(self.groups)
        if self.direction == "maximize" and self.metric is None:
            raise ValueError("direction must be 'minimize' when metric is None (the validation loss).")
        _check_data("train_data", self.train_data)  # last: the scalar rules above read better first
        _check_data("val_data", self.val_data)

    def resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training data (accumulation counted)."""
        data = self.train_data
        if _tensor_pair(data):
            n = -(-int(data[0].shape[0]) // self.batch_size)
        else:
            try:
                n = len(data)
            except TypeError:
                raise ValueError("train_data must have a length (tensors, a DataLoader or a list of batches) "
                                 f"to count a run's optimizer steps but got {type(data).__name__}.") from None
        return max(1, math.ceil(n / self.accumulation_steps))

    def full_steps(self) -> int:
        """Optimizer steps of a full-length run: ``epochs * steps_per_epoch()``."""
        return self.epochs * self.steps_per_epoch()

    def batches(self, data: Any, device: torch.device, *, shuffle: bool, seed: int) -> Any:
        if _tensor_pair(data):
            return TensorBatches(*data, batch_size=self.batch_size, shuffle=shuffle, seed=seed, device=device)
        return data


@dataclass
class TrainResult:
    """What ``train`` did: the metric per epoch, optimizer steps, the device, the trained model
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

    A full run is ``task.epochs`` passes with an evaluation after each. With ``total_steps`` the
    run trains that many optimizer steps instead (a short run for a multi-fidelity search: the
    schedule spans exactly those steps, its decay included) and still evaluates ``task.epochs``
    times, evenly spaced, so runs of every length are judged at the same fractions.

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
    if spec is None:
        return model, task.optimizer_fn(model.parameters())
    return model, spec.build(model, lr=schedule.lr, groups=task.groups)


def eval_steps(total: int, n_evals: int) -> list[int]:
    """The optimizer steps (counted from 1) after which a ``total``-step run evaluates: ``n_evals``
    of them, evenly spaced, the last at ``total``."""
    return [max(1, round((k + 1) * total / n_evals)) for k in range(n_evals)]


def _train(task: Task, schedule: Schedule, device: torch.device, on_eval: Callable[[int, float], None] | None,
           seed: int, total_steps: int | None, spec: OptimizerSpec | None) -> TrainResult:
    model, optimizer = new_run(task, device, seed, schedule, spec)
    train_batches = task.batches(task.train_data, device, shuffle=True, seed=seed)
    val_batches = task.batches(task.val_data, device, shuffle=False, seed=seed)
    acc = task.accumulation_steps
    per_epoch = math.ceil(len(train_batches) / acc)
    total = task.epochs * per_epoch if total_steps is None else check_int("total_steps", total_steps, low=1)
    evals = eval_steps(total, task.epochs)
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
        n = len(train_batches)
        for i, batch in enumerate(train_batches):
            inputs, target = unpack(batch, None)
            inputs, target = to_device(inputs, device), to_device(target, device)
            with autocast():
                loss = task.loss_fn(model(inputs), target)
            loss = loss / acc if acc > 1 else loss
            (scaler.scale(loss) if scaler else loss).backward()
            if (i + 1) % acc and i != n - 1:
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
                value = float(eval_mean(judged, val_batches, task.metric or task.loss_fn, device, autocast=autocast))
                values.append(value)
                if scheduler.accepts_metric and math.isfinite(value):
                    scheduler.step(value)  # the plateau family's LR reduction
                if on_eval is not None:
                    on_eval(len(values) - 1, value)
            if steps == total:
                break
    return TrainResult(values, steps, str(device), model if averager is None else averager.model())
