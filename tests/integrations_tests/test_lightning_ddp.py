"""The Lightning callback under Lightning's own DDP: 2 gloo ranks on CPU against one process.

The ranks run ``lightning_ddp_worker.py`` as ``torchrun`` would start them (``LOCAL_RANK`` and
friends in the environment, so Lightning starts no processes of its own); the callback is the
unchanged ``LRSearchCallback``, handed a ``DistributedTrial`` by ``optimize_distributed``.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest


pytest.importorskip("lightning.pytorch")
from tests.integrations_tests import lightning_ddp_worker
from tests.procs import finish


def test_lightning_ddp_search_matches_one_process_and_prunes_every_rank(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(lightning_ddp_worker.__file__).parents[2]
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2"}
        procs.append(subprocess.Popen([sys.executable, lightning_ddp_worker.__file__, str(tmp_path)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    try:
        with warnings.catch_warnings():
            lightning_ddp_worker.main(str(tmp_path), one=True)  # the reference, while the ranks run
    finally:
        codes = finish(procs)
    assert [code for code, _ in codes] == [0, 0], codes
    one, zero, other = (pickle.loads((tmp_path / f"{n}.pkl").read_bytes()) for n in ("one", "rank0", "rank1"))
    assert [(n, p) for n, p, _ in zero] == [(n, p) for n, p, _ in other] == [(n, p) for n, p, _ in one]
    for (n, _, a), (_, _, b), (_, _, c) in zip(zero, other, one):
        if n == lightning_ddp_worker.PRUNED:
            assert a == b == c == "pruned"
        else:
            assert a == b and a == pytest.approx(c, rel=1e-5)
