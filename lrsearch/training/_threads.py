"""How many CPU threads torch uses while lrsearch trains: a rule that does not oversubscribe.

torch's default is a thread per core. On a shared machine (other jobs, parallel workers, a test
suite) that oversubscribes the cores: a one-minute demo took 25 minutes next to other work, and 3
demo trials took 70 s instead of 33 s with one thread. The rule, first match wins:

1. ``Task(threads=N)``: N threads (``0``: leave torch's setting alone);
2. the environment variable ``LRSEARCH_THREADS=N``;
3. ``OMP_NUM_THREADS`` set: torch already follows it, left alone;
4. otherwise half the cores this process may run on, at least 1 and at most 4 (the small models
   these searches train gain little beyond; the rest stays for data loading and other work).

Only CPU training is affected, and torch's previous setting is restored when a run ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from lrsearch._checks import check_int


MAX_DEFAULT_THREADS = 4


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def training_threads(device: Any, threads: int | None = None) -> contextlib.AbstractContextManager[None]:
    """``threads_for_training(threads)`` on a CPU ``device``; on any other device, nothing."""
    return threads_for_training(threads) if device.type == "cpu" else contextlib.nullcontext()


def cpu_threads(threads: int | None = None) -> int | None:
    """The thread count the rule chooses, or ``None`` to leave torch as it is."""
    if threads is not None:
        threads = check_int("threads", threads, low=0)
        return threads or None
    env = os.environ.get("LRSEARCH_THREADS")
    if env:
        try:
            return check_int("LRSEARCH_THREADS", int(env), low=1)
        except ValueError:
            raise ValueError(f"LRSEARCH_THREADS must be an integer >= 1 but got {env!r}.") from None
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, min(MAX_DEFAULT_THREADS, usable_cores() // 2))


@contextlib.contextmanager
def threads_for_training(threads: int | None = None) -> Iterator[None]:
    """Run the block with the rule's thread count, then restore torch's."""
    import torch

    chosen = cpu_threads(threads)
    before = torch.get_num_threads()
    if chosen is not None and chosen != before:
        torch.set_num_threads(chosen)
    try:
        yield
    finally:
        if chosen is not None and chosen != before:
            torch.set_num_threads(before)
