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
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed
from pathlib import Path

import optuna
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks as task_zoo  # noqa: E402
from harness import EPS  # noqa: E402
from harness import best_at  # noqa: E402
from harness import evaluate  # noqa: E402
from harness import range_test  # noqa: E402
from harness import steps_per_run  # noqa: E402


OUT = Path(__file__).resolve().parent / "results"
SEED_FAMILIES: tuple[str, ...] = ()  # --seed-families
METHODS = ("lrsearch", "tpe-median", "tpe-hyperband", "random", "defaults", "schedulefree")
BASELINES = METHODS[1:]
LABEL = {"lrsearch": "lrsearch", "tpe-median": "(a) TPE+Median", "tpe-hyperband": "(b) TPE+Hyperband",
         "random": "(c) random", "defaults": "(d) defaults", "schedulefree": "(e) schedule-free"}
# Cost of a job beyond its budget, in full runs (lrsearch's short runs evaluate as often as full ones),
# for ordering the jobs, longest first, and for the estimate printed at the start.
JOB_RUNS = {"lrsearch": 1.4, "tpe-median": 1.0, "tpe-hyperband": 1.0, "random": 1.0, "defaults": 0.0,
            "schedulefree": 1.0}
# task -> (epochs per full run = evaluations, optimizer, seconds per full run measured on one CPU core
# of the 2-core dev machine while other jobs shared it). char-lm runs 6 of its 9 default epochs
# (144 AdamW steps): at 9 it alone would take over half of the full benchmark's time.
SETUP = {
    "mnist1d-mlp": (9, "sgd", 0.45),
    "mnist1d-cnn": (9, "sgd", 2.5),
    "mnist1d-cnn-bn": (9, "sgd", 2.8),
    "char-lm": (6, "adamw", 3.5),
    "regression-mlp": (9, "adam", 0.45),
}
FIXED = "adamw-1e-3"  # the fixed schedule whose spread over seeds is the noise figure
SF_LR = (1e-5, 1e-1)


# ----------------------------------------------------------------------------------------- tasks

def make_optimizer(name: str, params) -> torch.optim.Optimizer:
    """The studies' optimizer ``name``; AdamW (torch defaults) if ``tasks`` does not define it."""
    try:
        return task_zoo.optimizer_for(name, params)
    except ValueError:
        if name == "adamw":
            return torch.optim.AdamW(params, lr=1e-3)
        raise


_DATA: dict = {}


def load(name: str):
    """The task's data, built once per process (MNIST-1D takes seconds to generate)."""
    if name not in _DATA:
        _DATA[name] = task_zoo.TASKS[name]()
    return _DATA[name]


def make_task(name: str, epochs: int, optimizer: str, device: str, data=None) -> tuple[lrsearch.Task, object]:
    data = data if data is not None else load(name)
    task = lrsearch.Task(data.model_fn, (data.x_train, data.y_train), (data.x_val, data.y_val), data.loss_fn,
                         epochs=epochs, batch_size=data.batch_size, device=device,
                         optimizer_fn=lambda params: make_optimizer(optimizer, params))
    return task, data


def range_lrs(rt: lrsearch.RangeTestResult) -> tuple[float, float]:
    """(cosine LR, one-cycle LR): sqrt(midpoint x steep) and steep, the range's edges as fallbacks."""
    low, high = rt.search_range()
    mid, steep = rt.suggestion("midpoint"), rt.suggestion("steep")
    mid, steep = mid or math.sqrt(low * high), steep or high
    return math.sqrt(mid * steep), steep


def train_schedulefree(task: lrsearch.Task, lr: float, seed: int, on_eval=None) -> torch.nn.Module:
    """One full run of ``task`` with Schedule-Free AdamW at ``lr``: ``on_eval(epoch, val loss)``."""
    import schedulefree

    device = task.resolve_device()
    torch.manual_seed(seed)
    model = task.model_fn().to(device)
    batches = lrsearch.TensorBatches(*task.train_data, batch_size=task.batch_size, shuffle=True, seed=seed,
                                     device=device)
    total = task.epochs * len(batches)
    weight_decay = make_optimizer("adamw", [torch.nn.Parameter(torch.zeros(1))]).defaults["weight_decay"]
    optimizer = schedulefree.AdamWScheduleFree(model.parameters(), lr=lr, warmup_steps=round(0.05 * total),
                                               weight_decay=weight_decay)
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    # BN statistics are recomputed on other batches than training's, so its shuffles stay the same
    calib = lrsearch.TensorBatches(*task.train_data, batch_size=task.batch_size, shuffle=True, seed=seed + 10_000,
                                   device=device)
    x_val, y_val = task.val_data
    for epoch in range(task.epochs):
        model.train()
        optimizer.train()
        for xb, yb in batches:
            task.loss_fn(model(xb), yb).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        optimizer.eval()  # the averaged weights: what is evaluated and what is kept
        if has_bn:
            with torch.no_grad():
                for i, (xb, _) in enumerate(calib):
                    if i == 50:
                        break
                    model(xb)
        value = evaluate(model, x_val, y_val, task.loss_fn, task.batch_size, False)["loss"]
        if on_eval is not None:
            on_eval(epoch, value)
    model.eval()
    return model


