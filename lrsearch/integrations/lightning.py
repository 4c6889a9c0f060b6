"""Lightning: a callback that drives the trainer's optimizer with the trial's schedule, reports the
monitored metric and prunes; and ``lr_find`` on a ``LightningModule``.

Example (an Optuna objective; ``configure_optimizers`` returns a plain optimizer)::

    def objective(trial):
        search = LRSearchCallback(trial, monitor="val_loss")
        lightning.Trainer(max_epochs=10, callbacks=[search]).fit(MyModule(), train_loader, val_loader)
        return search.value
    lrsearch.optimize(objective, seed_from=lr_find(MyModule(), train_loader))

The schedule's length is the trainer's own ``estimated_stepping_batches`` (optimizer steps, after
gradient accumulation, ``max_epochs`` and ``max_steps``); inside a multi-fidelity search a trial
trains ``lrsearch.run_length`` of it: the schedule is built for that many steps and the callback
stops the trainer there (with ``trainer.should_stop``, which also runs a last validation).

A schedule with an averaging ``tail`` (SWA or EMA): the callback keeps the averaged model
(``lrsearch.training._averaging``) from the tail's start, swaps its weights into the module for every
validation after its first update (so the reported metric is the averaged model's; checkpoints
written by ``ModelCheckpoint``, which runs after this callback, hold the live weights) and copies
them into the module for good at the end of training, as Lightning's ``StochasticWeightAveraging``
does. An SWA of a model with BatchNorm recomputes its statistics over the training loader, calling
``module(inputs)`` on each batch's first element.

Under Lightning's own DDP (``strategy="ddp"``, started by ``torchrun``) every rank runs the
objective with a ``lrsearch.DistributedTrial`` (``lrsearch.optimize_distributed`` hands it in):
rank 0's trial decides, every rank gets the same schedule and is pruned together (tested on CPU
with gloo, without an averaging tail).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

import optuna
import torch

from lrsearch.training import to_device
from lrsearch.training import unpack
from lrsearch.integrations import averager_for
from lrsearch.integrations import build_for_trial
from lrsearch.integrations import require


_pl = require("lightning.pytorch", "lightning")
_LOG_WARNING = r"You are trying to `self.log\(\)` but the `self.trainer` reference is not registered"


def count_evals(batches: float, accumulate: int, every_n_epochs: int | None, check_batch: float, steps: int) -> int:
    """Validations a Lightning run of ``steps`` optimizer steps makes, stopped at its last step.

    ``batches`` per epoch (``num_training_batches``), ``accumulate`` batches per optimizer step,
    validation every ``every_n_epochs`` epochs (``None``: every ``check_batch`` batches across
    epochs) at each ``check_batch``-th batch of the epoch; stopping through ``should_stop`` adds a
    validation at the last step when it falls between checks.
    """
    if not math.isfinite(batches) or not math.isfinite(check_batch) or batches < 1 or check_batch < 1:
        return 0
    batches, check_batch = int(batches), int(check_batch)
    per_epoch = math.ceil(batches / accumulate)
    full_epochs, rest = divmod(steps, per_epoch)
    if every_n_epochs is None:
        total = full_epochs * batches + min(batches, rest * accumulate)
        return total // check_batch + (total % check_batch > 0)
    n, epochs = 0, full_epochs + (rest > 0)
    for epoch in range(epochs):
        if (epoch + 1) % every_n_epochs == 0:
            seen = batches if epoch < full_epochs else min(batches, rest * accumulate)
            n += seen // check_batch + (epoch == epochs - 1 and seen % check_batch > 0)
    return n


class LRSearchCallback(_pl.Callback):
    """Run a Lightning ``fit`` as one trial: the trial's schedule, its run length, reports, pruning.

    On fit start it builds ``schedule`` (default: ``lrsearch.suggest_schedule(trial)``) on the
    trainer's single optimizer for ``lrsearch.run_length(trial, trainer.estimated_stepping_batches)``
    steps and steps it after every optimizer step (``trainer.global_step``); it stops the trainer
    when that many steps are done. After each validation (not the sanity check) it reports
    ``trainer.callback_metrics[monitor]`` through ``lrsearch.report`` (evaluation 0, 1, ...), which
    raises ``optuna.TrialPruned`` when the study's pruner says so; the exception leaves
    ``trainer.fit`` as Lightning lets exceptions through (after its ``on_exception`` hooks).

    Args:
        trial: The running Optuna trial.
        monitor: The logged metric to report (``self.log("val_loss", ...)`` in ``validation_step``).
        schedule: A fixed ``Schedule`` instead of sampling one.
        n_evals: Validations in the run; default: counted from the trainer's settings at fit start.

    Attributes:
        scheduler: The ``ScheduleLR`` (after fit start). ``run_steps``: the steps this trial trains.
        averager: The ``Averager`` of the schedule's tail (``None`` without one); its ``model()``
            is the averaged model.
        value: The last reported value (``None`` before the first validation); an objective's result.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str = "val_loss", schedule: Any = None,
                 n_evals: int | None = None) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise ValueError(f"monitor must be a non-empty metric name but got {monitor!r}.")
        if n_evals is not None and (not isinstance(n_evals, int) or isinstance(n_evals, bool) or n_evals < 1):
            raise ValueError(f"n_evals must be an int >= 1 or None but got {n_evals!r}.")
        self.trial, self.monitor, self.schedule, self.n_evals = trial, monitor, schedule, n_evals
        self.scheduler: Any = None
        self.averager: Any = None
        self.run_steps = 0
        self.value: float | None = None
        self._evals = 0

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if len(trainer.optimizers) != 1:
            raise ValueError(f"configure_optimizers must return exactly one optimizer for LRSearchCallback "
                             f"but returned {len(trainer.optimizers)}.")
        if trainer.lr_scheduler_configs:
            raise ValueError("configure_optimizers must return no LR scheduler when LRSearchCallback sets "
                             f"the schedule but returned {len(trainer.lr_scheduler_configs)}.")
        full = trainer.estimated_stepping_batches
        self.scheduler, self.run_steps = build_for_trial(
            self.trial, self.schedule, trainer.optimizers[0], int(full) if math.isfinite(full) else full)
        if self.n_evals is None:
            counted = count_evals(trainer.num_training_batches, trainer.accumulate_grad_batches,
                                  trainer.check_val_every_n_epoch, trainer.val_check_batch, self.run_steps)
            self.n_evals = counted or None
        self._evals = 0
        self.averager = averager_for(self.scheduler, pl_module, lambda: (
            to_device(unpack(b, None)[0], pl_module.device) for b in trainer.train_dataloader))

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        # one scheduler step per optimizer step taken (none while gradients accumulate)
        while self.scheduler.last_epoch < min(trainer.global_step, self.run_steps):
            self.scheduler.step()
            if self.averager is not None:
                self.averager.step(self.scheduler.last_epoch - 1)
        if trainer.global_step >= self.run_steps:
            trainer.should_stop = True

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if self.averager is not None and not trainer.sanity_checking:
            self.averager.swap_in()  # validate the averaged weights (after its first update)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self.averager is not None:
            self.averager.swap_out()
        if trainer.sanity_checking:
            return
        if self.monitor not in trainer.callback_metrics:
            raise ValueError(f"monitor must be a metric the module logs but {self.monitor!r} is not among "
                             f"the trainer's callback_metrics {sorted(trainer.callback_metrics)}.")
        self.value = float(trainer.callback_metrics[self.monitor])
        step, self._evals = self._evals, self._evals + 1
        from lrsearch.search import report

        report(self.trial, self.value, step, scheduler=self.scheduler, n_evals=self.n_evals)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.averager is not None:
            self.averager.load_into_live()  # the fitted module is the averaged model


