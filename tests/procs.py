"""Waiting for subprocesses a test started: a generous limit (shared machines are slow, never a
reason to fail) and no process left behind when a test fails (a leaked worker broke the next test)."""

from __future__ import annotations

import subprocess

LIMIT = 900  # seconds: a hang fails the test; a busy machine does not


def finish(procs: list[subprocess.Popen], limit: float = LIMIT) -> list[tuple[int, str]]:
    """Each process's return code and the tail of its stderr; every process is killed on the way out."""
    try:
        out = []
        for p in procs:
            _, err = p.communicate(timeout=limit)
            out.append((p.returncode, (err.decode() if isinstance(err, bytes) else err or "")[-800:]))
        return out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
