"""Search efficiency and result quality: lrsearch against plain Optuna, random search and defaults.

Every method trains the same tasks with the same loop (``lrsearch.Task``), seeds and budget in
*epochs*: each method runs trials until its cumulative training epochs reach the budget (pruned
trials count the epochs they ran; lrsearch and the defaults also pay for the range test's steps).

  (a) lrsearch: seeded from ``lr_find``, grouped TPE, schedule-aware ``PlateauPruner``;
  (b) plain Optuna: TPE (Optuna 5 defaults) over lr log-uniform in [1e-6, 1] and the same families and
      family parameters, ``MedianPruner``, no seeding;
  (c) random search over (b)'s space, no pruning;
  (d) strong fixed defaults: one-cycle with fastai's defaults (pct_start 0.25, div 25, final LR peak/1e5,
      momentum 0.95-0.85) at the range test's ``steep`` LR, and cosine with 5% linear warmup at
      sqrt(midpoint x steep): the points lrsearch seeds those families with.

Measures, per task and seed: the best validation loss against cumulative epochs (plots), the epochs
each method needs to reach (b)'s final best (ratio to what (b) needed), the final best at equal
budget, and the test loss/accuracy of each method's best schedule retrained from scratch. Plus
lrsearch's own cost per trial beyond Optuna's, on SQLite and on a journal file.

    python studies/bench_search.py               # full run (~15 min on 2 CPU cores)
    python studies/bench_search.py --quick       # smoke run
    python studies/bench_search.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import optuna
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import TASKS  # noqa: E402
from tasks import optimizer_for  # noqa: E402


OUT = Path(__file__).resolve().parent / "results"
SEED_FAMILIES: tuple[str, ...] = ()  # --seed-families
METHODS = ("lrsearch", "optuna", "random", "defaults")
# task -> (epochs per trial, budget in epochs, optimizer)
SETUP = {"mnist1d-mlp": (12, 360, "sgd"), "mnist1d-cnn": (10, 200, "sgd"), "regression-mlp": (15, 450, "adam")}


def make_task(name: str, epochs: int, optimizer: str, device: str) -> tuple[lrsearch.Task, object]:
    data = TASKS[name]()
    task = lrsearch.Task(data.model_fn, (data.x_train, data.y_train), (data.x_val, data.y_val), data.loss_fn,
                         epochs=epochs, batch_size=data.batch_size, device=device,
                         optimizer_fn=lambda params: optimizer_for(optimizer, params))
    return task, data


class Budget:
    """Stops a study once its cumulative epochs would pass the budget; records the trace."""

    def __init__(self, budget: int, epochs: int, start: float = 0.0) -> None:
        self.budget, self.epochs, self.used = budget, epochs, start
        self.trace: list[tuple[float, float]] = []  # (cumulative epochs, best so far)
        self.best = math.inf

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.used += len(trial.intermediate_values)
        if trial.state == optuna.trial.TrialState.COMPLETE and trial.value is not None and math.isfinite(trial.value):
            self.best = min(self.best, trial.value)
        self.trace.append((self.used, self.best))
        if self.used + self.epochs > self.budget:
            study.stop()


def range_test(task: lrsearch.Task, seed: int) -> lrsearch.RangeTestResult:
    torch.manual_seed(seed)
    device = task.resolve_device()
    model = task.model_fn().to(device)
    batches = lrsearch.TensorBatches(*task.train_data, batch_size=task.batch_size, seed=seed, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, batches, verbose=False)


def test_score(task: lrsearch.Task, data, schedule: lrsearch.Schedule) -> dict:
    """Retrain ``schedule`` from scratch (seed 0), once, and score it on the held-out test split."""
    test_task = lrsearch.Task(task.model_fn, task.train_data, (data.x_test, data.y_test), task.loss_fn,
                              epochs=task.epochs, batch_size=task.batch_size, device=task.device,
                              optimizer_fn=task.optimizer_fn)
    result = lrsearch.train(test_task, schedule, seed=0)  # evaluates on the test split: its loss
    out = {"test_loss": result.final}
    if data.classification:
        model = result.model.eval()
        with torch.no_grad():
            x, y = data.x_test.to(result.device), data.y_test.to(result.device)
            out["test_accuracy"] = float((model(x).argmax(1) == y).float().mean())
    return out


def run_one(name: str, method: str, seed: int, device: str, quick: bool) -> dict:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs, budget, opt = SETUP[name]
    if quick:
        epochs, budget = 2, 10
    task, data = make_task(name, epochs, opt, device)
    steps_per_epoch = math.ceil(len(data.x_train) / task.batch_size)
    t0 = time.perf_counter()
    if method == "defaults":
        rt = range_test(task, seed)
        steep, mid = rt.suggestion("steep"), rt.suggestion("midpoint")
        candidates = {
            "onecycle": lrsearch.Schedule("onecycle", lr=steep, params={"pct_start": 0.25, "div_factor": 25.0,
                                                                         "final_div_factor": 4000.0}),
            "cosine": lrsearch.Schedule("cosine", lr=math.sqrt(mid * steep), warmup={"frac": 0.05}),
        }
        used = rt.iterations / steps_per_epoch
        trace, best, best_schedule = [], math.inf, None
        for schedule in candidates.values():
            value = lrsearch.train(task, schedule, seed=seed).final
            used += epochs
            if value < best:
                best, best_schedule = value, schedule
            trace.append((used, best))
        n_trials = 2
    else:
        kwargs: dict = {"storage": optuna.storages.InMemoryStorage(), "artifacts": None, "seed": seed,
                        "study_name": f"{name}-{method}-{seed}"}
        if method == "lrsearch":
            rt = range_test(task, seed)
            tracker = Budget(budget, epochs, rt.iterations / steps_per_epoch)
            kwargs["seed_from"] = rt
            if SEED_FAMILIES:
                kwargs["seed_families"] = SEED_FAMILIES
        else:
            tracker = Budget(budget, epochs)
            kwargs["space"] = lrsearch.SearchSpace(lr=(1e-6, 1.0))
            if method == "optuna":
                kwargs["sampler"] = optuna.samplers.TPESampler(seed=seed)
                kwargs["pruner"] = optuna.pruners.MedianPruner()
            else:
                kwargs["sampler"] = optuna.samplers.RandomSampler(seed=seed)
                kwargs["pruner"] = optuna.pruners.NopPruner()
        result = lrsearch.optimize(task=task, n_trials=10_000, callbacks=[tracker], **kwargs)
        trace, best = tracker.trace, tracker.best
        n_trials = sum(t.state.is_finished() for t in result.study.trials)  # not the seeds left waiting
        best_schedule = result.best_schedule
    return {"task": name, "method": method, "seed": seed, "trace": trace, "final_best": best,
            "trials": n_trials, "best_schedule": best_schedule.to_dict(), "seconds": time.perf_counter() - t0,
            **test_score(task, data, best_schedule)}


def epochs_to_reach(trace: list, target: float, tolerance: float = 0.0) -> float:
    """Cumulative epochs at which the trace's best first gets to ``target`` (within ``tolerance``)."""
    for used, best in trace:
        if best <= target * (1 + tolerance) + 1e-12:
            return used
    return math.inf