# ---------------------------------------------------------------------------------------- methods

def run_searches(task: lrsearch.Task, method: str, seed: int, budget: float, study_name: str) -> dict:
    """lrsearch and (a)-(c): one ``lrsearch.optimize`` call, budgeted in full runs."""
    kwargs: dict = {"storage": optuna.storages.InMemoryStorage(), "artifacts": None, "seed": seed,
                    "study_name": study_name, "heartbeat_interval": None, "budget": budget, "n_trials": None}
    if method == "lrsearch":
        kwargs["seed_from"] = range_test(task, seed)
        if SEED_FAMILIES:
            kwargs["seed_families"] = SEED_FAMILIES
    else:
        kwargs["rungs"] = None
        kwargs["space"] = lrsearch.SearchSpace(lr=(1e-6, 1.0))
        if method == "random":
            kwargs["sampler"], kwargs["pruner"] = optuna.samplers.RandomSampler(seed=seed), optuna.pruners.NopPruner()
        else:
            kwargs["sampler"] = optuna.samplers.TPESampler(seed=seed)
            kwargs["pruner"] = (optuna.pruners.MedianPruner() if method == "tpe-median"
                                else optuna.pruners.HyperbandPruner())
    result = lrsearch.optimize(task=task, **kwargs)
    trace = [(float(s), float(b)) for s, b in result.spent_trace()]
    return {"trace": trace, "spent": float(result.spent), "counts": result.counts(),
            "trials": sum(n for state, n in result.counts().items() if state in ("complete", "pruned")),
            "best": {"kind": "schedule", "optimizer": None, "schedule": result.best_schedule.to_dict()}}


def run_defaults(task: lrsearch.Task, data, name: str, seed: int) -> dict:
    """(d): range test, then four fixed full runs; the AdamW ones with AdamW whatever the task's."""
    rt = range_test(task, seed)
    cosine_lr, onecycle_lr = range_lrs(rt)
    warm = {"frac": 0.05}
    candidates = [
        ("cosine", None, lrsearch.Schedule("cosine", lr=cosine_lr, warmup=warm)),
        ("onecycle", None, lrsearch.Schedule("onecycle", lr=onecycle_lr, params={
            "pct_start": 0.25, "div_factor": 25.0, "final_div_factor": 4000.0})),
        ("adamw-3e-4", "adamw", lrsearch.Schedule("cosine", lr=3e-4, warmup=warm)),
        ("adamw-1e-3", "adamw", lrsearch.Schedule("cosine", lr=1e-3, warmup=warm)),
    ]
    adamw_task, _ = make_task(name, task.epochs, "adamw", task.device, data)
    spent = rt.iterations / steps_per_run(task)
    trace, best, best_entry, runs = [(spent, math.inf)], math.inf, None, {}
    for label, opt, schedule in candidates:
        result = lrsearch.train(adamw_task if opt else task, schedule, seed=seed)
        spent += 1.0
        value = result.final if math.isfinite(result.final) else math.inf
        test = evaluate(result.model, data.x_test, data.y_test, data.loss_fn, data.batch_size, data.classification)
        runs[label] = {"val": value, "test_loss": test["loss"], "schedule": schedule.to_dict(), "optimizer": opt}
        if value < best:
            best, best_entry = value, {"kind": "schedule", "optimizer": opt, "schedule": schedule.to_dict(),
                                       "label": label}
        trace.append((spent, best))
    if best_entry is None:  # every run diverged: retrain the first anyway, its test score says so
        best_entry = {"kind": "schedule", "optimizer": None, "schedule": candidates[0][2].to_dict(), "label": "cosine"}
    return {"trace": trace, "spent": spent, "trials": len(candidates), "best": best_entry, "fixed_runs": runs,
            "range_test": {"iterations": rt.iterations, "cosine_lr": cosine_lr, "onecycle_lr": onecycle_lr}}


