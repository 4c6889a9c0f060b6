"""The ``report`` hook: what a training loop calls after each evaluation (the reference loop calls it
for you). It hands the value to the trial, steps a plateau schedule's LR reduction, and raises
``optuna.TrialPruned`` when the pruner says so. A non-finite metric prunes at once; the reason is
kept as the user attr ``prune_reason`` (Optuna 5 keeps no failure reasons). ``evaluation_steps``
says where a step-counting loop evaluates.
"""

from __future__ import annotations

import math
from typing import Any

import optuna

from lrsearch._checks import check_int
from lrsearch.search.storage import flush
from lrsearch.search.storage import set_user_attrs


def report(
    trial: optuna.trial.Trial,
    value: float,
    step: int,
    *,
    scheduler: Any = None,
    n_evals: int | None = None,
) -> None:
    """Report one evaluation of ``trial``; raise ``optuna.TrialPruned`` if it should stop.

    Args:
        trial: The running trial.
        value: The evaluation metric (the study's objective direction applies).
        step: The evaluation's index, from 0.
        scheduler: The run's ``ScheduleLR``; a plateau schedule takes ``step(value)``.
        n_evals: How many evaluations the run has; lets the pruners see where in its schedule the
            trial is (stored once as the user attr ``n_evals``), and the last one is never pruned.
    """
    step = check_int("step", step, low=0)
    value = float(value)
    shared = getattr(trial, "shared", None)
    if callable(shared):  # a lrsearch.DistributedTrial: every rank decides on rank 0's value
        value = shared(value)
    known = trial.user_attrs.get("n_evals")  # one read: each is a deep copy of the trial's attrs
    if n_evals is not None and known is None:
        known = check_int("n_evals", n_evals, low=1)
        set_user_attrs(trial, {"n_evals": known})
    if not math.isfinite(value):
        reason = f"non-finite metric {value} at step {step}"
        set_user_attrs(trial, {"prune_reason": reason})
        raise optuna.TrialPruned(reason)
    flush(trial)  # attrs held inside optimize (schedule, run length, n_evals): the pruners read them
    trial.report(value, step)
    if scheduler is not None and getattr(scheduler, "accepts_metric", False):
        scheduler.step(value)
    n_evals = known
    if isinstance(n_evals, int) and step >= n_evals - 1:
        return  # the run has finished: a trial is never pruned at its last evaluation
    if trial.should_prune():
        pruner = trial.study.pruner
        reason = getattr(pruner, "reasons", {}).pop(trial.number, None) or (
            f"{type(pruner).__name__}: pruned at evaluation {step + 1}"
            + (f"/{n_evals}" if isinstance(n_evals, int) else "") + f" with value {value:.6g}")
        set_user_attrs(trial, {"prune_reason": reason})
        raise optuna.TrialPruned(reason)


def evaluation_steps(total_steps: int, n_evals: int) -> list[int]:
    """The optimizer steps (counted from 1) after which a ``total_steps``-step run evaluates
    ``n_evals`` times, evenly spaced, the last one at ``total_steps``: where ``lrsearch.train``
    evaluates and where the study's loss law places a trial's reported values.

    Example:
        >>> lrsearch.evaluation_steps(59, 3)  # a 1/3-length run of 177 steps
        [20, 39, 59]
        >>> ends = lrsearch.evaluation_steps(steps, n_evals)
        >>> for step in range(1, steps + 1):
        ...     train_one_step(); scheduler.step()
        ...     if step in ends:
        ...         lrsearch.report(trial, validate(), ends.index(step), scheduler=scheduler, n_evals=n_evals)

    Args:
        total_steps: The run's optimizer steps (``lrsearch.run_length(trial, ...)``).
        n_evals: Evaluations in the run, at most ``total_steps``.
    """
    from lrsearch.training import eval_steps

    total_steps = check_int("total_steps", total_steps, low=1)
    n_evals = check_int("n_evals", n_evals, low=1)
    if n_evals > total_steps:
        raise ValueError(f"n_evals must be at most total_steps ({total_steps}) but got {n_evals}.")
    return eval_steps(total_steps, n_evals)
