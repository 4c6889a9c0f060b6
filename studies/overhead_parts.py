"""The pieces ``bench_overhead.py`` shares with its worker processes: the two objectives, the storages
each arm is given, and the worker table (many processes on one study).

Storages, as each arm gets them:
- ``journal``: lrsearch a ``.log`` path, Optuna a ``JournalStorage`` on the same kind of file;
- ``sqlite`` / ``postgres``: lrsearch a ``.db`` path or the URL (so it runs its default heartbeat),
  Optuna the URL (``optuna``) or the same heartbeat-enabled ``RDBStorage`` lrsearch builds
  (``optuna-hb``: 10 s beats, failed after 30 s, retried once);
- ``grpc-postgres`` / ``grpc``: both arms a ``GrpcStorageProxy`` to one proxy server process
  (``optuna.storages.run_grpc_proxy_server``) in front of PostgreSQL or a SQLite file (the proxy
  takes no heartbeat: neither arm runs one; behind it SQLite runs enqueued trials twice).
"""

from __future__ import annotations

import inspect
import math
import multiprocessing
import os
import socket
import time
import warnings
import zlib

import numpy as np
import optuna

import lrsearch


FAMILIES = tuple(lrsearch.SearchSpace().families)
N_EVALS = 5
FULL_STEPS = 900
HEARTBEAT = inspect.signature(lrsearch.optimize).parameters["heartbeat_interval"].default  # lrsearch's default


def value_at(family: str, lr: float, k: int) -> float:
    """A made-up learning curve: best near lr = 3e-3, a family offset, falling with evaluations."""
    offset = (zlib.crc32(family.encode()) % 100) / 500
    return 0.5 + 0.1 * (math.log10(lr) + 2.5) ** 2 + offset + 1.0 / (k + 2)


def lrsearch_objective(trial: optuna.trial.Trial) -> float:
    schedule = lrsearch.suggest_schedule(trial)
    lrsearch.run_length(trial, FULL_STEPS)
    value = math.nan
    for k in range(N_EVALS):
        value = value_at(schedule.family, schedule.lr, k)
        lrsearch.report(trial, value, k, n_evals=N_EVALS)
    return value


def optuna_objective(trial: optuna.trial.Trial) -> float:
    family = trial.suggest_categorical("family", list(FAMILIES))
    lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
    trial.suggest_categorical("warmup", ["none", "linear", "cosine"])
    trial.suggest_float("warmup_frac", 0.0, 0.2)
    for name in ("a", "b", "c"):  # 7 parameters: lrsearch's default space samples 6.7 on average
        trial.suggest_float(f"{family}.{name}", 0.0, 1.0)
    value = math.nan
    for k in range(N_EVALS):
        value = value_at(family, lr, k)
        trial.report(value, k)
        if k < N_EVALS - 1 and trial.should_prune():
            raise optuna.TrialPruned()
    return value


def heartbeat_rdb(url: str) -> optuna.storages.RDBStorage:
    """The RDB storage lrsearch builds for a URL or a ``.db`` path: heartbeats every ``HEARTBEAT``
    seconds, a trial silent for 3 of them failed and retried once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
            heartbeat_interval=HEARTBEAT, grace_period=3 * HEARTBEAT,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))


def proxy(port: int) -> optuna.storages.BaseStorage:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        client = optuna.storages.GrpcStorageProxy(host="localhost", port=port)
    client.wait_server_ready(timeout=60)
    return client


def worker_storage(arm: str, where: dict) -> object:
    """What a worker of ``arm`` passes as its storage (see the module docstring)."""
    if where["kind"] == "journal":
        if arm == "lrsearch":
            return where["path"]
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(where["path"]))
    if where["kind"] == "postgres":
        return where["url"] if arm == "lrsearch" else heartbeat_rdb(where["url"])
    return proxy(where["port"])


def range_test() -> lrsearch.RangeTestResult:
    """A made-up range test (a valley near 3e-3, divergence above 0.3) to seed the workers' study."""
    lrs = np.geomspace(1e-6, 1.0, 100)
    losses = 1.0 + 0.1 * (np.log10(lrs) + 2.5) ** 2 + 5.0 * (lrs > 0.3)
    return lrsearch.RangeTestResult(lrs, losses, losses, losses, {"num_iter": 100}, iterations=100)


