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
import json
import math
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import TASKS  # noqa: E402
from tasks import optimizer_for  # noqa: E402

import harness  # noqa: E402


OUT = Path(__file__).resolve().parent / "results"
# task -> (optimizer, full length E in epochs, centre of the LR grid, grid factor); the grid is
# centre * factor ** (k - 4), k = 0..8, set from a coarse check (1 seed, cosine and constant, E/9 and E).
SETUP = {
    "mnist1d-mlp": ("sgd", 9, 0.3, 2.0),
    "mnist1d-cnn": ("sgd", 9, 0.15, 2.0),
    "mnist1d-cnn-bn": ("sgd", 9, 0.1, 2.0),
    "char-lm": ("adamw", 9, 5e-3, 2.0),
    "regression-mlp": ("adam", 18, 0.016, 2.0),
}
NEAR = 0.01  # the near-optimal band: grid LRs whose mean loss is within 1% of the best
FAMILIES = ("cosine", "constant", "wsd")
DIVISORS = (9, 3, 1)  # lengths E/9, E/3, E
SEEDS = (0, 1)
GRID = 9
MAX_WIDEN = 3


def schedule(family: str, lr: float) -> lrsearch.Schedule:
    return lrsearch.Schedule(family, lr=lr, warmup={"frac": 0.05, "shape": "linear"})


# ------------------------------------------------------------------------------------------ runs

_DATA: dict = {}


def _data(name: str):  # noqa: ANN202
    if name not in _DATA:  # built once per process (MNIST-1D takes seconds to generate)
        _DATA[name] = TASKS[name]()
    return _DATA[name]


def run_one(job: tuple[str, str, int, float, int]) -> dict:
    """Train (task, family, epochs, lr, seed) once; the final validation loss (None if not finite)."""
    torch.set_num_threads(1)
    name, family, epochs, lr, seed = job
    data = _data(name)
    task = lrsearch.Task(data.model_fn, (data.x_train, data.y_train), (data.x_val, data.y_val), data.loss_fn,
                         epochs=epochs, batch_size=data.batch_size, device="cpu",
                         optimizer_fn=partial(optimizer_for, SETUP[name][0]))
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


# -------------------------------------------------------------------------------------- analysis

