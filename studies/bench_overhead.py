"""What lrsearch costs per trial beyond plain Optuna, whether that cost grows with the study, and how
many worker processes fare: three tables from one command.

A no-training objective (a schedule sampled, a run length asked, 5 evaluations reported, a value
returned) is run by ``lrsearch.optimize`` and, side by side, by plain Optuna (as many suggestions
as lrsearch's space makes, 7, ``trial.report`` and ``trial.should_prune`` 5 times, Optuna's default
pruner), both with ``RandomSampler(seed)``, on each storage: in-memory, a SQLite file, a journal
file, and PostgreSQL when ``LRSEARCH_PG_URL`` is set (``.ci/postgres`` starts a throwaway one).
Each storage is given as a user would give it (``overhead_parts``): lrsearch a ``.db`` path, a URL
or a ``.log`` path, Optuna a URL or a ``JournalStorage``. The arms alternate within each repeat
(the machine is shared); the tables show medians of ``--repeats``.

Heartbeats. Given a ``.db`` path or a URL, lrsearch turns on Optuna's RDB heartbeat (a trial of a
killed process is failed and retried: ``optimize(heartbeat_interval=None)`` turns it off); plain
Optuna runs none unless asked. The heartbeat is Optuna's own code, and it costs writes per trial
(a heartbeat row at the trial's start, the stale-trial check before each new one), so on SQLite and
PostgreSQL a third arm, Optuna given the same heartbeat-enabled ``RDBStorage`` lrsearch builds
("Optuna + heartbeat"), measures what lrsearch itself adds: "beyond Optuna + heartbeat" is the
overhead the goal (< 5 ms) is judged on; "beyond Optuna" (against plain Optuna as users run it by
default) is reported beside it: it is what lrsearch's default costs a user who would not have
turned the heartbeat on.

1. Cost per trial (``--trials`` 200 x ``--repeats`` 3, every storage): the time per trial read
   between trial ends (an Optuna callback, run after lrsearch's own) over trials 1-100 and over
   the last 100; overhead = lrsearch - Optuna, in ms per trial.
2. Growth (``--growth``, one run an arm): the same to 10,000 trials in memory and on a journal, to
   1,000 on SQLite and PostgreSQL, with the 100 trials ending at 1,000 and 10,000.
3. Workers (``--workers`` 8 processes, ``--worker-trials`` 2,000): one study shared by worker
   processes on a journal file, PostgreSQL, and PostgreSQL behind Optuna's gRPC storage proxy
   (``run_grpc_proxy_server`` / ``GrpcStorageProxy``): throughput against Optuna's with the same
   workers, trials accounted for, workers that exited cleanly, seeds run once, and a budgeted
   lrsearch run's spend against its bound (budget + one trial a worker). ``grpc`` (a SQLite file
   behind the proxy) is opt-in: the proxy's threads hand one enqueued trial to two workers there
   (SQLite ignores ``SELECT ... FOR UPDATE``, optuna#4002), and the second worker dies telling it.

    python studies/bench_overhead.py                       # all three tables (~30-40 min on 2 cores)
    python studies/bench_overhead.py --growth '' --workers 0 --storages sqlite   # one table, one storage
    python studies/bench_overhead.py --profile journal --trials 200   # cProfile of one lrsearch run

Writes ``studies/results/bench_overhead.{md,json}`` (``--out`` to change the stem).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

import lrsearch
from overhead_parts import heartbeat_rdb
from overhead_parts import lrsearch_objective
from overhead_parts import measure_workers
from overhead_parts import optuna_objective
from overhead_parts import worker_table


RESULTS = Path(__file__).resolve().parent / "results"
ARMS = {"rdb": ("optuna", "optuna-hb", "lrsearch"), "other": ("optuna", "lrsearch")}
GROWTH = "memory:10000,journal:10000,sqlite:1000,postgres:1000"
WORKER_KINDS = "journal,postgres,grpc-postgres"  # "grpc" (SQLite behind the proxy) runs seeds twice: opt-in


def windows(times: list[float], n: int) -> dict[str, float]:
    """ms per trial over trials 1-100 and over the 100 trials ending at 1,000, 10,000 and ``n``."""
    ends = len(times) - 1
    width = min(100, ends // 2)
    out = {"first": 1000 * (times[width] - times[0]) / width}
    for mark in (1000, 10000):
        if mark < ends:
            out[str(mark)] = 1000 * (times[mark] - times[mark - width]) / width
    out["last"] = 1000 * (times[ends] - times[ends - width]) / width
    return out


def storage_for(kind: str, arm: str, folder: str, name: str) -> object:
    """What a user would pass for ``kind`` to ``lrsearch.optimize`` (arm "lrsearch") or to Optuna
    ("optuna"; "optuna-hb": the heartbeat-enabled RDB storage lrsearch builds for a path or URL)."""
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "journal":
        path = os.path.join(folder, f"{name}.log")
        return path if arm == "lrsearch" else optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(path))
    if kind == "sqlite":
        path = os.path.join(folder, f"{name}.db")
        url = f"sqlite:///{path}"
    elif kind == "postgres":
        path = url = os.environ["LRSEARCH_PG_URL"]
    else:
        raise ValueError(f"storages must be memory, sqlite, journal or postgres but got {kind!r}.")
    return path if arm == "lrsearch" else heartbeat_rdb(url) if arm == "optuna-hb" else url


def run_arm(arm: str, kind: str, n_trials: int, seed: int, folder: str, name: str) -> tuple[list[float], int]:
    """One study of ``n_trials``; the trial end times and how many trials the storage holds."""
    storage = storage_for(kind, arm, folder, name)
    times = [time.perf_counter()]
    stamp = lambda study, trial: times.append(time.perf_counter())  # noqa: E731 - when each trial ended
    sampler = optuna.samplers.RandomSampler(seed=seed)
    if arm == "lrsearch":
        result = lrsearch.optimize(lrsearch_objective, sampler=sampler, n_trials=n_trials, storage=storage,
                                   study_name=name, show_progress_bar=False, artifacts=None, callbacks=[stamp])
        study = result.study
    else:
        study = optuna.create_study(storage=storage, sampler=sampler, study_name=name)
        study.optimize(optuna_objective, n_trials=n_trials, callbacks=[stamp])
    return times, len(study.get_trials(deepcopy=False))


def measure(kinds: dict[str, int], repeats: int, seed: int, where: str | None = None) -> dict:
    """Per storage (with its number of trials), each arm ``repeats`` times, the arms alternating."""
    rows: dict[str, dict] = {}
    loads = [os.getloadavg()[0]]
    for kind, n_trials in kinds.items():
        arms = ARMS["rdb" if kind in ("sqlite", "postgres") else "other"]
        runs: dict[str, list[dict[str, float]]] = {arm: [] for arm in arms}
        for rep in range(repeats):
            for arm in arms if rep % 2 == 0 else arms[::-1]:
                with tempfile.TemporaryDirectory(dir=where) as folder:
                    name = f"overhead_{arm}_{kind}_{rep}_{os.getpid()}_{time.time_ns()}"
                    times, held = run_arm(arm, kind, n_trials, seed + rep, folder, name)
                    if held < n_trials:
                        raise RuntimeError(f"{arm} on {kind}: {held} trials stored, {n_trials} run")
                    runs[arm].append(windows(times, n_trials))
                loads.append(os.getloadavg()[0])
        keys = list(runs["optuna"][0])
        med = {arm: {k: statistics.median(r[k] for r in runs[arm]) for k in keys} for arm in runs}
        rows[kind] = {"trials": n_trials, "median": med, "runs": runs,
                      "overhead": {k: med["lrsearch"][k] - med[arms[-2]][k] for k in keys}}
    return {"repeats": repeats, "seed": seed, "rows": rows, "dir": where or tempfile.gettempdir(),
            "load": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)}}


def table(data: dict) -> str:
    """One row per storage and window; "beyond Optuna" is against the Optuna arm with the heartbeat
    lrsearch runs where that applies (SQLite, PostgreSQL), against plain Optuna elsewhere."""
    head = ["storage", "window", "Optuna ms/trial", "Optuna + heartbeat", "lrsearch ms/trial",
            "beyond Optuna", "beyond Optuna + heartbeat", "ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, row in data["rows"].items():
        med, n = row["median"], row["trials"]
        width = min(100, n // 2)
        label = {"first": f"trials 1-{width}", "last": f"last {width} (to {n:,})"}
        for k in row["overhead"]:
            o, s, hb = med["optuna"][k], med["lrsearch"][k], med.get("optuna-hb", {}).get(k)
            name = label[k] if k in label else f"{width} to {int(k):,}"
            with_hb = "-" if hb is None else f"{hb:.1f}"
            beyond_hb = "-" if hb is None else f"{s - hb:+.1f}"
            lines.append(f"| {kind} | {name} | {o:.1f} | {with_hb} | {s:.1f} | {s - o:+.1f} | {beyond_hb} | "
                         f"{s / (o if hb is None else hb):.2f}x |")
    lines.append("")
    for kind, row in data["rows"].items():
        over = row["overhead"]
        growth = f"{over['last'] / over['first']:.2f}x" if over["first"] > 0 else "- (no overhead at the first)"
        lines.append(f"{kind}: overhead at the last {min(100, row['trials'] // 2)} / at the first = {growth}")
    ld = data["load"]
    lines.append(f"\nload average (1 min) during the run: min {ld['min']:.2f}, median {ld['median']:.2f}, "
                 f"max {ld['max']:.2f} on {os.cpu_count()} cores; medians of {data['repeats']} runs per arm; "
                 f"study files in {data['dir']}.")
    return "\n".join(lines)


def profile(n_trials: int, seed: int, top: int, kind: str) -> str:
    """cProfile of one lrsearch run: the functions that take its time."""
    with tempfile.TemporaryDirectory() as folder:
        prof = cProfile.Profile()
        prof.runcall(run_arm, "lrsearch", kind, n_trials, seed, folder, "overhead_profile")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def _have(kind: str) -> bool:
    return "postgres" not in kind or bool(os.environ.get("LRSEARCH_PG_URL"))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per study of the overhead table (>= 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per arm and storage (>= 1)")
    parser.add_argument("--storages", default="memory,sqlite,journal,postgres",
                        help="comma-separated, or '' for no overhead table; postgres only with LRSEARCH_PG_URL")
    parser.add_argument("--growth", default=GROWTH, help="storage:trials,... of the growth table (one run an "
                        "arm), or '' for none")
    parser.add_argument("--workers", type=int, default=8, help="processes of the worker table (0: none)")
    parser.add_argument("--worker-trials", type=int, default=2000, help="trials of each worker-table study")
    parser.add_argument("--worker-storages", default=WORKER_KINDS, help="comma-separated: journal, postgres, "
                        "grpc-postgres, grpc (a SQLite file behind the gRPC proxy)")
    parser.add_argument("--budget", type=float, default=60.0, help="the worker table's budgeted run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where the study files go (default: the temp folder; "
                        "/dev/shm takes the disk's fsync out of the comparison)")
    parser.add_argument("--profile", default=None, help="profile one lrsearch run on this storage instead")
    parser.add_argument("--out", default="bench_overhead", help="results file stem under studies/results")
    args = parser.parse_args(argv)
    if args.trials < 2 or args.repeats < 1:
        parser.error(f"--trials must be >= 2 and --repeats >= 1 but got {args.trials} and {args.repeats}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("lrsearch").setLevel(logging.WARNING)
    if args.profile:
        print(profile(args.trials, args.seed, 40, args.profile))
        return {}
    command = "python studies/bench_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    data: dict = {"command": command.strip()}
    parts = [f"# bench_overhead\n\n`{command.strip()}`"]
    kinds = {k: args.trials for k in args.storages.split(",") if k and _have(k)}
    if kinds:
        data["overhead"] = measure(kinds, args.repeats, args.seed, args.dir)
        parts.append(f"## Cost per trial beyond Optuna ({args.trials:,} trials, {args.repeats} runs an arm)\n\n"
                     + table(data["overhead"]))
    growth = {k: int(n) for k, _, n in (g.partition(":") for g in args.growth.split(",") if g) if _have(k)}
    if growth:
        data["growth"] = measure(growth, 1, args.seed, args.dir)
        parts.append("## Growth (one run an arm)\n\n" + table(data["growth"]))
    worker_kinds = [k for k in args.worker_storages.split(",") if k and _have(k)]
    if args.workers and worker_kinds:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            data["workers"] = measure_workers(worker_kinds, args.workers, args.worker_trials, args.budget,
                                              args.seed, folder)
        parts.append(f"## {args.workers} worker processes, {args.worker_trials:,} trials (one run an arm), then a "
                     f"budget of {args.budget:g}\n\n" + worker_table(data["workers"]))
    text = "\n\n".join(parts) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.md").write_text(text)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(data, indent=1))
    return data


if __name__ == "__main__":
    main()
