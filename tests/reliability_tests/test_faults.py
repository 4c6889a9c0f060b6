"""Nothing lost: SIGKILL mid-trial then resume, and parallel workers on a journal file, PostgreSQL and
Optuna's gRPC storage proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pytest

import lrsearch
from lrsearch.search.storage._defaults import resolve_storage
from tests.procs import finish


WORKER = str(Path(__file__).with_name("worker.py"))
optuna.logging.set_verbosity(optuna.logging.WARNING)


def _range_test_file(path: Path) -> str:
    lrs = np.logspace(-7, 1, 100)
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(np.log10(lrs) + 2.0) / 0.3)) + np.where(lrs > 1, 5.0, 0.0)
    result = lrsearch.RangeTestResult.from_arrays(lrs, losses, start_lr=1e-7, end_lr=10.0, num_iter=100)
    path.write_text(json.dumps(result.to_dict()))
    return str(path)


def _spawn(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, WORKER, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_sigkill_mid_trial_then_resume_loses_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path}/kill.db"
    proc = _spawn(url, "kill", "1000", "0.2")
    try:
        deadline = time.time() + 600  # generous: a busy machine trains slowly; the loop leaves when ready
        while time.time() < deadline:
            time.sleep(0.3)
            try:
                trials = optuna.load_study(study_name="kill", storage=url).get_trials(deepcopy=False)
            except (KeyError, ValueError):  # the study is not created yet
                continue
            done = [t for t in trials if t.state.is_finished()]
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
            if len(done) >= 3 and running and running[0].intermediate_values:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-trial: it has reported, not finished
        proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    before = optuna.load_study(study_name="kill", storage=url).get_trials()
    finished = {t.number: (t.state, t.value, t.params) for t in before if t.state.is_finished()}
    killed = [t for t in before if t.state == optuna.trial.TrialState.RUNNING]
    assert len(finished) >= 3 and len(killed) == 1

    time.sleep(3.5)  # past the grace period (3 heartbeats of 1 s)
    subprocess.run([sys.executable, WORKER, url, "kill", "2", "0.0"], check=True, capture_output=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    after = optuna.load_study(study_name="kill", storage=url).get_trials()
    for number, (state, value, params) in finished.items():  # completed trials intact
        assert (after[number].state, after[number].value, after[number].params) == (state, value, params)
    dead = after[killed[0].number]
    assert dead.state == optuna.trial.TrialState.FAIL  # marked failed through its stale heartbeat
    retries = [t for t in after if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retries) == 1 and retries[0].params == dead.params and retries[0].state.is_finished()


def test_four_workers_twenty_five_trials_each_on_a_journal_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = str(tmp_path / "par.log")
    seeds = _range_test_file(tmp_path / "rt.json")
    subprocess.run([sys.executable, WORKER, storage, "par", "0", "0", seeds], check=True, capture_output=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})  # prepare: create and seed, once
    workers = [_spawn(storage, "par", "25", "0.0") for _ in range(4)]
    codes = finish(workers)
    assert [c for c, _ in codes] == [0, 0, 0, 0], [e for _, e in codes]
    trials = optuna.load_study(study_name="par", storage=resolve_storage(storage, "par")).trials
    assert len(trials) == 100 and all(t.state.is_finished() for t in trials)
    seeded = [t for t in trials if "seed" in t.user_attrs]
    assert len(seeded) == 4  # one per family, none run twice
    assert len({json.dumps(t.params, sort_keys=True) for t in seeded}) == 4


def test_prepare_only_creates_and_seeds(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = lrsearch.optimize(lambda t: 0.0, n_trials=0, study_name="prep",
                               seed_from=lrsearch.RangeTestResult.from_dict(json.loads(
                                   Path(_range_test_file(tmp_path / "r.json")).read_text())),
                               space=lrsearch.SearchSpace(["cosine", "wsd"]), artifacts=None)
    states = [t.state for t in result.study.trials]
    assert states == [optuna.trial.TrialState.WAITING] * 2


@pytest.mark.skipif(not os.environ.get("LRSEARCH_PG_URL"),
                    reason="no PostgreSQL: .ci/run starts one on loopback and sets LRSEARCH_PG_URL")
def test_postgresql_workers(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = os.environ["LRSEARCH_PG_URL"]
    name = f"pg-{os.getpid()}-{int(time.time())}"
    seeds = _range_test_file(tmp_path / "rt.json")
    subprocess.run([sys.executable, WORKER, url, name, "0", "0", seeds], check=True, capture_output=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    workers = [_spawn(url, name, "10", "0.0") for _ in range(3)]
    codes = finish(workers)
    assert [c for c, _ in codes] == [0, 0, 0], [e for _, e in codes]
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert len(trials) == 30 and all(t.state.is_finished() for t in trials)
    seeded = [t for t in trials if "seed" in t.user_attrs]
    assert len({json.dumps(t.params, sort_keys=True) for t in seeded}) == len(seeded) == 4


def test_grpc_proxy_workers(tmp_path, monkeypatch) -> None:
    """Three processes through Optuna's gRPC storage proxy, 8 trials each. Behind it an in-memory
    storage (its lock hands each enqueued seed to one process): a SQLite file there runs a seed
    twice, as SQLite does with parallel workers (``SELECT ... FOR UPDATE`` is a no-op in SQLite)."""
    pytest.importorskip("grpc", reason="the gRPC proxy needs grpcio: pip install 'lrsearch[grpc]'")
    from optuna.storages._grpc.server import make_server

    monkeypatch.chdir(tmp_path)
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    behind = optuna.storages.InMemoryStorage()
    server = make_server(behind, "localhost", port)
    server.start()
    try:
        storage, seeds = f"grpc://localhost:{port}", _range_test_file(tmp_path / "rt.json")
        subprocess.run([sys.executable, WORKER, storage, "g", "0", "0", seeds], check=True, capture_output=True,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
        codes = finish([_spawn(storage, "g", "8", "0.0") for _ in range(3)])
        assert [c for c, _ in codes] == [0, 0, 0], [e for _, e in codes]
    finally:
        server.stop(0)
    trials = optuna.load_study(study_name="g", storage=behind).trials
    assert len(trials) == 24 and all(t.state.is_finished() for t in trials)
    assert all({"owner", "schedule", "trained_lr", "n_evals"} <= set(t.user_attrs) for t in trials
               if "duplicate_of" not in t.user_attrs)
    seeded = [t for t in trials if "seed" in t.user_attrs]
    assert len({json.dumps(t.params, sort_keys=True) for t in seeded}) == len(seeded) == 4