def _schedulefree_trial(task: lrsearch.Task, trial: optuna.trial.Trial, seed: int) -> tuple[int, float | None]:
    """One trial of (e): (evaluations run, final validation loss or ``None`` when pruned)."""
    lr = trial.suggest_float("lr", *SF_LR, log=True)
    ran, last = 0, math.inf

    def on_eval(epoch: int, value: float) -> None:
        nonlocal ran, last
        ran, last = epoch + 1, value
        if not math.isfinite(value):
            raise optuna.TrialPruned()
        trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    try:
        train_schedulefree(task, lr, seed, on_eval)
    except optuna.TrialPruned:
        return ran, None
    return ran, last


def run_schedulefree(task: lrsearch.Task, seed: int, budget: float) -> dict:
    """(e): seeded TPE + MedianPruner over Schedule-Free AdamW's LR; a trial is one full run."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner())
    spent, best, best_lr, trace = 0.0, math.inf, None, []
    while spent + 1.0 <= budget + EPS:  # as ``optimize`` does: a new trial only if a full run still fits
        trial = study.ask()
        ran, value = _schedulefree_trial(task, trial, seed)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
            if value < best:
                best, best_lr = value, trial.params["lr"]
        spent += ran / task.epochs  # a pruned run is charged what it trained
        trace.append((spent, best))
    if best_lr is None:
        best_lr = study.trials[0].params["lr"] if study.trials else 1e-3
    states = [t.state.name.lower() for t in study.trials]
    return {"trace": trace, "spent": spent, "trials": len(states),
            "counts": {s: states.count(s) for s in set(states)}, "best": {"kind": "schedulefree", "lr": best_lr}}


def retrain_test(name: str, best: dict, epochs: int, optimizer: str, device: str, data) -> dict:
    """The best retrained from scratch at full length (training seed 0), scored on the test split."""
    task, _ = make_task(name, epochs, best.get("optimizer") or optimizer, device, data)
    if best["kind"] == "schedulefree":
        model = train_schedulefree(task, best["lr"], seed=0)
    else:
        model = lrsearch.train(task, lrsearch.Schedule.from_dict(best["schedule"]), seed=0).model
    out = evaluate(model, data.x_test, data.y_test, data.loss_fn, data.batch_size, data.classification)
    return {"test_loss": out["loss"], **({"test_accuracy": out["accuracy"]} if "accuracy" in out else {})}


def run_one(name: str, method: str, seed: int, device: str, budget: float) -> dict:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    epochs, opt, _ = SETUP[name]
    task, data = make_task(name, epochs, opt, device)
    t0 = time.perf_counter()
    if method == "defaults":
        out = run_defaults(task, data, name, seed)
    elif method == "schedulefree":
        out = run_schedulefree(task, seed, budget)
    else:
        out = run_searches(task, method, seed, budget, f"{name}-{method}-{seed}")
    search_s = time.perf_counter() - t0
    out.update(retrain_test(name, out["best"], epochs, opt, device, data))
    out["final_best"] = best_at(out["trace"], budget)
    out["best"]["describe"] = describe(out["best"])
    return {"task": name, "method": method, "seed": seed, "budget": budget, "epochs": epochs, "optimizer": opt,
            "steps_per_run": steps_per_run(task), "search_seconds": search_s,
            "seconds": time.perf_counter() - t0, **out}


# --------------------------------------------------------------------------------------- measures

def describe(best: dict) -> str:
    if best["kind"] == "schedulefree":
        return f"schedule-free AdamW(lr={best['lr']:.3g})"
    text = lrsearch.Schedule.from_dict(best["schedule"]).describe()
    return f"AdamW {text}" if best.get("optimizer") else text


def budget_to_reach(trace: list, target: float, budget: float, tolerance: float = 0.0) -> float:
    """Full runs spent when the trace's best first gets to ``target`` (within ``tolerance``), or inf."""
    if not math.isfinite(target):
        return math.nan
    for spent, best in trace:
        if spent > budget + EPS:
            break
        if best is not None and best <= target + tolerance * abs(target) + 1e-12:
            return spent
    return math.inf


