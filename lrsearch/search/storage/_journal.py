"""Journal files that survive a writer killed mid-line.

Optuna appends each batch of log lines under the file's lock. A process killed inside that write
(SIGKILL, power loss) leaves a last line without its tail: Optuna still opens the file (it skips an
unterminated last line), but the next append is glued onto the torn line and from then on every
open fails with ``JSONDecodeError``. ``SafeJournalFileBackend`` cuts a torn tail off before it
appends, under the same lock, so no live writer can be mid-line at that moment; the cut bytes are
kept in ``<file>.torn`` for inspection. Opening a file Optuna cannot replay raises ``ValueError``.

The lock is Optuna's (a symlink ``<file>.lock`` made while a writer appends), with two changes: the
path is made absolute first, so the link points at the journal (Optuna writes the target as given,
and a relative one resolves from inside the folder, pointing nowhere); and a lock is judged stale
by the link's own age (``lstat``), so one left by a killed writer is taken over after
``LOCK_GRACE`` seconds even when it dangles (Optuna's loop ``stat``s the target: a dangling link,
as older relative-path runs left them, made it spin forever).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal import JournalFileSymlinkLock
from optuna.storages.journal._file import get_lock_file

from lrsearch._checks import check_file_path


LOCK_GRACE = 30  # seconds a journal lock may be held before it counts as left by a killed writer


class AgedSymlinkLock(JournalFileSymlinkLock):
    """Optuna's symlink lock (the same link, so plain Optuna workers exclude each other too), stale
    once the link itself is older than ``grace_period`` seconds, whether or not its target exists."""

    def acquire(self) -> bool:
        pause = 0.001
        while True:
            try:
                os.symlink(self._lock_target_file, self._lock_file)
                return True
            except FileExistsError:
                pass
            try:
                age = time.time() - os.lstat(self._lock_file).st_mtime
            except FileNotFoundError:
                continue  # released meanwhile: try again at once
            if self.grace_period is not None and age > self.grace_period:
                with contextlib.suppress(RuntimeError):  # another waiter took it over first
                    self.release()
                continue
            time.sleep(pause)
            pause = min(2 * pause, 0.1)


class SafeJournalFileBackend(JournalFileBackend):
    """A ``JournalFileBackend`` on an absolute path, with ``AgedSymlinkLock``, that cuts off a torn
    last line before appending."""

    def __init__(self, file_path: str) -> None:
        file_path = os.path.abspath(file_path)
        super().__init__(file_path, AgedSymlinkLock(file_path, grace_period=LOCK_GRACE))

    def repair(self) -> int:
        """Cut a torn (unterminated) last line off the file; return how many bytes were cut.

        Call only while holding the file's lock (``append_logs`` does).
        """
        with open(self._file_path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return 0
            end = _line_start(f, size)
            f.seek(end)
            torn = f.read()
            with open(self._file_path + ".torn", "ab") as side:
                side.write(torn + b"\n")
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
            return len(torn)

    def check_last_line(self) -> None:
        """Raise ``json.JSONDecodeError`` if the last (complete) line is not JSON: Optuna skips a bad
        last line when it opens the file, then fails without the file's name once a line follows."""
        with open(self._file_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(_line_start(f, size - 1))
                json.loads(f.read())

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)  # as Optuna writes them
        with get_lock_file(self._lock):
            self.repair()
            with open(self._file_path, "ab") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())


def _line_start(f: Any, end: int) -> int:
    """Where the line holding byte ``end - 1`` starts: after the last newline before ``end``."""
    block = 1 << 16
    while end > 0:  # reading backwards
        start = max(0, end - block)
        f.seek(start)
        cut = f.read(end - start).rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def open_journal(path: str) -> JournalStorage:
    """A journal storage on ``path`` (its folder must exist, but for ``studies/``: it is created);
    unreadable files raise ``ValueError``."""
    check_file_path("storage", path, create=True)
    try:
        backend = SafeJournalFileBackend(path)
        with get_lock_file(backend._lock):
            backend.repair()
            backend.check_last_line()
        return JournalStorage(backend)
    except OSError as err:
        raise ValueError(f"storage journal file {path!r} could not be opened: {err.strerror or err}.") from None
    except (AssertionError, KeyError, TypeError, ValueError) as err:  # what Optuna's replay raises
        raise ValueError(f"storage journal file {path!r} holds a line Optuna cannot replay "
                         f"({type(err).__name__}: {err}); it is not a study journal or it is damaged.") from None
