"""Is the schedule found on short runs the right one for the long run? ``SearchResult.schedule_for``
against a grid of strong schedules trained at the full target length.

For each task (MNIST-1D MLP and 1D-CNN with SGD + momentum, the pydoc character-level transformer
LM with AdamW) the *target* run is T optimizer steps (225, 675 and 432):

- **grid** (the reference a user would tune instead): cosine-to-zero, wsd (20% 1-sqrt decay),
  linear-to-zero and constant, each with a 5% linear warmup, over 7 peak LRs a factor 2 apart,
  trained at T with 2 seeds (56 runs; one seed of it, 28 runs, is the compute the search is held to
  a quarter of). The same 28 schedules at T/9 and T/3 (seed 0) are the laws' shared test bed.
- **search**: ``lrsearch.optimize(task=<the task at T/3>, budget=..., seed_from=lr_find(...))``, so
  no trial is longer than T/3 (rungs at T/9 and T/3); the budget is 25% of the one-seed grid's
  compute (range test included). Two search seeds.
- **chosen** = ``result.schedule_for(T)`` and **reused** = ``result.best_schedule`` unchanged (the
  short-run best rebuilt at T), each trained at T (2 seeds) and at 4T (and 10T for the MLP) beside
  the grid's best schedule at T rebuilt at those lengths.
- **laws**: each law form fitted on a search's trials (and on the T/9 + T/3 grid runs) predicts the
  final loss of the 28 grid schedules at T; median absolute relative error against the measured
  mean of 2 seeds.

    python studies/bench_transfer.py --phase grid      # the grid and its short runs (cache: resumable)
    python studies/bench_transfer.py                   # everything; tables to results/bench_transfer.md
    python studies/bench_transfer.py --quick           # smoke run (MLP only, tiny grid, prints only)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import optuna
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from transfer_analysis import EVALS  # noqa: E402
from transfer_analysis import FAMILIES  # noqa: E402
from transfer_analysis import GRID  # noqa: E402
from transfer_analysis import LONGER  # noqa: E402
from transfer_analysis import SEARCH_SHARE  # noqa: E402
from transfer_analysis import SEEDS  # noqa: E402
from transfer_analysis import SETUP  # noqa: E402
from transfer_analysis import SHORT  # noqa: E402
from transfer_analysis import analyse  # noqa: E402
from transfer_analysis import grid_best  # noqa: E402
from transfer_analysis import grid_lr  # noqa: E402
from transfer_analysis import grid_schedule  # noqa: E402
from transfer_analysis import grid_schedules  # noqa: E402
from transfer_analysis import render  # noqa: E402
from transfer_analysis import target_steps  # noqa: E402


# ------------------------------------------------------------------------------------------ runs

def make_task(name: str, epochs: int) -> lrsearch.Task:
    """The task with ``epochs`` evaluations; its full run is ``epochs`` passes over the data."""
    return harness.task_of(harness.load(name, **SETUP[name][3]), epochs, SETUP[name][0])


def run_one(job: tuple[str, str, int, int]) -> dict:
    """Train (task, schedule spec JSON, steps, seed) once with EVALS evaluations; the curve."""
    torch.set_num_threads(1)
    name, spec, steps, seed = job
    schedule = lrsearch.Schedule.from_json(spec)
    start = time.perf_counter()
    result = lrsearch.train(make_task(name, EVALS), schedule, seed=seed, total_steps=steps)
    curve = [v if math.isfinite(v) else None for v in result.values]
    return {"task": name, "variant": variant(name), "schedule": json.loads(spec), "steps": steps, "seed": seed,
            "curve": curve, "final": curve[-1], "seconds": round(time.perf_counter() - start, 3)}


def variant(name: str) -> str:
    """The task's options as a cache key part: a cached run of another variant is never reused."""
    return json.dumps(SETUP[name][3], sort_keys=True)


def _key(job: tuple, variant_of: str | None = None) -> str:
    name, spec, steps, seed = job
    v = variant(name) if variant_of is None else variant_of
    return f"{name}|{v}|{json.dumps(json.loads(spec), sort_keys=True)}|{steps}|{seed}"


def _row_key(row: dict) -> str:
    return _key((row["task"], json.dumps(row["schedule"]), row["steps"], row["seed"]), row.get("variant", "{}"))


class Runner(harness.Runner):
    def __init__(self, workers: int, cache: Path | None) -> None:
        super().__init__(run_one, _key, _row_key, workers, cache)

    def mean(self, name: str, schedule: lrsearch.Schedule, steps: int, seeds=SEEDS) -> float:  # noqa: ANN001
        values = [self.row((name, schedule.to_json(), steps, s))["final"] for s in seeds]
        return math.inf if any(v is None for v in values) else statistics.fmean(values)


