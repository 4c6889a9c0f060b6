"""A trial across the processes of a ``torch.distributed`` job (``torchrun``, DDP).

Rank 0 alone talks to Optuna and its storage; every other rank follows. ``DistributedTrial`` is a
trial on every rank whose ``suggest_*``, ``report``, ``should_prune``, ``set_user_attr``,
``user_attrs``, ``params``, ``number``, ... are answered by rank 0 and broadcast (one
``broadcast_object_list`` per call, the pattern of optuna-integration's ``TorchDistributedTrial``),
so ``suggest_schedule``, ``run_length``, ``suggest_optimizer`` and ``report`` run unchanged on
every rank and raise ``optuna.TrialPruned`` on every rank together. ``optimize_distributed`` is
the loop around it: rank 0 runs the search, the other ranks run the same objective on each trial
rank 0 starts, until it says it is done.

Every rank must make the same trial calls in the same order (the objective's code path may only
depend on what the trial returns); a rank asking for another parameter than rank 0 raises a
``RuntimeError`` naming both. An error raised by rank 0 inside a trial call is raised on every rank.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import optuna
import torch.distributed as dist

from lrsearch.search._optim_space import check_groups_cover
from lrsearch.search._optimize import optimize
from lrsearch.search._optimize import task_objective
from lrsearch.search._result import SearchResult
from lrsearch.search._space import _current
from lrsearch.training import Task

_SHARED = "_lrsearch_on_every_rank"  # set on an exception every rank raised together


def _rank(group: Any) -> int:
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("DistributedTrial needs an initialised torch.distributed process group "
                         "(torch.distributed.init_process_group) but there is none.")
    return dist.get_rank(group)


def _broadcast(obj: Any, group: Any) -> Any:
    """Rank 0's ``obj`` on every rank of ``group``."""
    box = [obj]
    dist.broadcast_object_list(box, src=dist.get_global_rank(group, 0) if group is not None else 0, group=group)
    return box[0]


# the errors that travel between ranks as themselves; any other travels as a RuntimeError with its text
_ERRORS = {e.__name__: e for e in (optuna.TrialPruned, ValueError, RuntimeError, TypeError, KeyError,
                                   IndexError, ZeroDivisionError, FloatingPointError, OverflowError)}


def _portable(err: Exception) -> tuple[str, str]:
    """``err`` as plain data (its type's name and its message): ranks exchange data, never code."""
    return type(err).__name__, str(err.args[0]) if len(err.args) == 1 else str(err)


def _rebuilt(data: tuple[str, str]) -> Exception:
    name, message = data
    kind = _ERRORS.get(name)
    return kind(message) if kind is not None else RuntimeError(f"{name}: {message}")


class RankZeroPruner:
    """Stands for rank 0's pruner on the other ranks: rank 0 decides, and stores its reason."""


class _PeerStudy:
    """``trial.study`` on a rank > 0: rank 0 holds the study and its storage."""

    pruner = RankZeroPruner()
    storage = None


