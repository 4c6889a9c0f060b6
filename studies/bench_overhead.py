"""What lrsearch costs per trial beyond plain Optuna, and whether that cost grows with the study.

A no-training objective (a schedule sampled, a run length asked, 5 evaluations reported, a value
returned) is run by ``lrsearch.optimize`` and, side by side, by plain Optuna (as many suggestions
as lrsearch's space makes, 7, ``trial.report`` and ``trial.should_prune`` 5 times, Optuna's default
pruner), both with ``RandomSampler(seed)``, on each storage: in-memory, a SQLite file, a journal
file, and PostgreSQL when ``LRSEARCH_PG_URL`` is set (``.ci/postgres`` starts a throwaway one).
Each storage is given as a user would give it: lrsearch a ``.db`` path (so it runs its default
heartbeat) or a ``.log`` path, Optuna a ``sqlite:///`` URL or a ``JournalStorage``. The arms
alternate within each repeat (the machine is shared); the table shows medians of ``--repeats``.

The time per trial is read between trial ends (an Optuna callback, run after lrsearch's own): over
trials 1-100 ("first 100") and over the last 100 of the study, plus the 100 trials ending at 1,000
and 10,000 when the study reaches them. Overhead = lrsearch - Optuna, in ms per trial.

    python studies/bench_overhead.py                         # 200 trials, 3 repeats, every storage
    python studies/bench_overhead.py --trials 1000 --storages sqlite,journal
    python studies/bench_overhead.py --trials 200 --profile  # cProfile of one lrsearch SQLite run
    python studies/bench_overhead.py --workers 8 --trials 2000  # 8 processes on one journal file

Writes ``studies/results/bench_overhead.{md,json}`` (``--out`` to change the stem).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import math
import multiprocessing
import os
import pstats
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import optuna

import lrsearch


RESULTS = Path(__file__).resolve().parent / "results"
FAMILIES = tuple(lrsearch.SearchSpace().families)
N_EVALS = 5
FULL_STEPS = 900


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
    """What a user would pass for ``kind`` to ``lrsearch.optimize`` (arm "lrsearch") or to Optuna."""
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    if kind == "sqlite":
        path = os.path.join(folder, f"{name}.db")
        return path if arm == "lrsearch" else f"sqlite:///{path}"
    if kind == "journal":
        path = os.path.join(folder, f"{name}.log")
        if arm == "lrsearch":
            return path
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    if kind == "postgres":
        return os.environ["LRSEARCH_PG_URL"]
    raise ValueError(f"storages must be memory, sqlite, journal or postgres but got {kind!r}.")


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


def measure(kinds: list[str], n_trials: int, repeats: int, seed: int, where: str | None = None) -> dict:
    rows: dict[str, dict] = {}
    loads = [os.getloadavg()[0]]
    for kind in kinds:
        runs: dict[str, list[dict[str, float]]] = {"optuna": [], "lrsearch": []}
        for rep in range(repeats):
            order = ("optuna", "lrsearch") if rep % 2 == 0 else ("lrsearch", "optuna")
            for arm in order:
                with tempfile.TemporaryDirectory(dir=where) as folder:
                    name = f"overhead_{arm}_{kind}_{rep}_{os.getpid()}_{time.time_ns()}"
                    times, held = run_arm(arm, kind, n_trials, seed + rep, folder, name)
                    if held < n_trials:
                        raise RuntimeError(f"{arm} on {kind}: {held} trials stored, {n_trials} run")
                    runs[arm].append(windows(times, n_trials))
                loads.append(os.getloadavg()[0])
        keys = list(runs["optuna"][0])
        med = {arm: {k: statistics.median(r[k] for r in runs[arm]) for k in keys} for arm in runs}
        rows[kind] = {"median": med, "runs": runs,
                      "overhead": {k: med["lrsearch"][k] - med["optuna"][k] for k in keys}}
    return {"trials": n_trials, "repeats": repeats, "seed": seed, "rows": rows, "dir": where or tempfile.gettempdir(),
            "load": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)}}


def table(data: dict) -> str:
    keys = list(next(iter(data["rows"].values()))["overhead"])
    width = min(100, data["trials"] // 2)
    label = {"first": f"trials 1-{width}", "last": f"last {width} (to {data['trials']:,})"}
    head = ["storage", "window", "Optuna ms/trial", "lrsearch ms/trial", "overhead ms/trial", "ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for kind, row in data["rows"].items():
        for k in keys:
            o, s = row["median"]["optuna"][k], row["median"]["lrsearch"][k]
            name = label[k] if k in label else f"{width} to {int(k):,}"
            lines.append(f"| {kind} | {name} | {o:.1f} | {s:.1f} | {s - o:+.1f} | "
                         f"{s / o:.2f}x |")
    lines.append("")
    for kind, row in data["rows"].items():
        over = row["overhead"]
        growth = f"{over['last'] / over['first']:.2f}x" if over["first"] > 0 else "- (no overhead at the first)"
        lines.append(f"{kind}: overhead at the last 100 / at the first 100 = {growth}")
    ld = data["load"]
    lines.append(f"\nload average (1 min) during the run: min {ld['min']:.2f}, median {ld['median']:.2f}, "
                 f"max {ld['max']:.2f} on {os.cpu_count()} cores; medians of {data['repeats']} runs per arm, "
                 f"{data['trials']:,} trials each; study files in {data['dir']}.")
    return "\n".join(lines)


def profile(n_trials: int, seed: int, top: int) -> str:
    """cProfile of one lrsearch run on a SQLite file: the functions that take its time."""
    with tempfile.TemporaryDirectory() as folder:
        prof = cProfile.Profile()
        prof.runcall(run_arm, "lrsearch", "sqlite", n_trials, seed, folder, "overhead_profile")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def range_test() -> lrsearch.RangeTestResult:
    """A made-up range test (a valley near 3e-3, divergence above 0.3) to seed the workers' study."""
    lrs = np.geomspace(1e-6, 1.0, 100)
    losses = 1.0 + 0.1 * (np.log10(lrs) + 2.5) ** 2 + 5.0 * (lrs > 0.3)
    return lrsearch.RangeTestResult(lrs, losses, losses, losses, {"num_iter": 100}, iterations=100)