def pair_ratios(runs: list[dict], name: str, method: str, baseline: str, tolerance: float = 0.0) -> list[float]:
    """Per seed: budget ``method`` needs to reach ``baseline``'s final best / what ``baseline`` needed."""
    out = []
    for ref in (r for r in runs if r["task"] == name and r["method"] == baseline):
        run = next((r for r in runs if r["task"] == name and r["method"] == method and r["seed"] == ref["seed"]), None)
        if run is None:
            continue
        own = budget_to_reach(ref["trace"], ref["final_best"], ref["budget"], tolerance)
        if not math.isfinite(own) or own <= 0:
            out.append(math.nan)
            continue
        out.append(budget_to_reach(run["trace"], ref["final_best"], run["budget"], tolerance) / own)
    return out


def ratio_text(ratios: list[float]) -> str:
    """Median over seeds (unreached seeds count as infinite) and how many seeds reached."""
    valid = [x for x in ratios if not math.isnan(x)]
    if not valid:
        return "n/a"
    med = statistics.median(valid)
    reached = sum(math.isfinite(x) for x in valid)
    return f"{'never' if not math.isfinite(med) else f'{med:.2f}'} ({reached}/{len(valid)})"


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else math.nan


def _std(xs: list[float]) -> float:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.stdev(xs) if len(xs) > 1 else math.nan