def grid_jobs(name: str, grid: int = GRID) -> list[tuple]:
    """The full-length grid (2 seeds) and its short runs (seed 0), longest first."""
    t = target_steps(name)
    specs = [grid_schedule(f, grid_lr(name, k)).to_json() for f in FAMILIES for k in range(grid)]
    jobs = [(name, s, t, seed) for s in specs for seed in SEEDS]
    jobs += [(name, s, max(1, round(t / d)), 0) for d in SHORT for s in specs]
    return jobs


# ---------------------------------------------------------------------------------------- search

KINDS = {"auto": None, "law": True, "rule": False}  # schedule_for(law=...): the default, the law, the rule


def search(name: str, seed: int, journal: Path) -> dict:
    """One search with no trial longer than T/3 (rungs T/9, T/3), its budget a quarter of the
    one-seed grid's compute, kept in a journal file (a finished one is read back, not rerun); what
    it chooses for T and longer (by default, by the law, by the rule) and what its laws predict."""
    torch.set_num_threads(1)
    t = target_steps(name)
    short = t // 3
    task = make_task(name, EVALS)
    budget = SEARCH_SHARE * len(FAMILIES) * GRID * t / short  # in runs of T/3

    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        steps = lrsearch.run_length(trial, short)
        result = lrsearch.train(task, schedule, seed=seed, total_steps=steps,
                                on_eval=lambda k, v: lrsearch.report(trial, v, k, n_evals=EVALS))
        return result.final

    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study_name = f"{name}-{seed}"
    if study_name in optuna.get_all_study_names(storage):
        result = lrsearch.SearchResult(optuna.load_study(study_name=study_name, storage=storage))
    else:
        start = time.perf_counter()
        result = lrsearch.optimize(objective, budget=budget, seed_from=harness.range_test(task, seed), seed=seed,
                                   space=lrsearch.SearchSpace("all"),  # every family: as its figures were measured
                                   storage=storage, study_name=study_name, artifacts=None, heartbeat_interval=None)
        result.study.set_user_attr("bench_seconds", round(time.perf_counter() - start, 1))
    model = result.loss_model()
    laws = {}
    curves = result.curves()
    for law in lrsearch.lossmodel.LAWS:
        fitted = lrsearch.LossModel(laws=(law,), overfit=False).fit(curves)
        laws[law] = {"describe": fitted.describe(),
                     "grid": {s.to_json(): fitted.predict(s, t).value for s in grid_schedules(name)}}
    choices = {str(m): {kind: _choice(result.choice_for(m * t, law)) for kind, law in KINDS.items()}
               for m in (1, *LONGER[name])}
    return {"task": name, "seed": seed, "spent": result.spent, "budget": budget,
            "seconds": result.study.user_attrs.get("bench_seconds"), "counts": result.counts(),
            "reused": result.best_schedule.to_dict(), "reused_value": result.best_value, "model": model.describe(),
            "model_grid": {s.to_json(): model.predict(s, t).value for s in grid_schedules(name)}, "laws": laws,
            "choices": choices}


def _choice(choice) -> dict:  # noqa: ANN001
    law = choice.law_predicted or choice.predicted  # the law's own value, trusted or not: what is benchmarked
    return {"schedule": choice.schedule.to_dict(), "predicted": law.value, "by": choice.by,
            "std": law.std, "lr_shift": choice.lr_shift, "trusted": choice.trusted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("grid", "all"), default="all")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", default=str(harness.OUT / "bench_transfer_runs.jsonl"))
    parser.add_argument("--tasks", nargs="*", default=list(SETUP))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cache = Path(args.cache)
    runner = Runner(args.workers, cache)
    start = time.perf_counter()
    try:
        for name in args.tasks:
            print(f"{name}: grid at T = {target_steps(name)} steps", flush=True)
            runner.run(grid_jobs(name))
        if args.phase == "grid":
            return
        searches = {}
        for name in args.tasks:
            for seed in SEEDS:
                print(f"{name}: search seed {seed} ...", end="", flush=True)
                searches[name, seed] = search(name, seed, cache.with_name(f"{cache.stem}_search.log"))
                print(" done", flush=True)
        for name in args.tasks:
            t = target_steps(name)
            best = grid_best(runner, name)
            jobs = []
            for seed in SEEDS:
                rec = searches[name, seed]
                for m, kinds in rec["choices"].items():
                    specs = [c["schedule"] for c in kinds.values()] + [rec["reused"]]
                    specs += [best.to_dict()] if m != "1" else []
                    jobs += [(name, json.dumps(spec), int(m) * t, s) for spec in specs for s in SEEDS]
            print(f"{name}: chosen, reused and longer runs", flush=True)
            runner.run(jobs)
        report = analyse(runner, searches, args.tasks)
        report["meta"] = {"seconds": round(time.perf_counter() - start), "trained": runner.trained,
                          "torch": torch.__version__, "load": os.getloadavg()[0], "cpus": os.cpu_count()}
        harness.write("bench_transfer", data=report)
        text = render(report)
        harness.write("bench_transfer", text)
        print(text)
    finally:
        runner.close()


if __name__ == "__main__":
    main()
