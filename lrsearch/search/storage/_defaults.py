"""Study storage: resolving what the user passed, and making RDB storages crash-safe by default.

- ``None``: ``sqlite:///studies/<study>.db`` (the folder is created).
- A file's folder must exist, as for ``open``; only lrsearch's own ``studies/`` (relative to the
  working folder) is created when missing (``_checks.check_file_path``).
- A path ending in ``.log`` or ``.journal``: a journal file (parallel workers on one machine).
- A path ending in ``.db``: that SQLite file.
- A URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``): an RDB storage with heartbeats, so a
  trial whose process died (SIGKILL, a lost node) is marked FAIL once its heartbeat is stale and
  retried once with the same parameters (``RetryHeartbeatStaleTrialCallback``); completed trials
  are never touched. Journal files have no heartbeats in Optuna 5.
- Any Optuna storage object: used as it is.

Anything else raises ``ValueError``; URLs are only ever shown with their password masked (from
SQLAlchemy's own parse of the URL, so a password holding ``/``, ``#`` or ``?`` is masked too).
File names come from validated study names only (``check_file_name``, ``file_stem``): a study
name never chooses where a file is written. An in-memory SQLite URL is refused (the study would be
lost at exit); pass ``optuna.storages.InMemoryStorage()`` for that on purpose.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from urllib.parse import quote_plus

import optuna
from optuna.storages import RDBStorage
from optuna.storages import RetryHeartbeatStaleTrialCallback

from lrsearch._checks import check_file_path
from lrsearch._checks import show
from lrsearch.search.storage._journal import open_journal


HEARTBEAT_INTERVAL = 10  # seconds between a running trial's heartbeats
GRACE_PERIOD = 30  # seconds without a heartbeat before a trial counts as dead
_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_SECRET_KEYS = ("password", "passwd", "pwd", "secret", "token")
_PG_DRIVERS = ("psycopg2", "psycopg", "pg8000")  # the synchronous drivers SQLAlchemy knows, ours first


def _safe_name(name: Any) -> bool:
    return isinstance(name, str) and _SAFE_NAME.fullmatch(name) is not None and name.strip(".") != ""


def check_file_name(name: Any, what: str = "study_name") -> str:
    """``name`` if it is safe as a file name (letters, digits, ``_ . -``; at most 100), else ``ValueError``."""
    if not _safe_name(name):
        storage = "--storage" if what.startswith("--") else "storage="  # the CLI's flag, or optimize's argument
        raise ValueError(f"{what} must be 1-100 letters, digits, '_', '.' or '-' (not starting with '.' or '-') "
                         f"to name a file but got {show(name)}; pass {storage} to keep another name.")
    return name


def file_stem(name: str) -> str:
    """A file-name stem for any study name: the name if safe, else a slug plus a hash (never a path)."""
    if _safe_name(name):
        return name
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._-")[:60] or "study"
    return f"{slug}-{hashlib.sha256(str(name).encode()).hexdigest()[:8]}"


def _secrets(url: str) -> list[str]:
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: fall back to the pattern below
        return []
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in _SECRET_KEYS:
            found.extend([value] if isinstance(value, str) else list(value))
    raw = re.match(r"[\w+]+://[^:/]*:([^@]*)@", url)  # as written, before decoding (SQLAlchemy's pattern)
    if raw:
        found.append(raw.group(1))
    for pair in url.partition("?")[2].split("&"):
        key, _, value = pair.partition("=")
        if key.lower() in _SECRET_KEYS:
            found.append(value)
    return [s for s in found if s]


def masked(url: Any, text: str | None = None) -> str:
    """``text`` (default: ``url`` itself) with every password of ``url`` replaced by ``***``.

    The password comes from SQLAlchemy's parse of the URL, so any character it accepts is masked,
    in plain, percent-encoded and query (``?password=``) forms; bytes are decoded first.
    """
    if isinstance(url, (bytes, bytearray)):
        url = bytes(url).decode("utf-8", "replace")
    url = str(url)
    out = url if text is None else str(text)
    for secret in sorted(_secrets(url), key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote_plus(secret), quote(secret)}:
            out = out.replace(form, "***")
    # whatever SQLAlchemy could not parse: hide everything between "user:" and the last "@" of a netloc
    return re.sub(r"(://[^:/@\s]*):[^\s]*@", r"\1:***@", out)


def _driver(url: str, scheme: str) -> str:
    """``postgresql://`` names no driver and SQLAlchemy 2.1 would pick one we may not have: pick ours."""
    if scheme != "postgresql" or not url.startswith("postgresql://"):
        return url
    for driver in _PG_DRIVERS:
        if importlib.util.find_spec(driver) is not None:
            return f"postgresql+{driver}://" + url[len("postgresql://"):]
    return url