def _fmt(x: float, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def noise(runs: list[dict], name: str) -> dict:
    """Std over seeds of the fixed schedule (val, test), of defaults' cosine, of each method's best."""
    d = [r for r in runs if r["task"] == name and r["method"] == "defaults"]
    fixed = [r["fixed_runs"][FIXED] for r in d]
    cos = [r["fixed_runs"]["cosine"] for r in d]
    finals = {m: _std([r["final_best"] for r in runs if r["task"] == name and r["method"] == m]) for m in METHODS}
    return {"fixed_val": _std([f["val"] for f in fixed]), "fixed_test": _std([f["test_loss"] for f in fixed]),
            "cosine_val": _std([f["val"] for f in cos]), "cosine_test": _std([f["test_loss"] for f in cos]),
            "final_best": finals, "seeds": len(d)}


def summarise(runs: list[dict]) -> str:
    names = [n for n in dict.fromkeys(r["task"] for r in runs)]
    seeds = sorted({r["seed"] for r in runs})
    budget = runs[0]["budget"] if runs else math.nan
    out = [(f"Budget: {budget:g} full runs per method, task and seed; seeds {seeds}. Values are validation "
           "losses (lower is better); test scores retrain each method's best from scratch (training seed 0). "
           "Methods and measures: the docstring of studies/bench_search.py."), "",
           "| task | epochs (evaluations) per full run | optimizer steps per full run | task's optimizer |",
           "|---|---|---|---|"]
    for name in names:
        r = next(x for x in runs if x["task"] == name)
        out.append(f"| {name} | {r['epochs']} | {r['steps_per_run']} | {r.get('optimizer', '?')} |")
    out.append("")

    out += ["## Per task and method (mean over seeds)", "",
            ("| task | method | final best val (mean +- std) | spent | trials | test loss (mean +- std) | "
            "test accuracy | job s |"), "|---|---|---|---|---|---|---|---|"]
    for name in names:
        for m in METHODS:
            rs = [r for r in runs if r["task"] == name and r["method"] == m]
            if not rs:
                continue
            acc = [r["test_accuracy"] for r in rs if "test_accuracy" in r]
            out.append(f"| {name} | {LABEL[m]} | {_fmt(_mean([r['final_best'] for r in rs]))} +- "
                       f"{_fmt(_std([r['final_best'] for r in rs]))} | {_mean([r['spent'] for r in rs]):.2f} | "
                       f"{_mean([r['trials'] for r in rs]):.1f} | {_fmt(_mean([r['test_loss'] for r in rs]))} +- "
                       f"{_fmt(_std([r['test_loss'] for r in rs]))} | {_fmt(_mean(acc), 3) if acc else '-'} | "
                       f"{_mean([r['seconds'] for r in rs]):.0f} |")

    out += ["", "## Seed noise", "",
            (f"Std over seeds of one fixed schedule ({FIXED}: AdamW, cosine + 5% warmup, no search; only the "
            "training seed varies), of (d)'s cosine (LR from each seed's range test), and of each method's "
            "final best."), "",
            "| task | fixed val std | fixed test std | (d) cosine val std | (d) cosine test std | "
            + " | ".join(f"{LABEL[m]} final-best std" for m in METHODS) + " |",
            "|---|---|---|---|---|" + "---|" * len(METHODS)]
    noises = {}
    for name in names:
        if not any(r["task"] == name and r["method"] == "defaults" for r in runs):
            continue
        n = noises[name] = noise(runs, name)
        out.append(f"| {name} | {_fmt(n['fixed_val'])} | {_fmt(n['fixed_test'])} | {_fmt(n['cosine_val'])} | "
                   f"{_fmt(n['cosine_test'])} | " + " | ".join(_fmt(n["final_best"][m]) for m in METHODS) + " |")

    for tol, title in ((0.0, "each baseline's final best"), (0.01, "within 1% of each baseline's final best")):
        out += ["", f"## Budget to reach {title}",
                "", ("Ratio of the budget the row's method needs to the budget the column's baseline itself needed; "
                "median over seeds (a seed that never got there counts as infinite), (seeds that reached / seeds)."), "",
                "| task | method | " + " | ".join(LABEL[b] for b in BASELINES) + " |",
                "|---|---|" + "---|" * len(BASELINES)]
        for name in names:
            for m in METHODS:
                if not any(r["task"] == name and r["method"] == m for r in runs):
                    continue
                cells = ["-" if m == b else ratio_text(pair_ratios(runs, name, m, b, tol)) for b in BASELINES]
                out.append(f"| {name} | {LABEL[m]} | " + " | ".join(cells) + " |")

    out += ["", "## Per seed", "", ("| task | seed | method | final best val | spent | trials | to reach (a) | "
            "to reach (b) | test loss | test acc | best | job s |"), "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        for seed in seeds:
            for m in METHODS:
                r = next((x for x in runs if x["task"] == name and x["method"] == m and x["seed"] == seed), None)
                if r is None:
                    continue
                to = []
                for b in ("tpe-median", "tpe-hyperband"):
                    ratios = [x for x in pair_ratios([x for x in runs if x["seed"] == seed], name, m, b)]
                    to.append("-" if m == b or not ratios else ratio_text(ratios).split(" ")[0])
                out.append(f"| {name} | {seed} | {LABEL[m]} | {_fmt(r['final_best'])} | {r['spent']:.2f} | "
                           f"{r['trials']} | {to[0]} | {to[1]} | {_fmt(r['test_loss'])} | "
                           f"{_fmt(r.get('test_accuracy'), 3) if 'test_accuracy' in r else '-'} | "
                           f"{r['best']['describe']} | {r['seconds']:.0f} |")

    out += ["", "## Goals", ""] + goals(runs, names, noises)
    return "\n".join(out)


def goals(runs: list[dict], names: list[str], noises: dict) -> list[str]:
    """The issue's three checks, per task, with the noise they were judged against."""
    lines, fast = [], 0
    for name in names:
        have = {m for m in METHODS if any(r["task"] == name and r["method"] == m for r in runs)}
        if "lrsearch" not in have:
            continue
        n = noises.get(name, {})
        val_noise, test_noise = n.get("fixed_val", math.nan), n.get("fixed_test", math.nan)
        tol_v = 0.0 if math.isnan(val_noise) else val_noise
        tol_t = 0.0 if math.isnan(test_noise) else test_noise
        parts = []
        meds = {}
        for b in ("tpe-median", "tpe-hyperband"):
            if b in have:
                ratios = [x for x in pair_ratios(runs, name, "lrsearch", b) if not math.isnan(x)]
                meds[b] = statistics.median(ratios) if ratios else math.nan
        ok_fast = bool(meds) and all(x <= 1 / 3 for x in meds.values())
        fast += ok_fast
        parts.append("budget to reach " + ", ".join(f"{LABEL[b]}'s best: {ratio_text(pair_ratios(runs, name, 'lrsearch', b))}"
                                                    for b in meds) + f" -> {'<= 1/3' if ok_fast else 'NOT <= 1/3'}")
        ours = _mean([r["final_best"] for r in runs if r["task"] == name and r["method"] == "lrsearch"])
        worse = []
        for b in BASELINES:
            if b in have:
                theirs = _mean([r["final_best"] for r in runs if r["task"] == name and r["method"] == b])
                if not ours <= theirs + tol_v:
                    worse.append(f"{LABEL[b]} ({theirs:.4f})")
        parts.append(f"final best {ours:.4f} vs every baseline within noise {_fmt(val_noise)}: "
                     + ("yes" if not worse else "NO, behind " + ", ".join(worse)))
        if "tpe-median" in have:
            t_ours = _mean([r["test_loss"] for r in runs if r["task"] == name and r["method"] == "lrsearch"])
            t_a = _mean([r["test_loss"] for r in runs if r["task"] == name and r["method"] == "tpe-median"])
            parts.append(f"retrained test loss {t_ours:.4f} vs (a) {t_a:.4f} (noise {_fmt(test_noise)}): "
                         + ("no worse" if t_ours <= t_a + tol_t else "WORSE"))
        lines.append(f"- {name}: " + "; ".join(parts))
    lines.append(f"- lrsearch reaches (a)'s and (b)'s final best with <= 1/3 of their budget (median over seeds) "
                 f"on {fast}/{len([x for x in names if any(r['task'] == x and r['method'] == 'lrsearch' for r in runs)])} "
                 "tasks (goal: >= 4 of 5).")
    return lines


def plot(runs: list[dict], prefix: str) -> list[Path]:
    from matplotlib.figure import Figure

    paths = []
    for name in dict.fromkeys(r["task"] for r in runs):
        rs = [r for r in runs if r["task"] == name]
        budget = max(r["budget"] for r in rs)
        fig = Figure(figsize=(11, 4.5), layout="constrained")
        ax, ax2 = fig.subplots(1, 2, width_ratios=(3, 1))
        tops = []
        for i, m in enumerate(METHODS):
            for j, r in enumerate(x for x in rs if x["method"] == m):
                xs = [0.0] + [s for s, _ in r["trace"]]
                ys = [math.nan] + [b if math.isfinite(b) else math.nan for _, b in r["trace"]]
                ax.step(xs, ys, where="post", color=f"C{i}", alpha=0.75, lw=1.4,
                        label=LABEL[m] if j == 0 else None)
                early = [b for s, b in r["trace"] if math.isfinite(b) and s <= budget / 3 + EPS]
                tops.append(early[-1] if early else best_at(r["trace"], budget))
                ax2.plot([i + 0.08 * (r["seed"] - 1)], [r["test_loss"]], "o", color=f"C{i}", alpha=0.8)
        finite = [t for t in tops if math.isfinite(t)]
        lows = [r["final_best"] for r in rs if math.isfinite(r["final_best"])]
        if finite and lows:
            lo, hi = min(lows), max(finite)
            ax.set_ylim(lo - 0.05 * (hi - lo + 1e-12), hi + 0.05 * (hi - lo + 1e-12))
        ax.axvline(budget, color="k", ls=":", lw=1)
        ax.set_xlim(0, budget * 1.03)
        ax.set_xlabel("budget spent (full-run equivalents of optimizer steps; range tests included)")
        ax.set_ylabel("best validation loss so far (full-length runs)")
        ax.set_title(f"{name}: one line per seed")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        ax2.set_xticks(range(len(METHODS)), [LABEL[m].split(" ")[0] for m in METHODS], rotation=45, fontsize=8)
        ax2.set_ylabel("test loss of the best, retrained (seed 0)")
        ax2.set_title("retrained test loss, per seed")
        ax2.grid(True, alpha=0.3)
        path = OUT / f"{prefix}_{name}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)
    return paths


# -------------------------------------------------------------------------------------- overhead

def overhead(n: int = 40) -> str:
    """ms per trial: plain Optuna suggesting an equivalent space vs lrsearch.optimize, no training.

    In a full run it runs as one more job beside the training jobs, so it is timed under that load.
    """
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
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
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(saved, indent=1))
    (OUT / f"{name}.md").write_text(table + "\n")
    plot(runs, name)
    return table


def _guarded(job: tuple) -> dict:
    """``run_one(*job)``; a failure is returned (with its traceback), not raised, so others finish."""
    try:
        return run_one(*job)
    except Exception:  # noqa: BLE001
        import traceback

        return {"failed": True, "job": list(job), "error": traceback.format_exc()}


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
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        if not isinstance(saved, dict) or "runs" not in saved:
            raise SystemExit(f"{args.from_json} is not a run of this version of the benchmark.")
        print(write(saved, args.name))
        return
    global SEED_FAMILIES
    SEED_FAMILIES = tuple(f for f in args.seed_families.split(",") if f)
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
        saved = {"command": "python studies/bench_search.py " + " ".join(argv if argv is not None else sys.argv[1:]),
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
