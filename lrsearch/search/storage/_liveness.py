"""Whether a RUNNING trial's process is still there.

Each trial records its ``owner`` (host, pid, process start time, trial number) as it starts. A
RUNNING trial whose owner on this host is gone (or is another process now holding its pid) is
stale; so is one with no owner of its own older than ``ORPHAN_AGE`` (its process died between
Optuna's ``ask`` and the objective). Owners on other hosts count as alive: the RDB heartbeat judges
those, and a journal file is for one machine.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from optuna.trial import FrozenTrial
from optuna.trial import TrialState


ORPHAN_AGE = 300.0  # seconds a RUNNING trial may go without an owner before it counts as dead
_HOST = socket.gethostname()


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), its identity across pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def owner() -> dict[str, Any]:
    """Who runs a trial: this host, pid and process start time."""
    pid = os.getpid()
    return {"host": _HOST, "pid": pid, "start": _proc_start(pid)}


def _alive(who: dict[str, Any]) -> bool:
    if who.get("host") != _HOST:
        return True  # another machine's: the RDB heartbeat is the judge
    pid = who.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    start = _proc_start(pid)
    if start is None:  # a zombie, or no /proc to ask
        return not os.path.exists(f"/proc/{pid}")
    return who.get("start") in (None, start)


def is_stale(trial: FrozenTrial, now: float | None = None) -> bool:
    """Whether a RUNNING ``trial``'s process is gone (see the module docstring)."""
    if trial.state != TrialState.RUNNING:
        return False
    who = trial.user_attrs.get("owner")
    if isinstance(who, dict) and who.get("trial") == trial.number:
        return not _alive(who)
    started = trial.datetime_start.timestamp() if trial.datetime_start else None
    return started is not None and (now or time.time()) - started > ORPHAN_AGE
