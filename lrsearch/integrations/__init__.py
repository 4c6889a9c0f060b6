"""Integrations with training frameworks, one module each, imported explicitly:

- ``lrsearch.integrations.lightning``: ``LRSearchCallback`` for ``lightning.pytorch.Trainer`` and
  ``lr_find`` on a ``LightningModule`` (``pip install 'lrsearch[lightning]'``);
- ``lrsearch.integrations.transformers``: ``LRSearchCallback`` for the Hugging Face ``Trainer`` and
  ``hp_space`` for ``Trainer.hyperparameter_search`` (``pip install 'lrsearch[transformers]'``).

This package imports neither framework; each module imports its own when it is imported.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ``ImportError`` that says which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"lrsearch.integrations.{extra} needs the {module!r} package, which is not installed: "
            f"pip install 'lrsearch[{extra}]'"
        ) from exc


def build_for_trial(trial: Any, schedule: Any, optimizer: Any, full_steps: Any) -> tuple[Any, int]:
    """The trial's schedule (``schedule``, else ``suggest_schedule(trial)``) built on ``optimizer``
    for this trial's run length (``run_length(trial, full_steps)``): ``(ScheduleLR, run_steps)``."""
    from lrsearch.schedules import Schedule
    from lrsearch.search import run_length
    from lrsearch.search import suggest_schedule

    if schedule is not None and not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a lrsearch.Schedule or None but got {type(schedule).__name__}.")
    if not isinstance(full_steps, int) or isinstance(full_steps, bool) or full_steps < 1:
        raise ValueError(
            f"total_steps must be a finite number of optimizer steps >= 1 but the trainer estimates "
            f"{full_steps!r}; set max_steps (an iterable dataset without a length has no step count)."
        )
    if schedule is None:
        schedule = suggest_schedule(trial)
    elif "schedule" not in trial.user_attrs:
        trial.set_user_attr("schedule", schedule.to_dict())
    run_steps = run_length(trial, full_steps)
    return schedule.build(optimizer, total_steps=run_steps), run_steps


def averager_for(scheduler: Any, module: Any, bn_inputs: Any) -> Any:
    """The averaged model of the scheduler's schedule's tail (SWA or EMA) over the trial's run, kept
    on ``module``; ``None`` when the schedule has no tail. ``bn_inputs()`` gives the input batches
    ``update_bn`` runs on (an SWA of a model with BatchNorm)."""
    from lrsearch.training import Averager

    return Averager.of(scheduler.schedule, module, scheduler.total_steps, bn_inputs)
