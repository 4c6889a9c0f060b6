"""A trial across processes: 2 gloo ranks on CPU against one process on the same global batches.

The two ranks run ``ddp_worker.py`` (a range test, then a 4-trial search through
``optimize_distributed`` with a DDP model in the reference ``Task`` loop), each on its half of
every batch; the reference runs the same code in this process without torch.distributed.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

import lrsearch
from tests.procs import finish
from tests.search_tests import ddp_worker

WORKER = Path(ddp_worker.__file__)
ROOT = WORKER.parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[Any, dict[str, Any]]:
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    store = str(tmp_path_factory.mktemp("ddp_store") / "rendezvous")  # a file: no port to race for
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(rank), "2", store, str(out)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for rank in (0, 1)]
    try:
        ddp_worker.run(None, 1, "", str(out))  # the one-process reference, while the ranks run
    finally:
        codes = finish(procs)
    assert [code for code, _ in codes] == [0, 0], codes
    found = {rank: pickle.loads((out / f"rank{rank}.pkl").read_bytes()) for rank in (None, 0, 1)}
    found["files"] = sorted(p.name for p in out.iterdir())
    return found


def test_range_test_across_two_ranks_matches_one_process(runs) -> None:
    one, ranks = runs[None], (runs[0], runs[1])
    for r in ranks:
        assert r["restored"]  # every rank's model and optimizer are back where they were
        assert r["stop"] == one["stop"] and len(r["lrs"]) == len(one["lrs"])
        np.testing.assert_allclose(r["lrs"], one["lrs"], rtol=1e-12)
        # the same losses up to float round-off, which the diverging end of the sweep amplifies
        calm = one["lrs"] <= 1.0
        np.testing.assert_allclose(r["losses"][calm], one["losses"][calm], rtol=1e-5)
        np.testing.assert_allclose(r["losses"], one["losses"], rtol=1e-2)
        assert r["suggestion"] == pytest.approx(one["suggestion"], rel=1e-9)
        assert r["range"] == pytest.approx(one["range"], rel=1e-9)
    # every rank holds rank 0's result, bit for bit
    np.testing.assert_array_equal(runs[0]["losses"], runs[1]["losses"])
    assert runs[0]["suggestion"] == runs[1]["suggestion"]


def test_search_across_two_ranks_matches_one_process(runs) -> None:
    one, zero, other = runs[None], runs[0], runs[1]
    assert [n for n, *_ in zero["seen"]] == [0, 1, 2, 3]
    # every rank trained the same trials with the same parameters; rank 0's search recorded them
    assert [(n, p) for n, p, *_ in zero["seen"]] == [(n, p) for n, p, *_ in other["seen"]]
    assert [(n, p) for n, p, *_ in zero["seen"]] == [(n, p) for n, p, *_ in one["seen"]]
    for (_, _, a, _), (_, _, b, _) in zip(zero["seen"], other["seen"]):
        assert a == b or a == pytest.approx(b, rel=1e-6)
    assert [(n, s) for n, s, _ in zero["values"]] == [(n, s) for n, s, _ in one["values"]]
    for (_, _, a), (_, _, b) in zip(zero["values"], one["values"]):
        assert a == pytest.approx(b, rel=1e-5)
    assert other["values"] is None  # optimize_distributed returns the result on rank 0 only


def test_task_search_across_two_ranks_matches_one_process(runs) -> None:
    one, zero = runs[None]["task"], runs[0]["task"]
    assert runs[1]["task"] is None and len(zero) == len(one) >= 3
    for (n, state, value, params, steps), (n1, state1, value1, params1, steps1) in zip(zero, one):
        assert (n, state, params, steps) == (n1, state1, params1, steps1)
        assert value == pytest.approx(value1, rel=1e-5)


def test_a_pruned_trial_is_pruned_on_every_rank(runs) -> None:
    for r in (runs[0], runs[1]):
        pruned = [(n, reason) for n, _, value, reason in r["seen"] if value == "pruned"]
        # rank 0's reason, stored by rank 0 and seen by every rank
        value = {n: v for n, _, v in runs[0]["values"]}[ddp_worker.PRUNED]
        assert pruned == [(ddp_worker.PRUNED, f"PruneOne: pruned at evaluation 2/3 with value {value:.6g}")]


def test_rank_above_zero_never_opens_the_storage(runs) -> None:
    assert "rank0.db" in runs["files"] and "rank1.db" not in runs["files"]


def test_calls_that_diverge_or_fail_on_rank_zero_raise_on_the_other_ranks(runs) -> None:
    assert runs[0]["calls"]["diverged"] == "0.5"
    assert runs[1]["calls"]["diverged"].startswith("RuntimeError: the ranks' trial calls diverged: "
                                                   "rank 0 called suggest_float('a') where rank 1 called "
                                                   "suggest_float('b')")
    assert runs[0]["calls"]["shared"] == runs[1]["calls"]["shared"]
    assert runs[1]["calls"]["shared"].startswith("ValueError")
    # lrsearch.report decides on rank 0's value: a NaN seen by rank 1 alone prunes no rank
    assert runs[0]["calls"]["report"] == runs[1]["calls"]["report"] == "went on"


def test_without_a_process_group_the_distributed_paths_refuse() -> None:
    with pytest.raises(ValueError, match="torch.distributed process group"):
        lrsearch.DistributedTrial(optuna.trial.FixedTrial({}))
    with pytest.raises(ValueError, match="torch.distributed process group"):
        lrsearch.optimize_distributed(lambda trial: 0.0, n_trials=1)
    with pytest.raises(ValueError, match="n_jobs must be 1 across ranks .* but got 2"):
        lrsearch.optimize_distributed(lambda trial: 0.0, n_jobs=2)
    with pytest.raises(ValueError, match="exactly one of objective or task"):
        lrsearch.optimize_distributed()
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = [(torch.randn(4, 2), torch.randn(4, 1))]
    with pytest.raises(ValueError, match="distributed=True needs an initialised"):
        lrsearch.lr_find(model, opt, torch.nn.functional.mse_loss, batches, distributed=True, verbose=False)
    with pytest.raises(ValueError, match="distributed must be a bool or None but got 'yes'"):
        lrsearch.lr_find(model, opt, torch.nn.functional.mse_loss, batches, distributed="yes", verbose=False)


def test_ddp_search_example_runs_under_torchrun(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(ROOT / "studies" / "ddp_search.py"), "--trials", "3",
           "--epochs", "2", "--storage", "ddp.db"]
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        (code, err), = finish([proc])
    assert code == 0, err
    assert (tmp_path / "out.txt").read_text().count("best: ") == 1  # rank 0 alone reports
    study = optuna.load_study(study_name="ddp_search", storage=f"sqlite:///{tmp_path / 'ddp.db'}")
    assert sum(t.state.is_finished() for t in study.trials) == 3  # the others: seeds still waiting
