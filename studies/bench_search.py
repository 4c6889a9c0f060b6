"""Search efficiency and result quality: lrsearch against plain Optuna, random search, strong defaults
and Schedule-Free AdamW, at equal budgets in optimizer steps.

Budget unit: one *full run* = the task's epochs (``SETUP``) x its optimizer steps per epoch. Every
method gets the same budget ``B`` (default 16 full runs) per task and seed and is charged every
optimizer step it trains: pruned trials what they ran, short (rung) trials their fraction of a run,
range tests their steps. Traces are (cumulative full runs spent, best validation loss so far); a
method is judged on its best at ``B`` (a method that stops below ``B`` keeps its best).

Methods, every one on the same ``lrsearch.Task`` data, model, loss and batching:

  lrsearch           ``lrsearch.optimize(task=..., budget=B, seed_from=lr_find(...))`` with its
                     defaults: grouped multivariate TPE, range-test seeds, the ``ForecastPruner``,
                     successive halving over run length (``Rungs``: 1/9, 1/3, full; promoted runs
                     retrain longer). Its range test (100 steps) is charged to its budget.
  (a) tpe-median     plain Optuna: ``TPESampler(seed)`` + ``MedianPruner`` over lr log-uniform in
                     [1e-6, 1] and the same families and family parameters; no seeding, no rungs
                     (every trial a full run, through the same ``optimize`` with ``rungs=None``).
  (b) tpe-hyperband  the same with ``HyperbandPruner`` (Optuna's recommended pairing with TPE).
  (c) random         ``RandomSampler(seed)`` over (a)'s space, no pruning.
  (d) defaults       a range test, then four fixed full runs: cosine + 5% linear warmup at
                     sqrt(midpoint x steep); one-cycle with fastai's defaults (pct_start 0.25, div 25,
                     final LR peak/1e5, momentum 0.95-0.85) at ``steep``; AdamW (whatever the task's
                     optimizer) at 3e-4 and at 1e-3, cosine + 5% warmup. It spends what those cost
                     (about 4.4 full runs), well under B: no search.
  (e) schedulefree   ``schedulefree.AdamWScheduleFree`` (warmup 5% of the run, AdamW's weight decay),
                     no schedule at all; its LR tuned by ``TPESampler(seed)`` + ``MedianPruner`` over
                     log-uniform [1e-5, 1e-1], one full run per trial, a new trial only while one
                     fits in B (the rule ``optimize`` applies). Its loop is ``train_schedulefree``
                     here: the same batches, steps and evaluation as ``lrsearch.train``, plus
                     ``optimizer.train()/eval()`` and, for BatchNorm models, running statistics
                     recomputed under the evaluation weights from up to 50 training batches before
                     each evaluation (the package's README); those forward passes are not charged.

Measures, per task and seed (3 seeds: the seed drives the samplers, the range test and the training
seed of every trial):

  - the best validation loss at budget B;
  - for each pair (method M, baseline X): the budget M needs to reach X's final best, divided by
    the budget X itself needed to get there (median over seeds, unreached seeds count as infinite,
    with how many seeds reached it); also to within 1% of X's final best;
  - the test loss (and accuracy, for classification) of each method's best, retrained from scratch
    at full length with training seed 0 and scored on the held-out test split;
  - seed noise: the std over seeds of one *fixed* schedule (AdamW 1e-3, cosine + 5% warmup, trained
    inside (d) with each seed's training seed: no search, no range test in it), on validation and
    test; and the std over seeds of each method's final best. The goal checks use the fixed
    schedule's std as the noise.

Outputs: ``studies/results/<name>.json`` (every run, raw traces), ``<name>.md`` (the tables and the
goal checks), ``<name>_<task>.png`` (best-so-far vs budget, one line per seed, a colour per
method; test losses beside it), the same tables on stdout.

    python studies/bench_search.py                    # 5 tasks x 3 seeds x 6 methods, B=16
    python studies/bench_search.py --quick            # smoke: 1 task, 1 seed, B=6, writes nothing
    python studies/bench_search.py --tasks mnist1d-mlp --seeds 1 --name bench_search_mlp
    python studies/bench_search.py --from-json studies/results/bench_search.json   # re-summarise
    python studies/bench_search.py --device cuda --workers 2      # spawned workers on the GPU

Budget and run lengths: B = 16 full runs for every method; 9 epochs (evaluations) per full run
(225 SGD steps on MNIST-1D, 171 Adam steps on the regression), 6 for char-lm (144 AdamW steps: its
own default of 9 would make it alone over half the benchmark's time). Wall time: the jobs (one per
task x method x seed, 90 in all) are spread over ``--workers`` processes, longest first; the
script prints an estimate from ``SETUP``'s measured seconds per full run before it starts. From
``--quick`` timings on the 2-core dev machine while other work shared it, the full run is ~24
minutes with 2 workers (char-lm ~36% of it, the two CNNs ~55%), a few minutes more or less with
the machine's load.
Plus lrsearch's own cost per trial against plain Optuna (no training), as one more job.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed
from pathlib import Path

import optuna
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import search_arms  # noqa: E402
import tasks as task_zoo  # noqa: E402
from search_arms import SETUP  # noqa: E402
from search_arms import _guarded  # noqa: E402
from search_report import LABEL  # noqa: E402, F401  (the tests read it here)
from search_report import METHODS  # noqa: E402
from search_report import plot  # noqa: E402
from search_report import summarise  # noqa: E402


# Cost of a job beyond its budget, in full runs (lrsearch's short runs evaluate as often as full ones),
# for ordering the jobs, longest first, and for the estimate printed at the start.
JOB_RUNS = {"lrsearch": 1.4, "tpe-median": 1.0, "tpe-hyperband": 1.0, "random": 1.0, "defaults": 0.0,
            "schedulefree": 1.0}


# -------------------------------------------------------------------------------------- overhead

def overhead(n: int = 40) -> str:
    """ms per trial: plain Optuna suggesting an equivalent space vs lrsearch.optimize, no training.

    In a full run it runs as one more job beside the training jobs, so it is timed under that load.
    """
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = lrsearch.SearchSpace("all", lr=(1e-5, 1.0))

    def plain(trial: optuna.trial.Trial) -> float:
        family = trial.suggest_categorical("family", list(space.families))
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        for k in range(3):
            trial.suggest_float(f"{family}.p{k}", 0.1, 0.9)
        for step in range(5):
            trial.report(lr + step, step)
        return lr

    def ours(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        for step in range(5):
            lrsearch.report(trial, schedule.lr + step, step, n_evals=5)
        return schedule.lr

    rows = ["| storage | plain Optuna ms/trial | lrsearch ms/trial | lrsearch + dashboard artifacts ms/trial |",
            "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("sqlite", "journal"):
            times = []
            for label in ("plain", "ours", "artifacts"):
                store = f"sqlite:///{tmp}/{label}.db" if kind == "sqlite" else f"{tmp}/{label}.log"
                t0 = time.perf_counter()
                if label == "plain":
                    storage = (optuna.storages.RDBStorage(store) if kind == "sqlite" else
                               optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(store)))
                    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=0))
                    study.optimize(plain, n_trials=n)
                else:
                    lrsearch.optimize(ours, n_trials=n, storage=store, study_name="o", heartbeat_interval=None,
                                      artifacts=f"{tmp}/art" if label == "artifacts" else None,
                                      pruner=optuna.pruners.NopPruner())
                times.append(1e3 * (time.perf_counter() - t0) / n)
            rows.append(f"| {kind} | {times[0]:.1f} | {times[1]:.1f} | {times[2]:.1f} |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------ main

def write(saved: dict, name: str) -> str:
    """``<name>.json`` (everything), ``<name>.md`` (the tables) and one PNG per task."""
    runs = saved["runs"]
    table = summarise(runs)
    if saved.get("failed"):
        table += "\n\n## Failed jobs\n\n" + "\n".join(f"- {f['job']}: {f['error'].splitlines()[-1]}"
                                                         for f in saved["failed"])
    if saved.get("overhead"):
        table += "\n\n## lrsearch's own cost per trial (no training)\n\n" + saved["overhead"]
    if saved.get("command"):
        table = f"`{saved['command']}`: wall {saved.get('wall_s', math.nan):.0f} s.\n\n" + table
    harness.write(name, table + "\n", saved)
    plot(runs, name)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 task, 1 seed, budget 6; writes nothing")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float, help="full runs per method (default 16; 6 with --quick)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tasks", default=",".join(SETUP))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--name", default="bench_search", help="output file stem under studies/results")
    parser.add_argument("--no-overhead", action="store_true", help="skip the cost-per-trial table")
    parser.add_argument("--seed-families", default="", help="comma-separated; default: every family")
    parser.add_argument("--from-json", help="re-summarise a saved run (and rewrite <name>.md and plots)")
    args = parser.parse_args(argv)
    harness.quiet()
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        if not isinstance(saved, dict) or "runs" not in saved:
            raise SystemExit(f"{args.from_json} is not a run of this version of the benchmark.")
        print(write(saved, args.name))
        return
    search_arms.SEED_FAMILIES = tuple(f for f in args.seed_families.split(",") if f)
    names = args.tasks.split(",")[:1] if args.quick else args.tasks.split(",")
    unknown = [n for n in names if n not in SETUP or n not in task_zoo.TASKS]
    if unknown:
        raise SystemExit(f"unknown or unavailable tasks {unknown}; SETUP has {list(SETUP)}, "
                         f"tasks.TASKS has {list(task_zoo.TASKS)}")
    methods = [m for m in args.methods.split(",") if m]
    if set(methods) - set(METHODS):
        raise SystemExit(f"methods must be among {METHODS}")
    seeds = 1 if args.quick else args.seeds
    budget = args.budget if args.budget is not None else (6.0 if args.quick else 16.0)
    jobs = [(t, m, s, args.device, budget) for t in names for s in range(seeds) for m in methods]
    cost = {j: SETUP[j[0]][2] * (budget * JOB_RUNS[j[1]] + (5.5 if j[1] == "defaults" else 1.0))  # + retrain
            for j in jobs}
    jobs.sort(key=lambda j: -cost[j])  # longest first: better packing on the workers
    print(f"{len(jobs)} jobs, budget {budget:g} full runs; estimated {sum(cost.values()) / 60:.1f} CPU-minutes, "
          f"~{sum(cost.values()) / 60 / max(1, args.workers):.1f} min on {args.workers} workers", flush=True)
    t0 = time.perf_counter()
    done: list[dict] = []
    cost_table = ""
    with_overhead = not (args.quick or args.no_overhead)
    if args.workers > 1:
        ctx = multiprocessing.get_context("spawn" if args.device.startswith("cuda") else "fork")  # CUDA: no fork
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            pending = pool.submit(overhead) if with_overhead else None
            for future in as_completed([pool.submit(_guarded, job) for job in jobs]):
                done.append(future.result())
                _progress(done[-1], len(done), len(jobs), t0)
            cost_table = pending.result() if pending else ""
    else:
        for job in jobs:
            done.append(_guarded(job))
            _progress(done[-1], len(done), len(jobs), t0)
        cost_table = overhead() if with_overhead else ""
    runs = sorted((r for r in done if not r.get("failed")),
                  key=lambda r: (names.index(r["task"]), r["seed"], METHODS.index(r["method"])))
    failed = [r for r in done if r.get("failed")]
    if args.quick:
        print(summarise(runs))
    else:
        saved = {"command": harness.command(__file__, argv),
                 "budget": budget, "setup": SETUP, "wall_s": time.perf_counter() - t0, "runs": runs, "failed": failed,
                 "overhead": cost_table}
        print(write(saved, args.name))
    print(f"wall {time.perf_counter() - t0:.0f} s" + (f"; {len(failed)} FAILED jobs" if failed else ""))
    if failed:
        raise SystemExit(1)


def _progress(r: dict, done: int, total: int, t0: float) -> None:
    if r.get("failed"):
        print(f"[{done}/{total} {time.perf_counter() - t0:5.0f}s] FAILED {r['job']}:\n{r['error']}", flush=True)
        return
    print(f"[{done}/{total} {time.perf_counter() - t0:5.0f}s] {r['task']} {r['method']} seed {r['seed']}: "
          f"best {r['final_best']:.4f} after {r['spent']:.2f} runs, {r['trials']} trials, "
          f"test {r['test_loss']:.4f}, {r['seconds']:.1f}s", flush=True)


if __name__ == "__main__":
    main()
