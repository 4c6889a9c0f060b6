"""How far does the best peak LR move with the run length? Measures beta in
``lr_long = lr_short * (T_long / T_short) ** -beta``.

A search that trains candidates at 1/9 and 1/3 of the full run and promotes the best to longer
runs has to move the promoted peak LR; this measures by how much. For each task (MNIST-1D MLP,
1D-CNN and BatchNorm 1D-CNN with SGD + momentum, the pydoc character-level transformer with AdamW,
the synthetic regression with Adam), each family (cosine, constant and wsd at their defaults, each
with a 5% linear warmup) and each length (E/9, E/3 and E epochs of ``lrsearch.Task``, E a multiple
of 9 near the task's default), it trains a grid of 9 log-spaced peak LRs with 2 seeds
(``lrsearch.train``) and takes the final validation loss (``TrainResult.final``, the mean of the
seeds).

- The best LR of each (task, family, length): the best grid point, refined by a parabola through
  (log lr, mean loss) at that point and its two neighbours. A best at the grid's edge widens the
  grid by one point on that side (at most 3 times; the tables flag it).
- beta per (task, family): the least-squares slope of -log(best lr) against log(length) over the
  three lengths; the rung steps 1/9 -> 1/3 and 1/3 -> 1 separately; the pooled median.
- What the rule buys: the full-length loss at the 1/9-length best LR, unchanged and moved by the
  pooled median beta (``lr * 9 ** -beta``), both trained at full length with the same 2 seeds,
  relative to the best full-length grid loss. Interpolated on the full-length grid (not trained):
  the same for the 1/3-length best LR, and for beta pooled without the task itself.

Writes ``studies/results/bench_lr_shift.json`` (every run) and ``bench_lr_shift.md`` (the tables)
and prints the tables.

    python studies/bench_lr_shift.py                 # full run: 870 runs, ~19 min on one core of a busy
                                                     # 2-core machine (~5 min of it is char-lm)
    python studies/bench_lr_shift.py --quick         # smoke run (two cheap tasks, prints only, ~30 s)
    python studies/bench_lr_shift.py --workers 2     # only when nothing else needs the CPUs
    python studies/bench_lr_shift.py --cache runs.jsonl   # resumable; a finished cache re-renders the tables
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from lr_shift_analysis import DIVISORS  # noqa: E402
from lr_shift_analysis import FAMILIES  # noqa: E402
from lr_shift_analysis import GRID  # noqa: E402
from lr_shift_analysis import MAX_WIDEN  # noqa: E402
from lr_shift_analysis import SEEDS  # noqa: E402
from lr_shift_analysis import SETUP  # noqa: E402
from lr_shift_analysis import grid_lr  # noqa: E402
from lr_shift_analysis import interpolate  # noqa: E402
from lr_shift_analysis import markdown  # noqa: E402
from lr_shift_analysis import pooled  # noqa: E402
from lr_shift_analysis import refine  # noqa: E402
from lr_shift_analysis import rel  # noqa: E402
from lr_shift_analysis import schedule  # noqa: E402
from lr_shift_analysis import slope_beta  # noqa: E402


# ------------------------------------------------------------------------------------------ runs

def run_one(job: tuple[str, str, int, float, int]) -> dict:
    """Train (task, family, epochs, lr, seed) once; the final validation loss (None if not finite)."""
    torch.set_num_threads(1)
    name, family, epochs, lr, seed = job
    task = harness.task_of(harness.load(name), epochs, SETUP[name][0])
    start = time.perf_counter()
    result = lrsearch.train(task, schedule(family, lr), seed=seed)
    final = result.final if math.isfinite(result.final) else None
    return {"task": name, "family": family, "epochs": epochs, "lr": lr, "seed": seed, "final": final,
            "steps": result.steps, "seconds": round(time.perf_counter() - start, 3)}


def _key(job: tuple) -> str:
    name, family, epochs, lr, seed = job
    return f"{name}|{family}|{epochs}|{lr!r}|{seed}"


def _row_key(row: dict) -> str:
    return _key((row["task"], row["family"], row["epochs"], row["lr"], row["seed"]))


class Runner(harness.Runner):
    def __init__(self, workers: int, cache: str | None) -> None:
        super().__init__(run_one, _key, _row_key, workers, cache)

    def loss(self, job: tuple) -> float:
        value = self.row(job)["final"]
        return math.inf if value is None else value


def mean_loss(runner: Runner, name: str, family: str, epochs: int, lr: float, seeds) -> float:  # noqa: ANN001
    values = [runner.loss((name, family, epochs, lr, s)) for s in seeds]
    return math.inf if not all(map(math.isfinite, values)) else statistics.fmean(values)


# ------------------------------------------------------------------------------------------- run

def measure(names: list[str], families: tuple[str, ...], seeds: tuple[int, ...], grid: range, runner: Runner,
            max_widen: int) -> dict:
    cells = {(n, f, d): list(grid) for n in names for f in families for d in DIVISORS}
    widened: dict[tuple, int] = {c: 0 for c in cells}

    def epochs(n: str, d: int) -> int:
        return SETUP[n][1] // d

    for round_ in range(max_widen + 1):
        print(f"grid round {round_}:", flush=True)
        runner.run([(n, f, epochs(n, d), grid_lr(n, k), s) for (n, f, d), ks in cells.items() for k in ks
                    for s in seeds])
        grew = False
        for (n, f, d), ks in cells.items():
            losses = {k: mean_loss(runner, n, f, epochs(n, d), grid_lr(n, k), seeds) for k in ks}
            best = refine(ks, losses, n)
            if best["edge"] and widened[n, f, d] < max_widen:
                ks.append(min(ks) - 1 if best["edge"] in ("low", "all diverged") else max(ks) + 1)
                ks.sort()
                widened[n, f, d] += 1
                grew = True
        if not grew:
            break

    out: dict = {"cells": {}, "betas": {}}
    for (n, f, d), ks in cells.items():
        e = epochs(n, d)
        losses = {k: mean_loss(runner, n, f, e, grid_lr(n, k), seeds) for k in ks}
        steps = runner.done[_key((n, f, e, grid_lr(n, ks[0]), seeds[0]))]["steps"]
        out["cells"][f"{n}|{f}|{d}"] = {
            "task": n, "family": f, "divisor": d, "epochs": e, "steps": steps, "widened": widened[n, f, d],
            "grid": [{"k": k, "lr": grid_lr(n, k),
                      "mean": None if not math.isfinite(losses[k]) else losses[k],
                      "seeds": [runner.done[_key((n, f, e, grid_lr(n, k), s))]["final"] for s in seeds]}
                     for k in ks],
            "best": refine(ks, losses, n),
        }
    for n in names:
        for f in families:
            best = [out["cells"][f"{n}|{f}|{d}"]["best"] for d in DIVISORS]
            steps = [out["cells"][f"{n}|{f}|{d}"]["steps"] for d in DIVISORS]
            if any(b["lr"] is None for b in best):
                continue
            lrs = [b["lr"] for b in best]
            out["betas"][f"{n}|{f}"] = {
                "task": n, "family": f, "steps": steps, "best_lr": lrs,
                "beta": slope_beta(steps, lrs),
                "beta_rung1": -math.log(lrs[1] / lrs[0]) / math.log(steps[1] / steps[0]),
                "beta_rung2": -math.log(lrs[2] / lrs[1]) / math.log(steps[2] / steps[1]),
                "edges": [b["edge"] for b in best],
            }
    return out


def penalties(measured: dict, pool: dict, seeds: tuple[int, ...], runner: Runner) -> dict:
    """Full-length loss at the short-run best LR, unchanged and moved by the pooled beta."""
    beta = pool["beta"]
    jobs, plan = [], {}
    for key, b in measured["betas"].items():
        n, f = b["task"], b["family"]
        e = SETUP[n][1]
        ratio9 = b["steps"][2] / b["steps"][0]
        lr9 = b["best_lr"][0]
        lrs = {"unchanged": lr9, "shifted": lr9 * ratio9 ** -beta}
        plan[key] = lrs
        jobs += [(n, f, e, lr, s) for lr in lrs.values() for s in seeds]
    print("full-length runs at the moved LRs:", flush=True)
    runner.run(jobs)
    out = {}
    for key, b in measured["betas"].items():
        n, f = b["task"], b["family"]
        e = SETUP[n][1]
        full = measured["cells"][f"{n}|{f}|1"]
        curve = [(g["lr"], math.inf if g["mean"] is None else g["mean"]) for g in full["grid"]]
        ref = min(y for _, y in curve)
        at_best = [v for g in full["grid"] if g["k"] == full["best"]["k"] for v in g["seeds"]]
        spread = (max(at_best) - min(at_best)) / statistics.fmean(at_best) if None not in at_best else None
        row: dict = {"task": n, "family": f, "ref_loss": ref, "ref_lr": full["best"]["lr"],
                     "seed_spread": spread, "measured": {}}
        for label, lr in plan[key].items():
            loss = mean_loss(runner, n, f, e, lr, seeds)
            row["measured"][label] = {"lr": lr, "loss": loss if math.isfinite(loss) else None,
                                      "rel": rel(loss, ref)}
        ratio3 = b["steps"][2] / b["steps"][1]
        ratio9 = b["steps"][2] / b["steps"][0]
        loto = pool["leave_task_out"].get(n)
        loto = beta if loto is None else loto
        floto = pool["family_leave_task_out"].get(f, {}).get(n)
        floto = loto if floto is None else floto
        lr9, lr3 = b["best_lr"][0], b["best_lr"][1]
        candidates = {"1/9 unchanged": lr9, "1/9 shifted": lr9 * ratio9 ** -beta,
                      "1/9 shifted (leave-task-out beta)": lr9 * ratio9 ** -loto,
                      "1/9 shifted (family leave-task-out beta)": lr9 * ratio9 ** -floto,
                      "1/3 unchanged": lr3, "1/3 shifted": lr3 * ratio3 ** -beta,
                      "1/3 shifted (family leave-task-out beta)": lr3 * ratio3 ** -floto}
        row["betas_used"] = {"pooled": beta, "leave_task_out": loto, "family_leave_task_out": floto}
        row["interpolated"] = {label: {"lr": lr, "rel": rel(interpolate(curve, lr), ref)}
                               for label, lr in candidates.items()}
        out[key] = row
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: mnist1d-mlp and regression-mlp, cosine and constant, 3 LRs, 1 seed; "
                             "prints only")
    parser.add_argument("--tasks", default=",".join(SETUP))
    parser.add_argument("--workers", type=int, default=1, help="processes (1 thread each); default 1")
    parser.add_argument("--cache", help="JSON-lines file of finished runs, to resume an interrupted run")
    parser.add_argument("--name", default="bench_lr_shift", help="stem of the files in studies/results/")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = args.tasks.split(",")
    families, seeds, grid, max_widen = FAMILIES, SEEDS, range(GRID), MAX_WIDEN
    if args.quick:
        names = [n for n in names if n in ("mnist1d-mlp", "regression-mlp")] or ["mnist1d-mlp"]
        families, seeds, grid, max_widen = ("cosine", "constant"), (0,), range(3, 6), 1
    start = time.perf_counter()
    runner = Runner(args.workers, args.cache)
    try:
        measured = measure(names, families, seeds, grid, runner, max_widen)
        pool = pooled(measured["betas"])
        pen = penalties(measured, pool, seeds, runner)
    finally:
        runner.close()
    report = {
        "meta": {"tasks": names, "families": list(families), "seeds": list(seeds), "grid_points": len(grid),
                 "divisors": list(DIVISORS), "setup": {n: list(SETUP[n]) for n in names},
                 "workers": args.workers, "wall_seconds": time.perf_counter() - start,
                 "torch": torch.__version__,
                 "runs": len(runner.done), "trained_now": runner.trained, "quick": args.quick,
                 "run_seconds": sum(r["seconds"] for r in runner.done.values() if r["task"] in names),
                 "load_average": [round(v, 2) for v in os.getloadavg()]},
        "measured": measured, "pooled": pool, "penalties": pen,
        "runs": sorted((r for r in runner.done.values() if r["task"] in names),
                       key=lambda r: (r["task"], r["family"], r["epochs"], r["lr"], r["seed"])),
    }
    text = markdown(report)
    print(text)
    if not args.quick:
        harness.write(args.name, text, report)


if __name__ == "__main__":
    main()