def grid_lr(name: str, k: int) -> float:
    _, _, centre, factor = SETUP[name]
    return float(centre * factor ** (k - GRID // 2))


def mean_loss(runner: Runner, name: str, family: str, epochs: int, lr: float, seeds) -> float:  # noqa: ANN001
    values = [runner.loss((name, family, epochs, lr, s)) for s in seeds]
    return math.inf if not all(map(math.isfinite, values)) else statistics.fmean(values)


def refine(ks: list[int], losses: dict[int, float], name: str) -> dict:
    """The best grid point, and the vertex of the parabola through it and its neighbours in log lr."""
    finite = [k for k in ks if math.isfinite(losses[k])]
    if not finite:
        return {"k": None, "lr": None, "loss": None, "edge": "all diverged", "refined": False}
    best = min(finite, key=lambda k: losses[k])
    edge = "low" if best == min(ks) else "high" if best == max(ks) else None
    band = [grid_lr(name, k) for k in finite if losses[k] <= losses[best] * (1 + NEAR)]
    out = {"k": best, "grid_lr": grid_lr(name, best), "lr": grid_lr(name, best), "loss": losses[best],
           "edge": edge, "refined": False, "band": [min(band), max(band)]}
    if edge is None and all(math.isfinite(losses[k]) for k in (best - 1, best + 1)):
        xs = [math.log(grid_lr(name, k)) for k in (best - 1, best, best + 1)]
        a, b, c = np.polyfit(xs, [losses[k] for k in (best - 1, best, best + 1)], 2)
        if a > 0:
            x = -b / (2 * a)
            out.update(lr=math.exp(x), loss=float(a * x * x + b * x + c), refined=True)
    return out


def interpolate(curve: list[tuple[float, float]], lr: float) -> float | None:
    """The mean loss at ``lr`` on a grid curve [(lr, loss)], linear in log lr; None off the grid."""
    pts = sorted((math.log(x), y) for x, y in curve)
    x = math.log(lr)
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= x <= x1:
            if not (math.isfinite(y0) and math.isfinite(y1)):
                return None
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return None


def slope_beta(lengths: list[int], lrs: list[float]) -> float:
    return -float(np.polyfit(np.log(lengths), np.log(lrs), 1)[0])


def rel(value: float | None, ref: float) -> float | None:
    return None if value is None or not math.isfinite(value) else (value - ref) / ref


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


def pooled(betas: dict) -> dict:
    rows = [r for r in betas.values() if not any(r["edges"])]  # an edge best is a bound, not a value

    def med(key: str, keep=lambda r: True) -> float | None:  # noqa: ANN001
        values = [r[key] for r in rows if keep(r)]
        return statistics.median(values) if values else None

    out = {key: med(key) for key in ("beta", "beta_rung1", "beta_rung2")}
    out["quartiles"] = {key: statistics.quantiles([r[key] for r in rows], n=4) if len(rows) > 1 else None
                        for key in ("beta", "beta_rung1", "beta_rung2")}
    out["per_family"] = {f: {key: med(key, lambda r, f=f: r["family"] == f) for key in ("beta", "beta_rung1",
                                                                                          "beta_rung2")}
                         for f in dict.fromkeys(r["family"] for r in rows)}
    names = dict.fromkeys(r["task"] for r in rows)
    out["per_task"] = {n: med("beta", lambda r, n=n: r["task"] == n) for n in names}
    out["leave_task_out"] = {n: med("beta", lambda r, n=n: r["task"] != n) for n in out["per_task"]}
    out["family_leave_task_out"] = {
        f: {n: med("beta", lambda r, f=f, n=n: r["family"] == f and r["task"] != n) for n in names}
        for f in out["per_family"]}
    out["excluded"] = [k for k, r in betas.items() if any(r["edges"])]
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


# ---------------------------------------------------------------------------------------- report

def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def _b(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def markdown(report: dict) -> str:
    meta, measured, pool, pen = report["meta"], report["measured"], report["pooled"], report["penalties"]
    lines = ["# How the best peak LR shifts with run length", "",
             f"{len(meta['seeds'])} seeds, final validation loss (mean of the seeds); families "
             f"{', '.join(meta['families'])} with a 5% linear warmup; lengths E/9, E/3, E; "
             f"{meta['grid_points']} log-spaced peak LRs per cell (widened at an edge best). "
             f"{meta['runs']} training runs taking {meta['run_seconds']:.0f} s of wall time in all ("
             f"{meta['workers']} worker(s), torch {meta['torch']}, 1 thread each; load average at the end "
             f"{meta['load_average'][0]:.1f} on {os.cpu_count()} CPUs).", "",
             "## Setup", "",
             "| task | optimizer | E (epochs) | steps E/9, E/3, E | LR grid (factor) | s per full run |",
             "|---|---|---|---|---|---|"]
    for n in meta["tasks"]:
        opt, e, _, factor = SETUP[n]
        cells = [measured["cells"][f"{n}|{meta['families'][0]}|{d}"] for d in DIVISORS]
        lrs = [g["lr"] for c in measured["cells"].values() if c["task"] == n for g in c["grid"]]
        full = [r["seconds"] for r in report["runs"] if r["task"] == n and r["epochs"] == e]
        lines.append(f"| {n} | {opt} | {e} | {', '.join(str(c['steps']) for c in cells)} | "
                     f"{min(lrs):.3g} .. {max(lrs):.3g} (x{factor:g}) | {statistics.median(full):.2f} |")
    lines += ["", "## Best peak LR per length", "",
              "Parabola-refined best LR (mean loss at the best grid point; the factor spanned by the grid "
              f"LRs within {100 * NEAR:g}% of that loss); `*` = best at the grid edge even after widening, "
              "`w` = grid widened, `~` = not refined (a neighbour diverged).", "",
              "| task | family | E/9 | E/3 | E |", "|---|---|---|---|---|"]
    for n in meta["tasks"]:
        for f in meta["families"]:
            cells = []
            for d in DIVISORS:
                c = measured["cells"][f"{n}|{f}|{d}"]
                b = c["best"]
                if b["lr"] is None:
                    cells.append("all diverged")
                    continue
                flags = ("*" if b["edge"] else "") + ("w" if c["widened"] else "")
                flags += "" if b["refined"] else "~"
                grid_loss = next(g["mean"] for g in c["grid"] if g["k"] == b["k"])
                cells.append(f"{b['lr']:.3g}{flags} ({grid_loss:.4g}; x{b['band'][1] / b['band'][0]:.0f})")
            lines.append(f"| {n} | {f} | " + " | ".join(cells) + " |")
    lines += ["", "## beta: lr_long = lr_short * (T_long / T_short)^-beta", "",
              "| task | family | beta (fit over 3 lengths) | 1/9 -> 1/3 | 1/3 -> 1 |",
              "|---|---|---|---|---|"]
    for b in measured["betas"].values():
        edge = " (edge best: a bound, left out of the medians)" if any(b["edges"]) else ""
        lines.append(f"| {b['task']} | {b['family']}{edge} | {_b(b['beta'])} | {_b(b['beta_rung1'])} | "
                     f"{_b(b['beta_rung2'])} |")
    lines.append(f"| **pooled median** | all | **{_b(pool['beta'])}** | {_b(pool['beta_rung1'])} | "
                 f"{_b(pool['beta_rung2'])} |")
    q = pool["quartiles"]
    if q["beta"]:
        lines.append("| quartiles (25%, 75%) | all | " + " | ".join(
            f"{_b(q[key][0])}, {_b(q[key][2])}" for key in ("beta", "beta_rung1", "beta_rung2")) + " |")
    for f, v in pool["per_family"].items():
        lines.append(f"| median | {f} | {_b(v['beta'])} | {_b(v['beta_rung1'])} | {_b(v['beta_rung2'])} |")
    lines += ["", "Median beta per task (over families), and pooled without that task: "
              + "; ".join(f"{n} {_b(v)} (without it {_b(pool['leave_task_out'][n])})"
                          for n, v in pool["per_task"].items()) + ".", "",
              "## What the rule buys at full length", "",
              "Loss at full length relative to the best full-length grid point (+ = worse; the reference is "
              "itself a noisy mean of the seeds, so a moved LR can come out below it). Seed spread: "
              "(max - min) / mean of the seeds' losses at that best grid point, the noise floor of these "
              "percentages.", "",
              f"*Trained* ({len(meta['seeds'])} seeds at full length): the 1/9-length best LR unchanged, and "
              f"moved by the pooled median beta {pool['beta']:.2f} (x 9^-beta = x{9 ** -pool['beta']:.2f}).",
              "",
              "| task | family | best full LR (grid loss) | seed spread | 1/9 unchanged: lr, loss | "
              "1/9 shifted: lr, loss |", "|---|---|---|---|---|---|"]
    for row in pen.values():
        m = row["measured"]
        lines.append(
            f"| {row['task']} | {row['family']} | {row['ref_lr']:.3g} ({row['ref_loss']:.4g}) | "
            f"{_pct(row['seed_spread'])[1:]} | {m['unchanged']['lr']:.3g}, {_pct(m['unchanged']['rel'])} | "
            f"{m['shifted']['lr']:.3g}, {_pct(m['shifted']['rel'])} |")
    labels = ["1/9 unchanged", "1/9 shifted", "1/9 shifted (leave-task-out beta)",
              "1/9 shifted (family leave-task-out beta)", "1/3 unchanged", "1/3 shifted",
              "1/3 shifted (family leave-task-out beta)"]
    lines += ["", "*Interpolated* on the full-length grid means (linear in log lr; n/a off the grid): the "
              "1/9- and 1/3-length best LRs unchanged, moved by the pooled beta (x 3^-beta = "
              f"x{3 ** -pool['beta']:.2f} for 1/3), by the pooled beta of the other tasks, and by the median "
              "beta of the same family over the other tasks.", "",
              "| task | family | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for row in pen.values():
        lines.append(f"| {row['task']} | {row['family']} | "
                     + " | ".join(_pct(row["interpolated"][label]["rel"]) for label in labels) + " |")

    def summary(values: list[float | None]) -> str:
        v = [x for x in values if x is not None]
        return f"median {_pct(statistics.median(v))}, worst {_pct(max(v))}" if v else "n/a"

    rows = list(pen.values())
    lines += ["", "Over all rows, trained: 1/9 unchanged "
              + summary([r["measured"]["unchanged"]["rel"] for r in rows]) + "; 1/9 shifted "
              + summary([r["measured"]["shifted"]["rel"] for r in rows]) + ". Interpolated: "
              + "; ".join(f"{label} {summary([r['interpolated'][label]['rel'] for r in rows])}"
                          for label in labels) + ".", ""]
    return "\n".join(lines)


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
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"{args.name}.json").write_text(json.dumps(report, indent=1))
        (OUT / f"{args.name}.md").write_text(text)


if __name__ == "__main__":
    main()