def overhead(n: int = 60) -> str:
    """ms per trial: plain Optuna suggesting an equivalent space vs lrsearch.optimize, no training."""
    space = lrsearch.SearchSpace(lr=(1e-5, 1.0))

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
                                      artifacts=f"{tmp}/art" if label == "artifacts" else None, pruner=optuna.pruners.NopPruner())
                times.append(1e3 * (time.perf_counter() - t0) / n)
            rows.append(f"| {kind} | {times[0]:.1f} | {times[1]:.1f} | {times[2]:.1f} |")
    return "\n".join(rows)


def _ratio_text(ratios: list[float]) -> str:
    """Per-seed ratios: their median when every seed got there, else how many did."""
    reached = [x for x in ratios if math.isfinite(x)]
    if len(reached) == len(ratios):
        return f"{statistics.median(ratios):.2f} ({len(ratios)}/{len(ratios)})"
    return f"{len(reached)}/{len(ratios)} reached" + (f", median {statistics.median(reached):.2f}" if reached else "")


def summarise(runs: list[dict]) -> str:
    lines = ["| task | method | final best val loss (mean of seeds) | epochs to reach (b)'s final best, ratio to (b) "
             "| same, within 1% | test loss | test accuracy | trials | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for name in SETUP:
        by = {m: [r for r in runs if r["task"] == name and r["method"] == m] for m in METHODS}
        if not by["optuna"]:
            continue
        ratios: dict[str, list[float]] = {m: [] for m in METHODS}
        near: dict[str, list[float]] = {m: [] for m in METHODS}
        for seed in sorted({r["seed"] for r in by["optuna"]}):
            ref = next(r for r in by["optuna"] if r["seed"] == seed)
            target = ref["final_best"]
            needed = epochs_to_reach(ref["trace"], target)
            needed_near = epochs_to_reach(ref["trace"], target, 0.01)
            for m in METHODS:
                run = next((r for r in by[m] if r["seed"] == seed), None)
                if run is not None:
                    ratios[m].append(epochs_to_reach(run["trace"], target) / needed)
                    near[m].append(epochs_to_reach(run["trace"], target, 0.01) / needed_near)
        for m in METHODS:
            rs = by[m]
            if not rs:
                continue
            fin = statistics.fmean(r["final_best"] for r in rs)
            acc = [r["test_accuracy"] for r in rs if "test_accuracy" in r]
            lines.append(f"| {name} | {m} | {fin:.4f} | {_ratio_text(ratios[m])} | {_ratio_text(near[m])} | "
                         f"{statistics.fmean(r['test_loss'] for r in rs):.4f} | "
                         f"{statistics.fmean(acc):.3f} | " if acc else "- | ")
            if not acc:
                lines[-1] = (f"| {name} | {m} | {fin:.4f} | {_ratio_text(ratios[m])} | {_ratio_text(near[m])} | "
                             f"{statistics.fmean(r['test_loss'] for r in rs):.4f} | - | ")
            lines[-1] += f"{statistics.fmean(r['trials'] for r in rs):.1f} | {statistics.fmean(r['seconds'] for r in rs):.0f} |"
        a = statistics.fmean(r["final_best"] for r in by["lrsearch"]) if by["lrsearch"] else math.nan
        d = statistics.fmean(r["final_best"] for r in by["defaults"]) if by["defaults"] else math.nan
        per_seed = ", ".join("never" if not math.isfinite(x) else f"{x:.2f}" for x in ratios["lrsearch"])
        notes.append(f"- {name}: lrsearch {'<=' if a <= d else '>'} defaults on validation ({a:.4f} vs {d:.4f}); "
                     f"epochs to reach plain Optuna's final best, as a ratio of Optuna's, per seed: {per_seed}")
    return "\n".join(lines + [""] + notes)


def plot(runs: list[dict]) -> None:
    from matplotlib.figure import Figure

    for name in SETUP:
        fig = Figure(figsize=(7, 4), layout="constrained")
        ax = fig.add_subplot()
        for i, m in enumerate(METHODS):
            for j, r in enumerate(x for x in runs if x["task"] == name and x["method"] == m):
                xs = [0.0] + [u for u, _ in r["trace"]]
                ys = [math.nan] + [b if math.isfinite(b) else math.nan for _, b in r["trace"]]
                ax.step(xs, ys, where="post", color=f"C{i}", alpha=0.8, label=m if j == 0 else None)
        ax.set_xlabel("cumulative training epochs (range test included)")
        ax.set_ylabel("best validation loss so far")
        ax.set_title(f"{name}: one line per seed")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.savefig(OUT / f"bench_search_{name}.png", dpi=100)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tasks", default=",".join(SETUP))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--name", default="bench_search")
    parser.add_argument("--seed-families", default="", help="comma-separated; default: every family")
    parser.add_argument("--from-json", help="re-summarise a saved run instead of training")
    args = parser.parse_args(argv)
    if args.from_json:
        print(summarise(json.loads(Path(args.from_json).read_text())))
        return
    global SEED_FAMILIES
    SEED_FAMILIES = tuple(f for f in args.seed_families.split(",") if f)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tasks = args.tasks.split(",")[:1] if args.quick else args.tasks.split(",")
    seeds = 1 if args.quick else args.seeds
    jobs = [(t, m, s, args.device, args.quick) for t in tasks for s in range(seeds) for m in METHODS]
    if args.workers > 1 and not args.device.startswith("cuda"):  # CUDA does not survive fork
        with ProcessPoolExecutor(args.workers) as pool:
            runs = list(pool.map(run_one, *zip(*jobs)))
    else:
        runs = [run_one(*job) for job in jobs]
    table = summarise(runs)
    print(table)
    if not args.quick:
        OUT.mkdir(exist_ok=True)
        cost = overhead()
        print(cost)
        (OUT / f"{args.name}.json").write_text(json.dumps(runs, indent=1))
        (OUT / f"{args.name}.md").write_text(table + "\n\n" + cost + "\n")
        plot(runs)


if __name__ == "__main__":
    main()
