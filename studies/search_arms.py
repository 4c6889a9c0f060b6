"""The methods ``bench_search.py`` compares (lrsearch, plain Optuna, random search, strong defaults,
Schedule-Free AdamW) and one job of it: a method's search on a task and seed, its best retrained
and scored on the test split. The methods are described in ``bench_search.py``'s docstring."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import optuna
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks as task_zoo  # noqa: E402
from harness import EPS  # noqa: E402
from harness import best_at  # noqa: E402
from harness import evaluate  # noqa: E402
from harness import load  # noqa: E402
from harness import quiet  # noqa: E402
from harness import range_test  # noqa: E402
from harness import score  # noqa: E402
from harness import steps_per_run  # noqa: E402
from harness import task_of  # noqa: E402


SEED_FAMILIES: tuple[str, ...] = ()  # --seed-families
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
SF_LR = (1e-5, 1e-1)


def make_task(name: str, epochs: int, optimizer: str, device: str, data=None) -> tuple[lrsearch.Task, object]:
    data = data if data is not None else load(name)
    return task_of(data, epochs, optimizer, device), data


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
    probe = task_zoo.optimizer_for("adamw", [torch.nn.Parameter(torch.zeros(1))])
    weight_decay = probe.defaults["weight_decay"]
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


def run_searches(task: lrsearch.Task, method: str, seed: int, budget: float, study_name: str) -> dict:
    """lrsearch and (a)-(c): one ``lrsearch.optimize`` call, budgeted in full runs."""
    kwargs: dict = {"storage": optuna.storages.InMemoryStorage(), "artifacts": None, "seed": seed,
                    "study_name": study_name, "heartbeat_interval": None, "budget": budget, "n_trials": None}
    if method == "lrsearch":  # every family: the space these figures were measured on (0.2's default)
        kwargs["seed_from"], kwargs["space"] = range_test(task, seed), lrsearch.SearchSpace("all")
        if SEED_FAMILIES:
            kwargs["seed_families"] = SEED_FAMILIES
    else:
        kwargs["rungs"] = None
        kwargs["space"] = lrsearch.SearchSpace("all", lr=(1e-6, 1.0))
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
        test = score(result.model, data)
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
    out = score(model, data)
    return {"test_loss": out["loss"], **({"test_accuracy": out["accuracy"]} if "accuracy" in out else {})}


def run_one(name: str, method: str, seed: int, device: str, budget: float) -> dict:
    quiet()
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


def describe(best: dict) -> str:
    if best["kind"] == "schedulefree":
        return f"schedule-free AdamW(lr={best['lr']:.3g})"
    text = lrsearch.Schedule.from_dict(best["schedule"]).describe()
    return f"AdamW {text}" if best.get("optimizer") else text


def _guarded(job: tuple) -> dict:
    """``run_one(*job)``; a failure is returned (with its traceback), not raised, so others finish."""
    try:
        return run_one(*job)
    except Exception:  # noqa: BLE001
        import traceback

        return {"failed": True, "job": list(job), "error": traceback.format_exc()}
