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
  ``MAX_SEED_ATTEMPTS`` attempts; an attempt whose objective raised an ordinary exception is not
  retried (it would raise again). Two processes repairing at once may enqueue a seed twice: the
  second attempt to start sees the first and is pruned as a duplicate (``_seeds.duplicate_of``).
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
from lrsearch.search._seeds import ran
from lrsearch.search._seeds import seed_key


MAX_SEED_ATTEMPTS = 3


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
            if seed_key(t) is None:  # seeds are re-enqueued below, with their own limit
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
        live = [t for t in attempts if t.number not in failed and (t.state == TrialState.WAITING or (
            t.state == TrialState.RUNNING and not is_stale(t, now)))]
        if any(ran(t) for t in attempts) or live or len(attempts) >= MAX_SEED_ATTEMPTS:
            continue
        if any("error" in t.user_attrs for t in attempts):
            continue
        enqueue_seed(study, key, entry, attempt=len(attempts) + 1)
        made += 1
    return made


def _with_attrs(trial: FrozenTrial, user_attrs: dict[str, Any]) -> FrozenTrial:
    clone = copy.copy(trial)
    clone.user_attrs = user_attrs
    return clone