def worker(arm: str, path: str, name: str, n_trials: int | None, seed: int, budget: float | None) -> None:
    """One worker process: ``optimize`` on the shared journal file."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    if arm == "lrsearch":  # the space the study was seeded in (the seeds' LRs lie in its range)
        lrsearch.optimize(lrsearch_objective, storage=path, study_name=name, n_trials=n_trials, budget=budget,
                          space=lrsearch.SearchSpace().with_lr(range_test()), sampler=sampler,
                          show_progress_bar=False, artifacts=None)
    else:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
        optuna.load_study(study_name=name, storage=storage, sampler=sampler).optimize(
            optuna_objective, n_trials=n_trials)


def run_workers(arm: str, workers: int, n_trials: int | None, folder: str, seed: int,
                budget: float | None = None) -> dict:
    """``workers`` processes on one journal file; wall time and what the study holds after."""
    path, name = os.path.join(folder, f"{arm}_{budget}.log"), f"workers_{arm}"
    if arm == "lrsearch":  # prepared once (created, seeded); the workers join it
        lrsearch.optimize(lrsearch_objective, storage=path, study_name=name, n_trials=0, seed_from=range_test(),
                          show_progress_bar=False, artifacts=None)
    else:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
        optuna.create_study(storage=storage, study_name=name)
    each = None if n_trials is None else n_trials // workers
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=worker, args=(arm, path, name, each, seed + i, budget)) for i in range(workers)]
    start = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    wall = time.perf_counter() - start
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(path))
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    states = {s.name: n for s in optuna.trial.TrialState if (n := sum(t.state == s for t in trials))}
    out = {"wall_s": wall, "trials": len(trials), "states": states, "exit_codes": [p.exitcode for p in procs],
           "trials_per_s": sum(t.state.is_finished() for t in trials) / wall}
    if arm == "lrsearch":
        ran: dict[str, int] = {}
        for t in trials:
            key = t.user_attrs.get("seed_key")
            if key and t.state.name in ("COMPLETE", "PRUNED") and "duplicate_of" not in t.user_attrs:
                ran[key] = ran.get(key, 0) + 1
        out["seeds_ran"] = ran
        out["spent"] = lrsearch.SearchResult(optuna.load_study(study_name=name, storage=storage)).spent
    return out


def measure_workers(workers: int, n_trials: int, budget: float, seed: int) -> dict:
    """Throughput of ``workers`` processes, lrsearch and Optuna alternating, then one budgeted run."""
    runs: dict[str, list[dict]] = {"optuna": [], "lrsearch": []}
    with tempfile.TemporaryDirectory() as folder:
        for arm in ("optuna", "lrsearch"):
            runs[arm].append(run_workers(arm, workers, n_trials, folder, seed))
        budgeted = run_workers("lrsearch", workers, None, folder, seed, budget=budget)
    return {"workers": workers, "trials": n_trials, "budget": budget, "runs": runs, "budgeted": budgeted,
            "load": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials per study (>= 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per arm and storage (>= 1)")
    parser.add_argument("--storages", default="memory,sqlite,journal,postgres",
                        help="comma-separated; postgres only when LRSEARCH_PG_URL is set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where the study files go (default: the temp folder; "
                        "/dev/shm takes the disk's fsync out of the comparison)")
    parser.add_argument("--workers", type=int, default=0, help="instead: this many processes on a journal file")
    parser.add_argument("--budget", type=float, default=60.0, help="with --workers: the budgeted run's budget")
    parser.add_argument("--profile", action="store_true", help="profile one lrsearch SQLite run instead")
    parser.add_argument("--out", default="bench_overhead", help="results file stem under studies/results")
    args = parser.parse_args(argv)
    if args.trials < 2 or args.repeats < 1:
        parser.error(f"--trials must be >= 2 and --repeats >= 1 but got {args.trials} and {args.repeats}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("lrsearch").setLevel(logging.WARNING)
    if args.profile:
        print(profile(args.trials, args.seed, 40))
        return {}
    RESULTS.mkdir(exist_ok=True)
    if args.workers:
        data = measure_workers(args.workers, args.trials, args.budget, args.seed)
        o, s, b = data["runs"]["optuna"][0], data["runs"]["lrsearch"][0], data["budgeted"]
        text = (f"{args.workers} workers, one journal file, {args.trials:,} trials: Optuna {o['trials_per_s']:.1f} "
                f"trials/s, lrsearch {s['trials_per_s']:.1f} ({s['trials_per_s'] / o['trials_per_s']:.2f}x); "
                f"states {o['states']} / {s['states']}; seeds that ran: {set(s['seeds_ran'].values())} each; "
                f"budget {args.budget:g}: spent {b['spent']:.2f} in "
                f"{b['trials']} trials, states {b['states']}; load {data['load']:.2f}")
        print(text)
        (RESULTS / f"{args.out}_workers.md").write_text(f"# bench_overhead --workers\n\n{text}\n")
        (RESULTS / f"{args.out}_workers.json").write_text(json.dumps(data, indent=1))
        return data
    kinds = [k for k in args.storages.split(",") if k and (k != "postgres" or os.environ.get("LRSEARCH_PG_URL"))]
    data = measure(kinds, args.trials, args.repeats, args.seed, args.dir)
    text = table(data)
    print(text)
    command = "python studies/bench_overhead.py " + " ".join(argv if argv is not None else sys.argv[1:])
    (RESULTS / f"{args.out}.md").write_text(f"# bench_overhead\n\n`{command.strip()}`\n\n{text}\n")
    (RESULTS / f"{args.out}.json").write_text(json.dumps({**data, "command": command.strip()}, indent=1))
    return data


if __name__ == "__main__":
    main()
