"""Hugging Face ``Trainer``: a callback that puts the trial's schedule on the trainer's own scheduler,
reports evaluations and prunes; and ``hp_space`` for ``Trainer.hyperparameter_search``.

Example (an Optuna objective for ``lrsearch.optimize``)::

    def objective(trial):
        search = LRSearchCallback(trial, metric="eval_loss")
        Trainer(model=make_model(), args=args, train_dataset=train, eval_dataset=val, callbacks=[search]).train()
        return search.value
    lrsearch.optimize(objective)

The schedule's length is the trainer's ``state.max_steps`` (optimizer steps, from
``num_train_epochs`` or ``max_steps``, after gradient accumulation); inside a multi-fidelity search a
trial trains ``lrsearch.run_length`` of it and the callback stops training there (with an evaluation).
The trainer keeps its scheduler object (so its logs, checkpoints and skipped-step handling stay its
own): every one of ``get_scheduler``'s types except ``reduce_lr_on_plateau`` is a ``LambdaLR``,
whose multipliers the callback replaces by the ``ScheduleLR`` of the trial's schedule.

A schedule with an averaging ``tail`` (SWA or EMA): the callback keeps the averaged model
(``lrsearch.training._averaging``) from the tail's start, copies its weights into the model when the
trainer is about to evaluate (``control.should_evaluate`` at a step's or an epoch's end) and puts the
live ones back when the evaluation is over (``on_evaluate``, before any checkpoint is written), so
reported metrics are the averaged model's and checkpoints hold the live weights (one eval dataset).
At the end of training the averaged weights go into the model for good (unless
``load_best_model_at_end``, whose choice stands). An SWA of a model with BatchNorm recomputes its
statistics over the training dataloader (``model(**batch)``). One process (no DeepSpeed/FSDP).
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import torch

from lrsearch.training import to_device
from lrsearch.integrations import averager_for
from lrsearch.integrations import build_for_trial
from lrsearch.integrations import require


_tf = require("transformers", "transformers")


def _strategy(value: Any) -> str:
    return str(getattr(value, "value", value))


class LRSearchCallback(_tf.TrainerCallback):
    """Run ``Trainer.train`` as one trial: the trial's schedule, its run length, reports, pruning.

    At train begin it builds ``schedule`` (default: ``lrsearch.suggest_schedule(trial)``) on the
    trainer's optimizer for ``lrsearch.run_length(trial, state.max_steps)`` steps and makes the
    trainer's scheduler follow it (LRs, and momentum for one-cycle); it stops training when that many
    steps are done. Each evaluation during training reports ``metrics[metric]`` through
    ``lrsearch.report`` (evaluation 0, 1, ...), which raises ``optuna.TrialPruned`` out of ``train``
    when the study's pruner says so. Evaluations after ``train`` returns are not reported.

    Inside ``Trainer.hyperparameter_search(backend="optuna", hp_space=search.hp_space)`` create it
    without a trial: ``hp_space`` samples the schedule on each trial (``learning_rate`` is set to its
    peak) and the Trainer itself reports and prunes, as it does for any hp search.

    Args:
        trial: The running Optuna trial (``None`` with ``hp_space``).
        metric: The evaluation metric to report (the Trainer prefixes ``eval_``).
        schedule: A fixed ``Schedule`` instead of sampling one.
        n_evals: Evaluations in the run; default: counted from ``eval_strategy`` and ``eval_steps``.
        space: The ``SearchSpace`` ``hp_space`` samples from (e.g. ``SearchSpace(lr=range_test_result)``).

    Attributes:
        scheduler: The ``ScheduleLR`` (after train begin). ``run_steps``: the steps this trial trains.
        averager: The ``Averager`` of the schedule's tail (``None`` without one).
        value: The last reported value (``None`` before the first evaluation); an objective's result.
    """

    def __init__(self, trial: optuna.trial.BaseTrial | None = None, metric: str = "eval_loss",
                 schedule: Any = None, n_evals: int | None = None, space: Any = None) -> None:
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric must be a non-empty metric name but got {metric!r}.")
        if n_evals is not None and (not isinstance(n_evals, int) or isinstance(n_evals, bool) or n_evals < 1):
            raise ValueError(f"n_evals must be an int >= 1 or None but got {n_evals!r}.")
        self.trial, self.metric, self.schedule, self._n_evals = trial, metric, schedule, n_evals
        self.space = space
        self.reports = trial is not None
        self.scheduler: Any = None
        self.averager: Any = None
        self.run_steps, self.n_evals = 0, n_evals
        self.value: float | None = None
        self._sampled: Any = None
        self._evals, self._training = 0, False

    def hp_space(self, trial: optuna.trial.BaseTrial) -> dict[str, float]:
        """``Trainer.hyperparameter_search``'s ``hp_space``: lrsearch's schedule space on ``trial``."""
        from lrsearch.search import suggest_schedule

        self.trial, self.reports = trial, False
        self._sampled = self.schedule if self.schedule is not None else suggest_schedule(trial, self.space)
        return {"learning_rate": self._sampled.lr}

    def on_train_begin(self, args: Any, state: Any, control: Any, optimizer: Any = None,
                       lr_scheduler: Any = None, train_dataloader: Any = None, **kwargs: Any) -> None:
        if self.trial is None:
            raise ValueError("trial must be an Optuna trial (or hp_space must have been called) but it is None.")
        if not isinstance(lr_scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise ValueError("lr_scheduler_type must be one of the Trainer's LambdaLR schedules (e.g. 'linear', "
                             f"'constant') for LRSearchCallback but the scheduler is {type(lr_scheduler).__name__}.")
        if min(lr_scheduler.base_lrs) <= 0:
            raise ValueError(f"learning_rate must be > 0 for LRSearchCallback but got {lr_scheduler.base_lrs}.")
        optimizer = getattr(optimizer, "optimizer", optimizer)  # accelerate's wrapper shares its param groups
        self.scheduler, self.run_steps = build_for_trial(
            self.trial, self._sampled if self._sampled is not None else self.schedule, optimizer, state.max_steps)
        lr_scheduler.lr_lambdas = [self._multiplier(g, base) for g, base in enumerate(lr_scheduler.base_lrs)]
        self.n_evals = self._n_evals or self._count_evals(args, state, train_dataloader) or None
        self._evals, self._training, self.value = 0, True, None
        model = kwargs.get("model")
        self.averager = None if model is None else averager_for(self.scheduler, model, lambda: (
            to_device(batch, next(model.parameters()).device) for batch in train_dataloader))

    def _multiplier(self, group: int, base: float) -> Any:
        def multiplier(step: int) -> float:  # a plain function: LambdaLR's state_dict leaves it out
            while self.scheduler.last_epoch < min(step, self.run_steps):
                self.scheduler.step()  # sets the group LRs (and momentum) of optimizer step `step`
            return self.scheduler.get_last_lr()[group] / base

        return multiplier

    def _count_evals(self, args: Any, state: Any, train_dataloader: Any) -> int:
        strategy = _strategy(getattr(args, "eval_strategy", "no"))
        if strategy == "steps" and state.eval_steps:
            return math.ceil(self.run_steps / state.eval_steps)
        if strategy == "epoch" and train_dataloader is not None and hasattr(train_dataloader, "__len__"):
            per_epoch = max(1, math.ceil(len(train_dataloader) / args.gradient_accumulation_steps))
            return math.ceil(self.run_steps / per_epoch)
        return 0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.averager is not None:
            self.averager.swap_out()  # never train on the averaged weights, whatever happened

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._training and state.global_step >= self.run_steps:
            control.should_training_stop = True
            if _strategy(getattr(args, "eval_strategy", "no")) == "steps":
                control.should_evaluate = True  # the run's last evaluation, at its last step
        if self.averager is not None and self._training:
            if state.global_step <= self.run_steps:
                self.averager.step(state.global_step - 1)
            if control.should_evaluate:
                self.averager.swap_in()

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.averager is not None and self._training and control.should_evaluate:
            self.averager.swap_in()

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None,
                    **kwargs: Any) -> None:
        if self.averager is not None:
            self.averager.swap_out()
        if not self._training or not self.reports:
            return
        if not metrics or self.metric not in metrics:
            raise ValueError(f"metric must be one the evaluation returns but {self.metric!r} is not among "
                             f"{sorted(metrics or {})}.")
        self.value = float(metrics[self.metric])
        step, self._evals = self._evals, self._evals + 1
        from lrsearch.search import report

        report(self.trial, self.value, step, scheduler=self.scheduler, n_evals=self.n_evals)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._training = False
        if self.averager is not None:
            self.averager.swap_out()
            if not getattr(args, "load_best_model_at_end", False):
                self.averager.load_into_live()  # the trained model is the averaged one