def optimizer_of(configured: Any) -> torch.optim.Optimizer:
    """The single optimizer in any of ``configure_optimizers``' return forms (schedulers dropped)."""
    found = configured
    if isinstance(found, Mapping):
        found = found.get("optimizer")
    elif isinstance(found, (list, tuple)) and len(found) == 2 and isinstance(found[0], (list, tuple)):
        found = found[0]  # ([optimizers], [schedulers])
    if isinstance(found, (list, tuple)):
        found = [f.get("optimizer") if isinstance(f, Mapping) else f for f in found]
        found = found[0] if len(found) == 1 else found
    if not isinstance(found, torch.optim.Optimizer):
        raise ValueError("configure_optimizers must return one torch optimizer (alone, in a list, a dict or "
                         f"([optimizer], [scheduler])) for lr_find but returned {configured!r}.")
    for group in found.param_groups:  # a scheduler built on it may have moved the LRs from their base
        if "initial_lr" in group:
            group["lr"] = group.pop("initial_lr")
    return found


class _TrainingStep(torch.nn.Module):
    """``module.training_step`` as a model whose output is the loss (``lr_find``'s ``loss_fn`` reads it)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module
        self.batch_idx = 0

    def forward(self, batch: Any) -> torch.Tensor:
        with warnings.catch_warnings():  # self.log without a trainer: nothing to log to
            warnings.filterwarnings("ignore", message=_LOG_WARNING)
            out = self.module.training_step(batch, self.batch_idx)
        self.batch_idx += 1
        loss = out.get("loss") if isinstance(out, Mapping) else out
        if not isinstance(loss, torch.Tensor):
            raise ValueError("training_step must return the loss tensor or a dict with 'loss' for lr_find "
                             f"but returned {type(out).__name__}.")
        return loss


def lr_find(module: Any, train_dataloaders: Iterable[Any], **kwargs: Any) -> Any:
    """``lrsearch.lr_find`` on a ``LightningModule``: its own optimizer and loss, nothing changed.

    The optimizer is the one ``module.configure_optimizers()`` returns (any scheduler it returns is
    dropped and the LRs go back to their base); the loss of a batch is what
    ``module.training_step(batch, batch_idx)`` returns (the tensor, or its ``"loss"``; its
    ``self.log`` calls are ignored). The module's weights, buffers and modes are restored, as by
    ``lrsearch.lr_find``, whose keyword arguments (``num_iter``, ``end_lr``, ``verbose``, ...) pass
    through; ``device`` defaults to the module's.

    Example:
        >>> result = lr_find(MyModule(), train_loader, verbose=False)
        >>> result.search_range()
    """
    from lrsearch.rangetest import lr_find as _lr_find

    if not isinstance(module, _pl.LightningModule):
        raise ValueError(f"module must be a lightning.pytorch.LightningModule but got {type(module).__name__}.")
    if not module.automatic_optimization:
        raise ValueError("module.automatic_optimization must be True for lr_find (training_step must "
                         "return the loss) but it is False.")
    if "loss_fn" in kwargs or "batch_fn" in kwargs:
        raise ValueError(f"loss_fn and batch_fn come from module.training_step but got {sorted(kwargs)}.")
    optimizer = optimizer_of(module.configure_optimizers())
    return _lr_find(_TrainingStep(module), optimizer, lambda loss, _target: loss, train_dataloaders,
                    batch_fn=lambda batch: (batch, None), **kwargs)