def worker(arm: str, where: dict, name: str, n_trials: int | None, seed: int, budget: float | None) -> None:
    """One worker process: ``optimize`` (or Optuna's) on the shared study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    storage = worker_storage(arm, where)
    if arm == "lrsearch":  # the space the study was seeded in (the seeds' LRs lie in its range)
        lrsearch.optimize(lrsearch_objective, storage=storage, study_name=name, n_trials=n_trials, budget=budget,
                          space=lrsearch.SearchSpace().with_lr(range_test()), sampler=sampler,
                          show_progress_bar=False, artifacts=None)
    else:
        optuna.load_study(study_name=name, storage=storage, sampler=sampler).optimize(
            optuna_objective, n_trials=n_trials)


def serve(url: str, port: int) -> None:
    """The gRPC proxy server process, in front of ``url`` (as Optuna's docs run it: a cached RDB)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.run_grpc_proxy_server(optuna.storages.get_storage(url), host="localhost", port=port)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_workers(arm: str, kind: str, workers: int, n_trials: int | None, folder: str, seed: int,
                budget: float | None = None) -> dict:
    """``workers`` processes on one study; wall time and what the study holds after."""
    name = f"workers_{arm}_{budget}_{os.getpid()}_{time.time_ns()}"
    context = multiprocessing.get_context("spawn")
    url = os.environ.get("LRSEARCH_PG_URL", "") if kind.endswith("postgres") else f"sqlite:///{folder}/{name}.db"
    server = None
    if kind == "journal":
        where: dict = {"kind": kind, "path": os.path.join(folder, f"{name}.log")}
    elif kind == "postgres":
        where = {"kind": kind, "url": url}
    else:
        where = {"kind": "grpc", "port": _free_port()}
        server = context.Process(target=serve, args=(url, where["port"]), daemon=True)
        server.start()
    try:
        prepare = worker_storage(arm, where)
        if arm == "lrsearch":  # prepared once (created, seeded); the workers join it
            lrsearch.optimize(lrsearch_objective, storage=prepare, study_name=name, n_trials=0,
                              seed_from=range_test(), show_progress_bar=False, artifacts=None)
        else:
            optuna.create_study(storage=prepare, study_name=name)
        each = None if n_trials is None else n_trials // workers
        procs = [context.Process(target=worker, args=(arm, where, name, each, seed + i, budget))
                 for i in range(workers)]
        start = time.perf_counter()
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        wall = time.perf_counter() - start
        return _summary(arm, optuna.load_study(study_name=name, storage=worker_storage("optuna", where)), wall,
                        [p.exitcode for p in procs])
    finally:
        if server is not None:
            server.terminate()
            server.join()


def _summary(arm: str, study: optuna.Study, wall: float, exit_codes: list) -> dict:
    trials = study.get_trials(deepcopy=False)
    states = {s.name: n for s in optuna.trial.TrialState if (n := sum(t.state == s for t in trials))}
    out = {"wall_s": wall, "trials": len(trials), "states": states, "exit_codes": exit_codes,
           "trials_per_s": sum(t.state.is_finished() for t in trials) / wall}
    if arm == "lrsearch":
        ran: dict[str, int] = {}
        for t in trials:
            key = t.user_attrs.get("seed_key")
            if key and t.state.name in ("COMPLETE", "PRUNED") and "duplicate_of" not in t.user_attrs:
                ran[key] = ran.get(key, 0) + 1
        out["seeds_ran"], out["spent"] = ran, lrsearch.SearchResult(study).spent
    return out


def measure_workers(kinds: list[str], workers: int, n_trials: int, budget: float, seed: int, folder: str) -> dict:
    """Per storage: Optuna's and lrsearch's throughput with ``workers`` processes, then one budgeted run."""
    rows = {}
    for kind in kinds:
        runs = {arm: run_workers(arm, kind, workers, n_trials, folder, seed) for arm in ("optuna", "lrsearch")}
        budgeted = run_workers("lrsearch", kind, workers, None, folder, seed, budget=budget)
        rows[kind] = {"runs": runs, "budgeted": budgeted, "load": os.getloadavg()[0]}
    return {"workers": workers, "trials": n_trials, "budget": budget, "rows": rows}


def worker_table(data: dict) -> str:
    w, b = data["workers"], data["budget"]
    head = ["storage", "Optuna trials/s", "lrsearch trials/s", "ratio", "finished / run (Optuna, lrsearch)",
            "workers exiting 0", "seeds run", f"budget {b:g}: spent (bound {b + w:g})", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, row in data["rows"].items():
        o, s, g = row["runs"]["optuna"], row["runs"]["lrsearch"], row["budgeted"]
        done = lambda r: sum(n for k, n in r["states"].items() if k in ("COMPLETE", "PRUNED", "FAIL"))  # noqa: E731
        seeds = sorted(set(s["seeds_ran"].values()) | set(g["seeds_ran"].values()))
        exits = ", ".join(f"{r['exit_codes'].count(0)}/{len(r['exit_codes'])}" for r in (o, s, g))
        lines.append(f"| {kind} | {o['trials_per_s']:.1f} | {s['trials_per_s']:.1f} | "
                     f"{s['trials_per_s'] / o['trials_per_s']:.2f}x | {done(o)}/{o['trials']}, {done(s)}/{s['trials']}"
                     f" | {exits} | {len(s['seeds_ran'])} seeds, each {'/'.join(map(str, seeds))}x | "
                     f"{g['spent']:.2f} in {g['trials']} trials | {row['load']:.2f} |")
    return "\n".join(lines)
