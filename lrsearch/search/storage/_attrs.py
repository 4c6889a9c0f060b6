"""Writing several user attrs of a trial in one storage call.

Optuna writes a trial's user attrs one key at a time (``trial.set_user_attr``): on an RDB storage
each is its own transaction (a commit: an fsync on SQLite, a round trip on PostgreSQL), on a
journal file its own locked, fsynced append. lrsearch records 6-9 attrs per trial, so
``set_user_attrs(trial, attrs)`` writes a dict of them in one call:

- an ``RDBStorage`` (behind Optuna's ``_CachedStorage``): every key in one transaction, through the
  storage's own per-key upsert (``_set_trial_attr_without_commit``), one commit;
- a ``JournalStorage``: one append of the same single-key ``SET_TRIAL_USER_ATTR`` lines Optuna writes
  per key (its replay asserts one key a line, so a multi-key line would break every reader), then
  one replay; what the file and the replay hold is what per-key calls leave;
- anything else (in memory, the gRPC proxy, a ``DistributedTrial``, a ``FixedTrial``): the public
  per-key path.

The two fast paths use Optuna internals (checked for Optuna 5.1): where one is missing the public
per-key path is taken, so a newer Optuna is slower, never wrong. The trial's own view of its attrs
(``trial.user_attrs``) is updated as ``set_user_attr`` updates it.

``deferred(trial)`` goes further inside ``optimize``: attrs set while it is open are kept on the
trial (readable through ``trial.user_attrs``) and written together at the next ``flush(trial)``
(``report`` flushes before each reported value, so the pruners and other workers see them) or when
it closes, in one call.
"""

from __future__ import annotations

import contextlib
import copy
import contextvars
from collections.abc import Iterator
from typing import Any

import optuna


#: The Optuna internals each fast path uses; where one is missing the per-key path is taken.
RDB_NEEDS = ("scoped_session", "_set_trial_attr_without_commit")
JOURNAL_NEEDS = ("_backend", "_replay_result", "_thread_lock", "_sync_with_backend")
_pending: contextvars.ContextVar[tuple[Any, dict[str, Any]] | None] = contextvars.ContextVar(
    "lrsearch_pending_attrs", default=None)


def _rdb_of(storage: Any) -> Any:
    """The ``RDBStorage`` behind ``storage`` (itself or Optuna's ``_CachedStorage`` around it), else ``None``."""
    backend = getattr(storage, "_backend", storage) if type(storage).__name__ == "_CachedStorage" else storage
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def _has(obj: Any, names: tuple[str, ...]) -> bool:
    return all(getattr(obj, name, None) is not None for name in names)


def _write_rdb(rdb: Any, trial_id: int, attrs: dict[str, Any]) -> bool:
    try:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
    except ImportError:  # pragma: no cover - an Optuna that moved them
        return False
    if not _has(rdb, RDB_NEEDS) or not _has(models, ("TrialUserAttributeModel",)):
        return False
    with _create_scoped_session(rdb.scoped_session, True) as session:  # as set_trial_user_attr opens it
        for key, value in attrs.items():
            rdb._set_trial_attr_without_commit(session, models.TrialUserAttributeModel, trial_id, key, value)
    return True


def _write_journal(journal: optuna.storages.JournalStorage, trial_id: int, attrs: dict[str, Any]) -> bool:
    from optuna.storages.journal._storage import JournalOperation

    if not _has(journal, JOURNAL_NEEDS):
        return False
    with journal._thread_lock:  # as set_trial_user_attr, one line a key (what its replay accepts)
        worker = journal._replay_result.worker_id
        journal._backend.append_logs([{"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "worker_id": worker,
                                       "trial_id": trial_id, "user_attr": {key: value}}
                                      for key, value in attrs.items()])
        _replay_all(journal._sync_with_backend, len(attrs))
    return True


def _replay_all(sync: Any, lines: int) -> None:
    """Replay every line written, raising the first error as a per-key call would (a trial finished
    meanwhile): each failing replay consumes the line that failed, so the rest must follow now,
    not in the next unrelated call."""
    first: Exception | None = None
    for _ in range(lines + 1):
        try:
            sync()
            break
        except (KeyError, optuna.exceptions.UpdateFinishedTrialError) as err:
            first = first or err
    if first is not None:
        raise first


def write_user_attrs(trial: Any, attrs: dict[str, Any]) -> None:
    """Write ``attrs`` to ``trial``'s storage now, in as few storage calls as it allows."""
    if not attrs:
        return
    cache = getattr(getattr(trial, "_cached_frozen_trial", None), "user_attrs", None)
    storage, trial_id = getattr(trial, "storage", None), getattr(trial, "_trial_id", None)
    fast = False
    if type(trial) is optuna.trial.Trial and isinstance(cache, dict) and isinstance(trial_id, int):
        rdb = _rdb_of(storage)
        if rdb is not None:
            fast = _write_rdb(rdb, trial_id, attrs)
        elif isinstance(storage, optuna.storages.JournalStorage):
            fast = _write_journal(storage, trial_id, attrs)
    if not fast:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    cache.update(attrs)  # what Trial.set_user_attr does after its write


def set_user_attrs(trial: Any, attrs: dict[str, Any]) -> None:
    """Set several user attrs of ``trial``: written in one storage call (see the module docstring),
    or kept until ``flush`` while ``deferred(trial)`` is open."""
    pending = _pending.get()
    if pending is not None and pending[0] is trial:
        pending[1].update(attrs)
        cached = trial._cached_frozen_trial  # what trial.user_attrs reads; a journal's replay or the
        trial._cached_frozen_trial = copy.copy(cached)  # memory storage may hold this very object:
        trial._cached_frozen_trial.user_attrs = {**cached.user_attrs, **attrs}  # never change it in place
        return
    write_user_attrs(trial, attrs)


def flush(trial: Any) -> None:
    """Write the attrs ``deferred(trial)`` holds for ``trial`` (nothing when none are held)."""
    pending = _pending.get()
    if pending is not None and pending[0] is trial and pending[1]:
        attrs = dict(pending[1])
        pending[1].clear()
        write_user_attrs(trial, attrs)


@contextlib.contextmanager
def deferred(trial: Any) -> Iterator[None]:
    """Hold ``set_user_attrs`` writes for ``trial`` until ``flush`` or the end of the block (see the
    module docstring). Only for a ``optuna.trial.Trial``, whose ``user_attrs`` show held attrs."""
    if type(trial) is not optuna.trial.Trial or not hasattr(trial, "_cached_frozen_trial"):
        yield
        return
    token = _pending.set((trial, {}))
    try:
        yield
    finally:
        try:
            flush(trial)
        finally:
            _pending.reset(token)
