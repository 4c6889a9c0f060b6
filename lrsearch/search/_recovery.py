"""Every seed runs exactly once, and no trial stays RUNNING after its process died.

Optuna's own tools leave gaps: ``enqueue_trial(skip_if_exists=True)`` never re-enqueues a seed that
ended FAIL (Ctrl-C) or stays RUNNING (killed); heartbeats only cover RDB storages, and only trials
that recorded a first heartbeat. So:

- Each trial records its **owner** (host, pid, process start time) as it starts. A RUNNING trial
  whose owner on this host is gone, or one without an owner older than ``ORPHAN_AGE`` seconds (its
  process died between ``ask`` and the objective), is **stale**: it is marked FAIL and, once,
  retried with the same parameters (``failed_trial`` as Optuna's heartbeat retry writes it). Marking
  it FAIL is the claim: only one process wins it, so only one retry is made. Owners on other hosts
  are left to the RDB heartbeat (a journal file is for one machine).
- **Seeds** (``_seeds``) are planned in the study (``seed_plan``) and keyed by family. A seed with no
  attempt that ran (COMPLETE or PRUNED), none waiting and none alive is enqueued again, up to
  ``_seeds.MAX_ATTEMPTS`` attempts; an attempt whose objective raised an ordinary exception is not
  retried (it would raise again). Two processes repairing at once may enqueue a seed twice: the
  second attempt to start sees the first and is pruned as a duplicate (``_seeds.duplicate_of``).
- **Promotions** are re-enqueued by ``_fidelity.Budget`` under the same rules (``_seeds.owed``): a
  stale promotion is only marked FAIL here, and the budget promotes its source again.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from lrsearch.search.storage import is_stale
from lrsearch.search._seeds import enqueue_seed
from lrsearch.search._seeds import owed
from lrsearch.search._seeds import planned_key
from lrsearch.search._seeds import seed_key


def _claim(study: optuna.Study, trial: FrozenTrial) -> bool:
    """Mark ``trial`` FAIL; ``False`` when another process got there first (or it just finished)."""
    try:
        return bool(study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL))
    except (UpdateFinishedTrialError, RuntimeError, KeyError):
        return False


def _retry_attrs(trial: FrozenTrial) -> dict[str, Any]:
    drop = ("owner", "error", "duplicate_of", "prune_reason", "artifact_error")
    return {k: v for k, v in trial.user_attrs.items() if k not in drop}


def recover(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> int:
    """Fail and retry stale trials, re-enqueue seeds owed an attempt; return how many were enqueued."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    now, made = time.time(), 0
    failed: set[int] = set()
    for t in trials:
        if is_stale(t, now) and _claim(study, t):
            failed.add(t.number)
            if planned_key(t) is None:  # seeds (below) and promotions (the budget) are re-enqueued by their plans
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    RetryHeartbeatStaleTrialCallback(max_retry=1)(study, _with_attrs(t, _retry_attrs(t)))
                made += 1
    plan = study.user_attrs.get("seed_plan")
    if not isinstance(plan, dict):
        return made
    by_key: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        key = seed_key(t)
        if key is not None and "duplicate_of" not in t.user_attrs:
            by_key.setdefault(key, []).append(t)
    for key, entry in plan.items():
        attempts = by_key.get(key, [])
        if owed(attempts, now, failed):
            enqueue_seed(study, key, entry, attempt=len(attempts) + 1)
            made += 1
    return made


def _with_attrs(trial: FrozenTrial, user_attrs: dict[str, Any]) -> FrozenTrial:
    clone = copy.copy(trial)
    clone.user_attrs = user_attrs
    return clone


