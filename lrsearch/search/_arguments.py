"""``optimize``'s argument checks beyond the obvious ones: each raises ``ValueError`` naming the
argument, the rule and the value before anything is written (the dashboard's artifacts folder is
the recorder's: ``lrsearch.reports.DashboardRecorder`` checks it when built and makes it when the
study starts, a user-named one as ``mkdir`` makes it).
"""

from __future__ import annotations

from typing import Any

import optuna

from lrsearch._checks import check_bool
from lrsearch._checks import check_int
from lrsearch._checks import check_names
from lrsearch._checks import check_positive
from lrsearch._checks import show
from lrsearch.search._fidelity import FULL_ONLY
from lrsearch.search._fidelity import Rungs
from lrsearch.search._space import SearchSpace
from lrsearch.training import Task


#: Below this budget (full runs) the default rungs screen at ``SMALL_RUNGS``: with the range test
#: charged, ``Rungs()`` (1/3, then the full run) has room for one candidate beside the full run at
#: B=2, ``SMALL_RUNGS`` for four; on the held-out LSTM the winner retrained at 1.97 against 2.40,
#: on the char LM 2.73 against 2.82 (medians of 3 seeds; studies/bench_anytime.py).
SMALL_BUDGET = 4.0
SMALL_RUNGS = Rungs((1 / 9, 1.0))
MAX_HEARTBEAT = 86400  # seconds; Optuna's heartbeat thread waits this long, and a wait past ~2**63 ns overflows


def check_objective(objective: Any, task: Any) -> None:
    """Exactly one of a callable ``objective`` and a ``Task``, each in its own place."""
    if isinstance(objective, Task):
        raise ValueError("objective must be a function of a trial but got a lrsearch.Task: pass it by name, "
                         "optimize(task=task).")
    if (objective is None) == (task is None):
        raise ValueError("optimize needs exactly one of objective or task.")
    if objective is not None and not callable(objective):
        raise ValueError(f"objective must be callable but got {show(objective)}.")
    if task is not None and not isinstance(task, Task):
        raise ValueError(f"task must be a lrsearch.Task but got {type(task).__name__}.")


def check_options(*, budget: Any, timeout: Any, space: Any, sampler: Any, pruner: Any, callbacks: Any,
                  catch: Any, seed: Any, show_progress_bar: Any, seed_from: Any, seed_families: Any,
                  heartbeat_interval: Any) -> None:
    """The rest of ``optimize``'s options, each alone (see ``optimize``'s docstring for their rules)."""
    if heartbeat_interval is not None and check_int("heartbeat_interval", heartbeat_interval, low=1) > MAX_HEARTBEAT:
        raise ValueError(f"heartbeat_interval must be <= {MAX_HEARTBEAT} s (a day) but got {show(heartbeat_interval)}.")
    if budget is not None:
        check_positive("budget", budget)
    if timeout is not None:
        check_positive("timeout", timeout)
    if space is not None and not isinstance(space, SearchSpace):
        raise ValueError(f"space must be a lrsearch.SearchSpace or None but got {type(space).__name__}.")
    for name, value, kind in (("sampler", sampler, optuna.samplers.BaseSampler),
                              ("pruner", pruner, optuna.pruners.BasePruner)):
        if value is not None and not isinstance(value, kind):
            raise ValueError(f"{name} must be an optuna {kind.__name__} or None but got {type(value).__name__}.")
    if callbacks is not None and (not isinstance(callbacks, (list, tuple)) or not all(map(callable, callbacks))):
        raise ValueError(f"callbacks must be a list of callables (study, trial) but got {show(callbacks)}.")
    if not isinstance(catch, (tuple, list)) or not all(isinstance(c, type) and issubclass(c, Exception) for c in catch):
        raise ValueError(f"catch must be a tuple of Exception classes but got {show(catch)}.")
    if check_int("seed", seed, low=0) >= 2**32:
        raise ValueError(f"seed must be < 2**32 (numpy's seed range) but got {show(seed)}.")
    if show_progress_bar is not None:
        check_bool("show_progress_bar", show_progress_bar)
    if seed_families is not None:
        check_names("seed_families", seed_families)
        if seed_from is None:
            raise ValueError(f"seed_families needs seed_from (a RangeTestResult: the seeds' LRs come from it) "
                             f"but got seed_families={show(seed_families)} without it.")


def resolve_rungs(rungs: Any, budget: float | None) -> Rungs:
    """``optimize``'s ``rungs``: ``"auto"`` (the default) is ``SMALL_RUNGS`` under ``SMALL_BUDGET``
    full runs and ``Rungs()`` otherwise; ``None`` is every trial at full length."""
    if isinstance(rungs, str) and rungs == "auto":
        return SMALL_RUNGS if budget is not None and budget < SMALL_BUDGET else Rungs()
    if rungs is not None and not isinstance(rungs, Rungs):
        raise ValueError(f"rungs must be a lrsearch.Rungs, 'auto' or None but got {show(rungs)}.")
    return rungs or FULL_ONLY
