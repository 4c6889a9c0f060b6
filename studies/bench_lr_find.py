"""Benchmark of lrsearch.lr_find: overhead and quality. Prints tables; writes studies/results/.

Overhead: wall time of ``lr_find(num_iter=N)`` against a plain loop of N training steps on the
same model and batches, and against torch-lr-finder's ``range_test`` (+ ``reset``), interleaved
and repeated; medians and ratios measured side by side in one run.

Quality: for each task x optimizer, the best constant LR and the best one-cycle peak LR are found
by grid search on short trainings (mean final validation loss over 3 seeds, grid step 1/4 decade).
Then ``lr_find`` runs with 10 seeds and we report how often ``search_range()`` contains both
grid-best LRs, its width in decades, and |log10(suggestion / best)| for every rule next to
fastai's valley and torch-lr-finder's steepest recomputed (with their own smoothing) on the same
runs. The [fastai valley, smoothed-loss minimum] interval is the baseline to beat.

    python studies/bench_lr_find.py            # full run (~10 min on 2 CPU cores)
    python studies/bench_lr_find.py --quick    # a smoke run (used by the tests)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import time
import warnings

import numpy as np
import torch

import lrsearch
from lrsearch import Schedule
from lrsearch import TensorBatches

try:  # studies/ run as scripts or as a package (tests import them)
    import harness  # type: ignore[import-not-found]
    from tasks import TASKS, TaskData, make_optimizer  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from studies import harness
    from studies.tasks import TASKS, TaskData, make_optimizer


def train(task: TaskData, opt_name: str, schedule: Schedule, seed: int, epochs: int) -> float:
    """Train from scratch; return the final validation loss (inf if it diverged)."""
    torch.manual_seed(seed)
    model = task.model_fn()
    opt = make_optimizer(opt_name, model, schedule.lr)
    batches = TensorBatches(task.x_train, task.y_train, batch_size=task.batch_size, seed=seed)
    sched = schedule.build(opt, epochs * len(batches))
    for _ in range(epochs):
        for x, y in batches:
            loss = task.loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        val = float(task.loss_fn(model(task.x_val), task.y_val))
    return val if math.isfinite(val) else math.inf


def grid_best(task: TaskData, opt_name: str, family: str, grid: np.ndarray, seeds: int, epochs: int) -> dict:
    means = []
    for lr in grid:
        vals = [train(task, opt_name, Schedule(family, lr=float(lr)), s, epochs) for s in range(seeds)]
        means.append(statistics.fmean(vals) if all(math.isfinite(v) for v in vals) else math.inf)
    best = int(np.argmin(means))
    return {"best_lr": float(grid[best]), "best_val_loss": means[best], "curve": [float(m) for m in means]}


def range_tests(task: TaskData, opt_name: str, seeds: int, num_iter: int) -> list[lrsearch.RangeTestResult]:
    out = []
    for seed in range(seeds):
        torch.manual_seed(1000 + seed)
        model = task.model_fn()
        opt = make_optimizer(opt_name, model, 1e-3)
        batches = TensorBatches(task.x_train, task.y_train, batch_size=task.batch_size, seed=1000 + seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
            out.append(lrsearch.lr_find(model, opt, task.loss_fn, batches, num_iter=num_iter, verbose=False))
    return out


def quality(task_names: list[str], seeds: int, grid_seeds: int, num_iter: int, epochs: int | None) -> dict:
    grid = 10.0 ** np.arange(-4.5, 1.01, 0.25)
    rows = []
    for name in task_names:
        task = TASKS[name]()
        for opt_name in ("sgd", "adam"):
            t0 = time.perf_counter()
            ep = epochs or task.epochs
            const = grid_best(task, opt_name, "constant", grid, grid_seeds, ep)
            cycle = grid_best(task, opt_name, "onecycle", grid, grid_seeds, ep)
            for seed, r in enumerate(range_tests(task, opt_name, seeds, num_iter)):
                ref = r.reference_suggestions()
                rows.append({
                    "task": name, "optimizer": opt_name, "seed": seed,
                    "best_constant": const["best_lr"], "best_onecycle": cycle["best_lr"],
                    "range": r.search_range(), "anchor": r.min_loss_lr(),
                    "suggestions": r.suggestions(),
                    "fastai_valley": ref["fastai_valley"],
                    "torch_lr_finder_steepest": ref["torch_lr_finder_steepest"],
                    "baseline_range": (ref["fastai_valley"], ref["fastai_smoothed_min"]),
                    "noisy": r.flags["noisy"], "signal_to_noise": r.signal_to_noise,
                })
            print(f"  {name}/{opt_name}: best constant {const['best_lr']:.3g}, best one-cycle "
                  f"{cycle['best_lr']:.3g} ({time.perf_counter() - t0:.0f}s)", flush=True)
    return {"rows": rows, "grid": grid.tolist()}


def _covers(rng, lr) -> bool:
    return rng[0] is not None and rng[1] is not None and rng[0] * (1 - 1e-9) <= lr <= rng[1] * (1 + 1e-9)


def quality_table(q: dict) -> str:
    rows = q["rows"]
    lines = ["| task / optimizer | lrsearch range covers both | median width (dec) | flagged noisy | "
             "[valley, min] covers both | its median width |",
             "|---|---|---|---|---|---|"]
    groups = sorted({(r["task"], r["optimizer"]) for r in rows})
    for key in [*groups, ("all", "")]:
        sel = [r for r in rows if key[0] == "all" or (r["task"], r["optimizer"]) == key]
        cov = sum(_covers(r["range"], r["best_constant"]) and _covers(r["range"], r["best_onecycle"]) for r in sel)
        base = sum(_covers(r["baseline_range"], r["best_constant"]) and _covers(r["baseline_range"], r["best_onecycle"])
                   for r in sel)
        width = statistics.median(math.log10(r["range"][1] / r["range"][0]) for r in sel)
        bw = statistics.median(math.log10(r["baseline_range"][1] / r["baseline_range"][0])
                               for r in sel if r["baseline_range"][0])
        label = "**all**" if key[0] == "all" else f"{key[0]} / {key[1]}"
        noisy = sum(bool(r.get("noisy")) for r in sel)
        lines.append(f"| {label} | {cov}/{len(sel)} | {width:.2f} | {noisy} | {base}/{len(sel)} | {bw:.2f} |")
    methods = ["valley", "slide", "minimum", "steep", "steepest", "midpoint"]
    lines += ["", "| rule | median abs(log10(suggestion / best constant)) | vs best one-cycle peak |", "|---|---|---|"]
    for m in [*methods, "fastai_valley", "torch_lr_finder_steepest", "anchor"]:  # anchor: loss minimum
        def err(r, best, m=m):
            v = r["suggestions"][m] if m in methods else r[m]
            return abs(math.log10(v / r[best])) if v else math.inf
        label = {"fastai_valley": "fastai valley (fastai's smoothing)",
                 "torch_lr_finder_steepest": "torch-lr-finder steepest (its smoothing)",
                 "anchor": "smoothed-loss minimum"}.get(m, f"lrsearch `{m}`")
        lines.append(f"| {label} | {statistics.median(err(r, 'best_constant') for r in rows):.2f} | "
                     f"{statistics.median(err(r, 'best_onecycle') for r in rows):.2f} |")
    for feature in ("midpoint", "anchor"):
        def off(r, best, feature=feature):
            v = r["suggestions"][feature] if feature in r["suggestions"] else r[feature]
            return math.log10(r[best] / v)
        oc, oo = [off(r, "best_constant") for r in rows], [off(r, "best_onecycle") for r in rows]
        lines.append(f"\nlog10(best / {feature}): constant [{min(oc):+.2f}, {max(oc):+.2f}] median {statistics.median(oc):+.2f}; "
                     f"one-cycle [{min(oo):+.2f}, {max(oo):+.2f}] median {statistics.median(oo):+.2f}")
    return "\n".join(lines)


def overhead(num_iter: int, repeats: int) -> str:
    from torch_lr_finder import LRFinder
    from torch_lr_finder import TrainDataLoaderIter

    task = TASKS["mnist1d-mlp"]()
    torch.manual_seed(0)
    model = task.model_fn()
    opt = make_optimizer("sgd", model, 1e-3)
    batches = TensorBatches(task.x_train, task.y_train, batch_size=task.batch_size, seed=0)
    kw = {"start_lr": 1e-5, "end_lr": 1e-2}  # no divergence: every contender runs all N steps

    def plain() -> None:
        it = iter(())
        for _ in range(num_iter):
            batch = next(it, None)
            if batch is None:
                it = iter(batches)
                batch = next(it)
            loss = task.loss_fn(model(batch[0]), batch[1])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def ours() -> None:
        r = lrsearch.lr_find(model, opt, task.loss_fn, batches, num_iter=num_iter, verbose=False, **kw)
        assert r.iterations == num_iter

    def theirs() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            finder = LRFinder(model, opt, task.loss_fn, device="cpu")  # it prints and shows tqdm
            finder.range_test(TrainDataLoaderIter(batches), num_iter=num_iter, diverge_th=1e9,
                              start_lr=kw["start_lr"], end_lr=kw["end_lr"])
            finder.reset()

    times: dict[str, list[float]] = {"plain loop": [], "lrsearch.lr_find": [], "torch-lr-finder": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in (plain, ours, theirs):  # warm-up
            fn()
        for _ in range(repeats):
            for label, fn in zip(times, (plain, ours, theirs)):
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
    base = statistics.median(times["plain loop"])
    lines = [f"| contender (N={num_iter}, MNIST-1D MLP, CPU) | median ms | ratio to plain loop |", "|---|---|---|"]
    for label, ts in times.items():
        lines.append(f"| {label} | {1e3 * statistics.median(ts):.1f} | {statistics.median(ts) / base:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny run (smoke test)")
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--tasks", default="mnist1d-mlp,digits-mlp,breast-cancer-mlp")
    parser.add_argument("--name", default="bench_lr_find", help="stem of the files in studies/results/")
    parser.add_argument("--num-iter", type=int, default=100, help="range-test steps (default 100)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = []
    if not args.skip_overhead:
        for n in [30] if args.quick else [100, 300]:
            table = overhead(num_iter=n, repeats=2 if args.quick else 21)
            print(table, flush=True)
            report.append(table)
    tasks = args.tasks.split(",")[:1] if args.quick else args.tasks.split(",")
    q = quality(tasks, seeds=2 if args.quick else 10, grid_seeds=1 if args.quick else 3,
                num_iter=args.num_iter, epochs=1 if args.quick else None)
    table = quality_table(q)
    print(table)
    report.append(table)
    if not args.quick:
        harness.write(args.name, "\n\n".join(report) + "\n", q)


if __name__ == "__main__":
    main()