class DistributedTrial(optuna.trial.BaseTrial):
    """A trial on every rank of a ``torch.distributed`` job, answered by rank 0.

    Rank 0 wraps the real trial, the other ranks pass ``None``; every call is then a collective:
    rank 0 runs it on its trial and broadcasts the answer (or its error). ``lrsearch.report``
    uses rank 0's value on every rank, so a metric that differs between ranks (each rank
    evaluating its own shard) cannot split the ranks' pruning decisions.

    Example (``torchrun --nproc_per_node 2 train.py``; see ``optimize_distributed``):
        >>> trial = lrsearch.DistributedTrial(trial if dist.get_rank() == 0 else None)
        >>> schedule = lrsearch.suggest_schedule(trial)      # the same schedule on every rank

    Args:
        trial: The Optuna trial on rank 0; ``None`` on the other ranks.
        group: The process group (default: the default group). Broadcasting objects over NCCL
            needs ``torch.cuda.set_device`` on each rank; a gloo group avoids it.
    """

    def __init__(self, trial: optuna.trial.BaseTrial | None, group: Any = None) -> None:
        self._group = group
        self._rank = _rank(group)
        if self._rank == 0 and not isinstance(trial, optuna.trial.BaseTrial):
            raise ValueError(f"trial must be an optuna trial on rank 0 but got {type(trial).__name__}.")
        if self._rank != 0 and trial is not None:
            raise ValueError(f"trial must be None on rank {self._rank} (rank 0 holds the trial) "
                             f"but got {type(trial).__name__}.")
        self._delegate = trial

    # ------------------------------------------------------------------ the one collective
    def _call(self, what: str, func: Callable[[optuna.trial.BaseTrial], Any]) -> Any:
        """Run ``func`` on rank 0's trial; every rank gets its answer or raises its error."""
        if self._rank == 0:
            try:
                answer: tuple[str, str, Any] = (what, "ok", func(self._delegate))  # type: ignore[arg-type]
            except Exception as err:  # every rank raises it
                setattr(err, _SHARED, True)
                _broadcast((what, "error", _portable(err)), self._group)
                raise
            _broadcast(answer, self._group)
            return answer[2]
        asked, status, value = _broadcast(None, self._group)
        if asked != what:
            raise RuntimeError(f"the ranks' trial calls diverged: rank 0 called {asked} where rank {self._rank} "
                               f"called {what}; every rank must make the same trial calls in the same order.")
        if status == "error":
            err = _rebuilt(value)
            setattr(err, _SHARED, True)
            raise err
        return value

    def shared(self, value: float) -> float:
        """Rank 0's ``value`` on every rank (``lrsearch.report`` decides on it)."""
        return self._call("shared", lambda _: float(value))

    # ------------------------------------------------------------------ suggestions
    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float:
        return self._call(f"suggest_float({name!r})", lambda t: t.suggest_float(name, low, high, step=step, log=log))

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return self._call(f"suggest_int({name!r})", lambda t: t.suggest_int(name, low, high, step=step, log=log))

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        return self._call(f"suggest_categorical({name!r})", lambda t: t.suggest_categorical(name, choices))

    def suggest_uniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high)

    def suggest_loguniform(self, name: str, low: float, high: float) -> float:
        return self.suggest_float(name, low, high, log=True)

    def suggest_discrete_uniform(self, name: str, low: float, high: float, q: float) -> float:
        return self.suggest_float(name, low, high, step=q)

    # ------------------------------------------------------------------ reports and pruning
    def report(self, value: float, step: int) -> None:
        self._call(f"report({step})", lambda t: t.report(value, step))

    def should_prune(self) -> bool:
        return bool(self._call("should_prune", lambda t: t.should_prune()))

    def set_user_attr(self, key: str, value: Any) -> None:
        self._call(f"set_user_attr({key!r})", lambda t: t.set_user_attr(key, value))

    def set_constraint(self, constraint: Sequence[float]) -> None:
        self._call("set_constraint", lambda t: t.set_constraint(constraint))

    # ------------------------------------------------------------------ what the trial holds
    @property
    def number(self) -> int:
        return self._call("number", lambda t: t.number)

    @property
    def params(self) -> dict[str, Any]:
        return self._call("params", lambda t: dict(t.params))

    @property
    def distributions(self) -> dict[str, Any]:
        return self._call("distributions", lambda t: dict(t.distributions))

    @property
    def user_attrs(self) -> dict[str, Any]:
        return self._call("user_attrs", lambda t: dict(t.user_attrs))

    @property
    def datetime_start(self) -> datetime.datetime | None:
        return self._call("datetime_start", lambda t: t.datetime_start)

    @property
    def study(self) -> Any:
        """Rank 0's study on rank 0; elsewhere a stand-in without storage or pruner (no collective)."""
        return self._delegate.study if self._rank == 0 else _PeerStudy()  # type: ignore[union-attr]