def _rdb(url: str, heartbeat_interval: int | None, grace_period: int | None) -> RDBStorage:
    scheme = url.split("://", 1)[0].split("+", 1)[0]
    if scheme not in _SCHEMES:
        raise ValueError(f"storage must use one of the schemes {', '.join(_SCHEMES)} but got {masked(url)!r}.")
    url = _driver(url, scheme)
    if scheme == "sqlite":
        path = storage_file(url) or ""
        if path in ("", ":memory:"):
            raise ValueError(f"storage {masked(url)!r} is an in-memory SQLite database, lost when the process exits; "
                             "give a file (studies/<name>.db) or pass optuna.storages.InMemoryStorage() on purpose.")
        check_file_path("storage", path, create=True)  # as open: only studies/ is made when missing
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
                         f"{masked(url, str(err))}") from None


def sqlite_path(path: str) -> str:
    """``sqlite:///path`` for a ``.db`` path, refusing what a URL would read as something else."""
    if any(c in path for c in "?#%"):
        raise ValueError(f"storage path must not contain '?', '#' or '%' (a URL would read them as a query, "
                         f"a fragment or an escape) but got {path!r}.")
    return f"sqlite:///{path}"


def resolve_storage(storage: Any, study_name: str, *, heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
                    grace_period: int | None = GRACE_PERIOD) -> Any:
    """The Optuna storage for what the user passed (see the module docstring)."""
    if storage is None:
        return _rdb(sqlite_path(f"studies/{check_file_name(study_name)}.db"), heartbeat_interval, grace_period)
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if isinstance(storage, os.PathLike):
        storage = os.fspath(storage)
    if not isinstance(storage, str) or not storage:
        shown = masked(storage) if isinstance(storage, (bytes, bytearray)) else repr(storage)
        raise ValueError(f"storage must be a URL, a .db or .log path, or an Optuna storage but got {shown}.")
    if "://" in storage:
        return _rdb(storage, heartbeat_interval, grace_period)
    if storage.endswith((".log", ".journal")):
        return open_journal(storage)
    if storage.endswith(".db"):
        return _rdb(sqlite_path(storage), heartbeat_interval, grace_period)
    raise ValueError(f"storage must be a URL, a .db or .log path, or an Optuna storage but got {masked(storage)!r}.")


def storage_file(storage: str) -> str | None:
    """The file behind a storage string (a ``.db``/``.log`` path or a ``sqlite[+driver]:///`` URL), else ``None``."""
    if "://" not in storage:
        return storage
    local = re.match(r"sqlite(\+\w+)?:///", storage)  # sqlite:///path or sqlite+driver:///path
    return storage[local.end():].split("?", 1)[0] or None if local else None


def check_exists(storage: str) -> str:
    """``storage`` if the file it names exists (URLs of servers pass), else ``ValueError``: opening a
    missing SQLite file would create an empty database."""
    path = storage_file(storage)
    if path is not None and not os.path.isfile(path):
        raise ValueError(f"storage {masked(storage)!r} not found: no file {path!r} (run `lrsearch demo` to create "
                         "studies/demo.db, or give the path of an existing .db or .log file).")
    return storage


def sqlite_file(storage: Any) -> str | None:
    """The database file of a SQLite storage, else ``None``."""
    url = getattr(getattr(storage, "engine", None), "url", None)
    if url is None or not str(url).startswith("sqlite"):
        return None
    return url.database or None


def is_sqlite(storage: Any) -> bool:
    return sqlite_file(storage) is not None


@contextlib.contextmanager
def single_process(storage: Any) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite study file while a study runs on it.

    SQLite is for one worker: several processes on one file ran a seed twice and crashed a worker
    (``IntegrityError``). A second process is refused with ``ValueError``; the lock (``flock`` on
    ``<file>.lock``) dies with its process, so a killed run never leaves it behind. Other storages,
    and systems without ``fcntl``, pass through.
    """
    path = sqlite_file(storage)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        path = None
    if path is None:
        yield
        return
    with open(path + ".lock", "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(
                f"storage {path!r} is in use by another process: SQLite is for one worker (several ran a seed "
                "twice). Use a journal file (studies/<name>.log) or PostgreSQL for parallel workers.") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
