"""``Task``: what the reference loop trains (a model factory, data, a loss, an optimizer factory, how
long and how often it evaluates), checked when it is built so that a bad task fails before any trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import torch

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch._checks import check_steps
from lrsearch._checks import show
from lrsearch.training._data import TensorBatches
from lrsearch.training._data import check_device
from lrsearch.training._data import length_of
from lrsearch.optim import check_groups
from lrsearch.training._data import unpack


def tensor_pair(data: Any) -> bool:
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
            DataLoader) or any re-iterable of batches. A ``train_data`` without a length (a
            DataLoader over an ``IterableDataset``) is a stream: each run reads it once from its
            start, for ``steps`` optimizer steps, and fails if it runs out first.
        loss_fn: ``loss_fn(model(inputs), targets)``, a scalar tensor.
        metric: ``metric(outputs, targets)`` averaged over the validation set (a batch mean);
            ``None`` means the validation loss.
        epochs: Evaluations, one per epoch; the schedule spans them all. With ``steps``: the number
            of evenly spaced evaluations (when ``eval_every`` is not set).
        steps: The full run's length in optimizer steps, instead of ``epochs`` passes over the data
            (required for a stream, which has no length to count passes by).
        eval_every: Evaluate after every ``eval_every`` optimizer steps and after the last, whatever
            the epochs: ``ceil(run_steps / eval_every)`` evaluations in a run.
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
    steps: int | None = None
    eval_every: int | None = None

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
        if self.steps is not None:
            self.steps = check_steps("steps", self.steps, low=1)
        if self.eval_every is not None:
            self.eval_every = check_int("eval_every", self.eval_every, low=1)
        _check_data("train_data", self.train_data)  # a one-shot iterator too: every run starts from its first batch
        if self.steps is None and not tensor_pair(self.train_data) and length_of(self.train_data) is None:
            raise ValueError(f"steps must be given when train_data has no length (a stream such as a "
                             f"DataLoader over an IterableDataset: {type(self.train_data).__name__}), "
                             "to know the run's optimizer steps, but got None.")
        _check_data("val_data", self.val_data)

    def resolve_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def steps_per_epoch(self) -> int:
        """Optimizer steps in one pass over the training data (accumulation counted)."""
        data = self.train_data
        if tensor_pair(data):
            n = -(-int(data[0].shape[0]) // self.batch_size)
        else:
            try:
                n = len(data)
            except TypeError:
                raise ValueError("train_data must have a length (tensors, a DataLoader or a list of batches) "
                                 f"to count a run's optimizer steps but got {type(data).__name__}.") from None
        return max(1, math.ceil(n / self.accumulation_steps))

    def full_steps(self) -> int:
        """Optimizer steps of a full-length run: ``steps``, else ``epochs * steps_per_epoch()``."""
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch()

    def eval_steps(self, total: int | None = None) -> list[int]:
        """The optimizer steps (from 1) after which a ``total``-step run (default: a full run)
        evaluates: every ``eval_every`` steps and the last, else ``epochs`` of them evenly spaced."""
        total = self.full_steps() if total is None else check_int("total", total, low=1)
        if self.eval_every is None:
            return eval_steps(total, self.epochs)
        return [*range(self.eval_every, total, self.eval_every), total]

    def batches(self, data: Any, device: torch.device, *, shuffle: bool, seed: int) -> Any:
        if tensor_pair(data):
            return TensorBatches(*data, batch_size=self.batch_size, shuffle=shuffle, seed=seed, device=device)
        return data


def eval_steps(total: int, n_evals: int) -> list[int]:
    """The optimizer steps (counted from 1) after which a ``total``-step run evaluates: ``n_evals``
    of them, evenly spaced, the last at ``total``."""
    return [max(1, round((k + 1) * total / n_evals)) for k in range(n_evals)]