def optimize_distributed(
    objective: Callable[[optuna.trial.BaseTrial], float] | None = None,
    *,
    task: Task | None = None,
    group: Any = None,
    **options: Any,
) -> SearchResult | None:
    """Search with an objective that trains across the ranks of a ``torch.distributed`` job.

    Every rank calls it with the same objective (or ``Task``, trained by the reference loop: its
    ``model_fn`` returns the DDP model, its data is the rank's shard). Rank 0 runs ``lrsearch.search.optimize(objective,
    **options)`` (it alone opens the storage) and calls the objective with a ``DistributedTrial``
    of each trial; the other ranks ignore ``options``, receive each trial rank 0 starts (and its
    search space, so ``suggest_schedule`` samples the same parameters) and call the objective with
    their ``DistributedTrial``, until rank 0's search ends. A pruned trial is pruned on every rank.

    Example (``torchrun --nproc_per_node 2 search.py``):
        >>> def objective(trial):          # runs on every rank, with a DDP model
        ...     schedule = lrsearch.suggest_schedule(trial)
        ...     steps = lrsearch.run_length(trial, total_steps)
        ...     ...                        # train, lrsearch.report(trial, value, i, n_evals=n)
        ...     return value
        >>> result = lrsearch.optimize_distributed(objective, n_trials=20, storage="studies/ddp.db")

    Returns:
        The ``SearchResult`` on rank 0, ``None`` on the other ranks. Like ``lrsearch.search.optimize``
        it records no dashboard artifacts unless given ``recorder=`` (e.g.
        ``lrsearch.reports.DashboardRecorder("studies/artifacts")``).

    An error rank 0's search raises between trials, or that every rank raised together, ends
    every rank (a ``RuntimeError`` on the others); an error on one rank only, in the middle of a
    trial, leaves the others waiting in a collective: ``torchrun`` then stops the job.
    """
    if (objective is None) == (task is None):
        raise ValueError("optimize_distributed needs exactly one of objective or task.")
    if options.get("n_jobs", 1) != 1:
        raise ValueError(f"n_jobs must be 1 across ranks (the ranks train one trial at a time together) "
                         f"but got {options['n_jobs']!r}.")
    if options.get("population") is not None:
        raise ValueError(f"population must be None across ranks (each trial is one DDP run) "
                         f"but got {options['population']!r}.")
    if task is not None:
        if not isinstance(task, Task):
            raise ValueError(f"task must be a lrsearch.Task but got {type(task).__name__}.")
        space = options.get("space")
        check_groups_cover(space.optimizer if space is not None else None, task.groups)
        options.setdefault("direction", task.direction)
        objective = task_objective(task, options.get("seed", 0))
    if not callable(objective):
        raise ValueError(f"objective must be callable but got {objective!r}.")
    if _rank(group) != 0:
        return _follow(objective, group)
    aligned = [True]  # False while a trial runs: the other ranks may be inside a collective

    def on_rank_zero(trial: optuna.trial.Trial) -> float:
        _broadcast(("trial", _current.get()), group)
        aligned[0] = False
        try:
            value = objective(DistributedTrial(trial, group))
        except BaseException as err:
            aligned[0] = isinstance(err, optuna.TrialPruned) or getattr(err, _SHARED, False)
            raise
        aligned[0] = True
        return value

    try:
        result = optimize(on_rank_zero, **options)
    except BaseException as err:
        if aligned[0]:
            _broadcast(("done", f"{type(err).__name__}: {err}"), group)
        raise
    if aligned[0]:  # not after a trial interrupted (Ctrl-C) half-way: torchrun stops every rank then
        _broadcast(("done", None), group)
    return result


def _follow(objective: Callable[[optuna.trial.BaseTrial], float], group: Any) -> None:
    """A rank > 0: run the objective on every trial rank 0 starts, until it is done."""
    while True:
        kind, payload = _broadcast(None, group)
        if kind == "done":
            if payload is not None:
                raise RuntimeError(f"rank 0's search stopped with {payload}")
            return
        token = _current.set(payload)  # rank 0's search space
        try:
            objective(DistributedTrial(None, group))
        except optuna.TrialPruned:
            pass  # rank 0 pruned it too
        except Exception as err:
            if not getattr(err, _SHARED, False):
                raise  # this rank alone failed
        finally:
            _current.reset(token)
