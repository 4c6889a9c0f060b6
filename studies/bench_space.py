"""What the opt-in parts of the search space buy: the optimizer (family, weight decay) and the
averaging tail (SWA / EMA), each searched by ``lrsearch.optimize`` at the same budget as the
default space, on the same tasks and seeds.

Arms (every one ``lrsearch.optimize(task=..., budget=B, seed_from=lr_find(...))``, range test with
the task's own optimizer, SGD with momentum 0.9 on MNIST-1D; only ``space`` differs):

  schedule    the default space: schedule families and their parameters, warmup, peak LR
  optimizer   + ``OptimizerSpace(("sgd", "nesterov", "adamw", "novograd"), weight_decay=(1e-6, 0.1))``
              (SGD first: the range test's LR is SGD's; the others search an LR ratio to it)
  tail        + ``SearchSpace(tail=True)`` (none / SWA / EMA and their parameters)
  both        + both

Measures per task and seed: the best validation loss at B; the best trial's schedule (and optimizer)
retrained from scratch at full length with training seeds 0, 1, 2 and scored on the test split
(mean loss and accuracy). Then per arm the mean +- std over search seeds and the paired
difference to ``schedule`` (same search seed), with how many seeds it won.

    python studies/bench_space.py                      # 2 tasks x 3 seeds x 4 arms, B=16, 2 workers
    python studies/bench_space.py --quick              # 1 task, 1 seed, B=4, writes nothing
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import optuna

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import mean_std  # noqa: E402
from search_arms import SETUP  # noqa: E402  (bench_search's tasks)
from search_arms import make_task  # noqa: E402

ARMS = ("schedule", "optimizer", "tail", "both")
TASKS = ("mnist1d-mlp", "mnist1d-cnn")
OPTIMIZERS = ("sgd", "nesterov", "adamw", "novograd")
RETRAIN_SEEDS = (0, 1, 2)


def space_for(arm: str) -> lrsearch.SearchSpace:
    optimizer = (lrsearch.OptimizerSpace(OPTIMIZERS, weight_decay=(1e-6, 0.1))
                 if arm in ("optimizer", "both") else None)
    # every family: the space its committed figures were measured on (0.2's default)
    return lrsearch.SearchSpace("all", optimizer=optimizer, tail=arm in ("tail", "both"))


def run_one(job: tuple) -> dict:
    name, arm, seed, budget = job
    harness.quiet()
    epochs, opt, _ = SETUP[name]
    task, data = make_task(name, epochs, opt, "cpu")
    t0 = time.perf_counter()
    result = lrsearch.optimize(task=task, budget=budget, seed_from=harness.range_test(task, seed), space=space_for(arm),
                               storage=optuna.storages.InMemoryStorage(), artifacts=None, seed=seed,
                               study_name=f"{name}-{arm}-{seed}", heartbeat_interval=None)
    search_s = time.perf_counter() - t0
    schedule, optimizer = result.best_schedule, result.best_optimizer
    tests = []
    for s in RETRAIN_SEEDS:
        model = lrsearch.train(task, schedule, seed=s, optimizer=optimizer).model
        tests.append(harness.score(model, data))
    trace = [(float(a), float(b)) for a, b in result.spent_trace()]
    return {"task": name, "arm": arm, "seed": seed, "budget": budget, "final_best": harness.best_at(trace, budget),
            "spent": float(result.spent), "counts": result.counts(), "search_seconds": search_s,
            "schedule": schedule.to_dict(), "optimizer": optimizer.to_dict() if optimizer else None,
            "describe": schedule.describe() + (f" with {optimizer.describe()}" if optimizer else ""),
            "test_loss": statistics.fmean(t["loss"] for t in tests),
            "test_accuracy": statistics.fmean(t["accuracy"] for t in tests) if data.classification else None}


def summarise(runs: list[dict], budget: float, wall: float, command: str) -> str:
    lines = [f"`{command}`: wall {wall:.0f} s; budget {budget:g} full runs per search; test = the best "
             f"retrained with training seeds {list(RETRAIN_SEEDS)} (mean).", "",
             "| task | arm | best val at B | test loss | test acc | test loss vs schedule (paired) | wins | "
             "search s |", "|---|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["task"] for r in runs):
        base = {r["seed"]: r for r in runs if r["task"] == name and r["arm"] == "schedule"}
        for arm in ARMS:
            rows = [r for r in runs if r["task"] == name and r["arm"] == arm]
            if not rows:
                continue
            diffs = [r["test_loss"] - base[r["seed"]]["test_loss"] for r in rows if r["seed"] in base]
            paired = "-" if arm == "schedule" or not diffs else f"{statistics.fmean(diffs):+.4f}"
            wins = "-" if arm == "schedule" or not diffs else f"{sum(d < 0 for d in diffs)}/{len(diffs)}"
            acc = [r["test_accuracy"] for r in rows if r["test_accuracy"] is not None]
            lines.append(f"| {name} | {arm} | {mean_std([r['final_best'] for r in rows])} | "
                         f"{mean_std([r['test_loss'] for r in rows])} | {mean_std(acc) if acc else '-'} | {paired} | "
                         f"{wins} | {statistics.fmean(r['search_seconds'] for r in rows):.0f} |")
    lines += ["", "Best per search:", ""]
    lines += [f"- {r['task']} {r['arm']} seed {r['seed']}: {r['describe']} (val {r['final_best']:.4f}, "
              f"test {r['test_loss']:.4f})" for r in runs]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 task, 1 seed, B=4; writes nothing")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=float)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    names = args.tasks.split(",")[:1] if args.quick else args.tasks.split(",")
    arms = [a for a in args.arms.split(",") if a]
    if set(arms) - set(ARMS) or set(names) - set(SETUP):
        raise SystemExit(f"arms must be among {ARMS} and tasks among {list(SETUP)}")
    budget = args.budget if args.budget is not None else (4.0 if args.quick else 16.0)
    seeds = 1 if args.quick else args.seeds
    jobs = [(n, a, s, budget) for n in names for s in range(seeds) for a in arms]
    jobs.sort(key=lambda j: -SETUP[j[0]][2])  # the slow task first: better packing
    t0 = time.perf_counter()
    runs = []
    for row in harness.pool_map(run_one, jobs, max(1, args.workers)):
        runs.append(row)
        print(f"[{len(runs)}/{len(jobs)} {time.perf_counter() - t0:4.0f}s] {row['task']} {row['arm']} seed "
              f"{row['seed']}: val {row['final_best']:.4f}, test {row['test_loss']:.4f}: {row['describe']}",
              flush=True)
    runs.sort(key=lambda r: (names.index(r["task"]), r["seed"], ARMS.index(r["arm"])))
    command = harness.command(__file__, argv)
    text = summarise(runs, budget, time.perf_counter() - t0, command.strip())
    print(text)
    if not args.quick:
        harness.write("bench_space", "# bench_space: the optimizer and the averaging tail in the search\n\n"
                      + text + "\n", {"command": command, "runs": runs}, json_end="\n")


if __name__ == "__main__":
    main()
