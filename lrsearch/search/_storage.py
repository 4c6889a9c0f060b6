"""Study storage: resolving what the user passed, and making RDB storages crash-safe by default.

- ``None``: ``sqlite:///studies/<study>.db`` (the folder is created).
- A path ending in ``.log`` or ``.journal``: a journal file (parallel workers on one machine).
- A path ending in ``.db``: that SQLite file.
- A URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``): an RDB storage with heartbeats, so a
  trial whose process died (SIGKILL, a lost node) is marked FAIL once its heartbeat is stale and
  retried once with the same parameters (``RetryHeartbeatStaleTrialCallback``); completed trials
  are never touched. Journal files have no heartbeats in Optuna 5.
- Any Optuna storage object: used as it is.

Anything else raises ``ValueError``; URLs are only ever shown with their password masked.
"""

from __future__ import annotations

import os
import warnings
from typing import Any
from urllib.parse import urlsplit

import optuna
from optuna.storages import JournalStorage
from optuna.storages import RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend


HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 30  # seconds without a heartbeat before a trial counts as dead
_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable storage URL>"
    return url.replace(f":{password}@", ":***@") if password else url


def _journal(path: str) -> JournalStorage:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return JournalStorage(JournalFileBackend(path))


def _rdb(url: str, heartbeat_interval: int | None, grace_period: int | None) -> RDBStorage:
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in _SCHEMES:
        raise ValueError(f"storage must use one of the schemes {', '.join(_SCHEMES)} but got {masked(url)!r}.")
    if scheme == "sqlite":
        folder = os.path.dirname(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
        if folder:
            os.makedirs(folder, exist_ok=True)
    engine = {"connect_args": {"timeout": 60}} if scheme == "sqlite" else None  # wait, don't fail, on a lock
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat options
            kwargs: dict[str, Any] = {}
            if heartbeat_interval:
                kwargs = {"heartbeat_interval": heartbeat_interval,
                          "grace_period": grace_period or 3 * heartbeat_interval,
                          "heartbeat_stale_trial_callback": RetryHeartbeatStaleTrialCallback(max_retry=1)}
            return RDBStorage(url, engine_kwargs=engine, **kwargs)
    except Exception as err:  # noqa: BLE001 - SQLAlchemy and drivers raise many types; name the storage
        raise ValueError(f"storage {masked(url)!r} could not be opened: {type(err).__name__}: "
                         f"{masked(str(err))}") from None


def resolve_storage(storage: Any, study_name: str, *, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
                    grace_period: int | None = GRACE_PERIOD) -> Any:
    """The Optuna storage for what the user passed (see the module docstring)."""
    if storage is None:
        return _rdb(f"sqlite:///studies/{study_name}.db", heartbeat_interval, grace_period)
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str) or not storage:
        raise ValueError(f"storage must be a URL, a .db or .log path, or an Optuna storage but got {storage!r}.")
    if "://" in storage:
        return _rdb(storage, heartbeat_interval, grace_period)
    if storage.endswith((".log", ".journal")):
        return _journal(storage)
    if storage.endswith(".db"):
        return _rdb(f"sqlite:///{storage}", heartbeat_interval, grace_period)
    raise ValueError(f"storage must be a URL, a .db or .log path, or an Optuna storage but got {masked(storage)!r}.")


def is_sqlite(storage: Any) -> bool:
    url = getattr(getattr(storage, "engine", None), "url", None)
    return url is not None and str(url).startswith("sqlite")
