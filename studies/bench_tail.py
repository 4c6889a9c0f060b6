"""Does an averaging tail (SWA or EMA of the weights over the end of the run) help good schedules?

For each task, three good schedules (cosine, wsd and constant, each with a 5% linear warmup, at the
best full-length peak LR that ``bench_lr_shift`` measured for that family and task) train full
length with and without a tail, over several training seeds. The same seed gives the same
initialisation and batch order, and a tail without ``swa_lr`` leaves the LR alone, so the live
model's trajectory is identical across arms and the comparison is paired. Arms:

  none     no tail: the live model is evaluated.
  swa      ``{"kind": "swa", "start": 0.75}``: equal average of the weights after every step of
           the last quarter (BatchNorm statistics recomputed by ``update_bn``).
  swa_lr   the same with ``swa_lr=0.5`` (the LR anneals to half the peak over 5% of the run and
           holds it: the SWA paper's high constant tail LR), so the trajectory differs.
  ema      ``{"kind": "ema", "start": 0.5, "decay": 0.98}``: EMA updated after every step of the
           second half (a horizon of 50 steps, ~22% of a 225-step run; BN buffers averaged too).

Measures: the final validation loss (the loop's last evaluation, of the averaged model when there
is a tail) and the test loss / accuracy of ``TrainResult.model``. Per task and schedule: mean +- std
over seeds per arm, and the paired difference tail - none with a paired t-test (scipy's
``ttest_rel``); pooled per task over the three schedules too.

Run: ``python studies/bench_tail.py --workers 2`` (writes ``studies/results/bench_tail.{md,json}``).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import mean_std  # noqa: E402


# task: (epochs, optimizer, {family: best full-length peak LR from bench_lr_shift.md})
SETUP = {
    "mnist1d-mlp": (9, "sgd", {"cosine": 0.43, "wsd": 0.205, "constant": 0.129}),
    "mnist1d-cnn": (9, "sgd", {"cosine": 0.196, "wsd": 0.122, "constant": 0.111}),
    "mnist1d-cnn-bn": (9, "sgd", {"cosine": 0.115, "wsd": 0.0718, "constant": 0.0813}),
    "regression-mlp": (9, "adam", {"cosine": 0.0169, "wsd": 0.0483, "constant": 0.0143}),
}
PARAMS = {"cosine": {"min_ratio": 0.0}, "wsd": {"decay_frac": 0.2, "decay_shape": "1-sqrt"}, "constant": {}}
ARMS = {
    "none": None,
    "swa": {"kind": "swa", "start": 0.75},
    "swa_lr": {"kind": "swa", "start": 0.75, "swa_lr": 0.5, "anneal": 0.05},
    "ema": {"kind": "ema", "start": 0.5, "decay": 0.98},
}


def schedule_of(task: str, family: str, arm: str) -> lrsearch.Schedule:
    lr = SETUP[task][2][family]
    return lrsearch.Schedule(family, lr=lr, params=PARAMS[family], warmup={"frac": 0.05}, tail=ARMS[arm])


def run_one(job: tuple) -> dict:
    name, family, arm, seed = job
    data = harness.load(name)
    epochs, optimizer, _ = SETUP[name]
    task = harness.task_of(data, epochs, optimizer, threads=1)
    start = time.perf_counter()
    result = lrsearch.train(task, schedule_of(name, family, arm), seed=seed)
    model = result.model.eval()
    with torch.no_grad():
        out = model(data.x_test)
        test_loss = float(data.loss_fn(out, data.y_test))
        acc = float((out.argmax(1) == data.y_test).float().mean()) if data.classification else None
    return {"task": name, "family": family, "arm": arm, "seed": seed, "values": result.values,
            "val": result.final, "test_loss": test_loss, "test_accuracy": acc,
            "seconds": time.perf_counter() - start}


def _key(job: tuple) -> str:
    return "/".join(map(str, job))


def _row_key(row: dict) -> str:
    return _key((row["task"], row["family"], row["arm"], row["seed"]))


def _paired(tail: list[float], none: list[float]) -> dict:
    """Paired difference tail - none (negative: the tail is better) and a paired t-test."""
    from scipy.stats import ttest_rel

    diffs = [a - b for a, b in zip(tail, none)]
    p = float(ttest_rel(tail, none).pvalue) if len(diffs) > 1 and any(diffs) else 1.0
    return {"mean": statistics.mean(diffs), "std": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
            "better": sum(d < 0 for d in diffs), "n": len(diffs), "p": p if math.isfinite(p) else 1.0}


def _verdict(d: dict) -> str:
    if d["p"] >= 0.05:
        return "n.s."
    return "better" if d["mean"] < 0 else "worse"


def summarise(rows: list[dict], names: list[str], seeds: list[int], command: str, wall: float) -> tuple[str, dict]:
    by = {(r["task"], r["family"], r["arm"], r["seed"]): r for r in rows}
    tails = [a for a in ARMS if a != "none"]
    lines = ["# Averaging tail (SWA / EMA) on good schedules", "",
             f"`{command}`: {len(rows)} full-length runs, wall {wall:.0f} s, seeds {seeds}, 1 thread per run. "
             "Values are final validation losses (lower is better): the last evaluation, of the averaged model "
             "for a tail arm. Arms and schedules: the docstring of `studies/bench_tail.py`.", "",
             "## Final validation loss per arm (mean +- std over seeds)", "",
             "| task | schedule (peak LR) | " + " | ".join(ARMS) + " |", "|---|---|" + "---|" * len(ARMS)]
    summary: dict = {}
    for task, lrs in ((t, SETUP[t][2]) for t in names):
        for family, lr in lrs.items():
            cells = []
            for arm in ARMS:
                vals = [by[(task, family, arm, s)]["val"] for s in seeds if (task, family, arm, s) in by]
                cells.append(mean_std(vals) if vals else "-")
            lines.append(f"| {task} | {family} ({lr:g}) | " + " | ".join(cells) + " |")
    lines += ["", "## Paired difference tail - none (negative: the tail helps)", "",
              "Mean +- std of the per-seed difference in final validation loss, seeds where the tail was "
              "better, and a paired t-test (`p < 0.05`: better/worse, else n.s.). `all` pools the three "
              "schedules of a task (the pairs are per schedule and seed).", "",
              "| task | schedule | " + " | ".join(tails) + " |", "|---|---|" + "---|" * len(tails)]
    for task, lrs in ((t, SETUP[t][2]) for t in names):
        for family in [*lrs, "all"]:
            fams = list(lrs) if family == "all" else [family]
            cells = []
            for arm in tails:
                keys = [(task, f, s) for f in fams for s in seeds
                        if (task, f, arm, s) in by and (task, f, "none", s) in by]
                if not keys:
                    cells.append("-")
                    continue
                d = _paired([by[(t, f, arm, s)]["val"] for t, f, s in keys],
                            [by[(t, f, "none", s)]["val"] for t, f, s in keys])
                summary.setdefault(task, {}).setdefault(family, {})[arm] = d
                cells.append(f"{d['mean']:+.4f} +- {d['std']:.4f} ({d['better']}/{d['n']}, p={d['p']:.2g}, "
                             f"{_verdict(d)})")
            lines.append(f"| {task} | {family} | " + " | ".join(cells) + " |")
    lines += ["", "## Test loss / accuracy of the returned model (mean over seeds)", "",
              "| task | schedule | " + " | ".join(ARMS) + " |", "|---|---|" + "---|" * len(ARMS)]
    for task, lrs in ((t, SETUP[t][2]) for t in names):
        for family in lrs:
            cells = []
            for arm in ARMS:
                got = [by[(task, family, arm, s)] for s in seeds if (task, family, arm, s) in by]
                if not got:
                    cells.append("-")
                    continue
                text = f"{statistics.mean(r['test_loss'] for r in got):.4f}"
                if got[0]["test_accuracy"] is not None:
                    text += f" / {statistics.mean(r['test_accuracy'] for r in got):.3f}"
                cells.append(text)
            lines.append(f"| {task} | {family} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", default=",".join(SETUP))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", help="a JSON-lines file that keeps finished runs (resumes)")
    parser.add_argument("--quick", action="store_true", help="mnist1d-mlp, 2 seeds; writes nothing")
    args = parser.parse_args(argv)
    names = ["mnist1d-mlp"] if args.quick else args.tasks.split(",")
    seeds = list(range(2 if args.quick else args.seeds))
    jobs = [(n, f, a, s) for n in names for f in SETUP[n][2] for a in ARMS for s in seeds]
    start = time.perf_counter()
    runner = harness.Runner(run_one, _key, _row_key, args.workers, args.cache)
    try:
        runner.run(jobs)
    finally:
        runner.close()
    rows = [runner.row(j) for j in jobs]
    command = harness.command(__file__, argv)
    wall = time.perf_counter() - start
    text, summary = summarise(rows, names, seeds, command.strip(), wall)
    print(text)
    if not args.quick:
        out = {"command": command.strip(), "wall_s": wall, "seeds": seeds, "setup": SETUP, "arms": ARMS,
               "params": PARAMS, "summary": summary, "runs": rows}
        harness.write("bench_tail", text, out, json_end="\n")


if __name__ == "__main__":
    main()
