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
import warnings
from functools import partial
from pathlib import Path

import optuna
import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import TASKS  # noqa: E402
from tasks import optimizer_for  # noqa: E402

import harness  # noqa: E402


OUT = Path(__file__).resolve().parent / "results"
# task -> (optimizer, target length T in optimizer steps, grid centre LR, task options); the grid is
# centre * 2 ** (k - 3), k = 0..6. MLP: T = 9 epochs (longer runs over-fit MNIST-1D's 4000 samples);
# CNN: T = 27 epochs (a 1D-CNN needs ~3 epochs to leave the loss plateau at ln 10, so T/9 must be
# past it); the LM reads every training window (~5.8k) at most once: T < 1 epoch, as in pre-training.
SETUP = {
    "mnist1d-mlp": ("sgd", 225, 0.2, {}),
    "mnist1d-cnn": ("sgd", 675, 0.12, {}),
    "char-lm": ("adamw", 432, 0.003, {"max_train": None}),
}
LONGER = {"mnist1d-mlp": (4, 10), "mnist1d-cnn": (4,), "char-lm": (4,)}
FAMILIES = {
    "cosine": {},
    "wsd": {},
    "linear": {},
    "constant": {},
}
GRID = 7
SEEDS = (0, 1)
SHORT = (9, 3)  # the short grid: T/9 and T/3
EVALS = 9  # evaluations per run, evenly spaced, at every length
SEARCH_SHARE = 0.25  # the search's budget: this share of the one-seed grid's compute
WARMUP = {"frac": 0.05, "shape": "linear"}


def grid_lr(name: str, k: int) -> float:
    return float(SETUP[name][2] * 2.0 ** (k - GRID // 2))


def grid_schedule(family: str, lr: float) -> lrsearch.Schedule:
    return lrsearch.Schedule(family, lr=lr, warmup=WARMUP, **FAMILIES[family])


# ------------------------------------------------------------------------------------------ runs

_DATA: dict = {}


def data_of(name: str):  # noqa: ANN201
    if name not in _DATA:  # built once per process (MNIST-1D takes seconds to generate)
        _DATA[name] = TASKS[name](**SETUP[name][3])
    return _DATA[name]


def make_task(name: str, epochs: int) -> lrsearch.Task:
    """The task with ``epochs`` evaluations; its full run is ``epochs`` passes over the data."""
    data = data_of(name)
    return lrsearch.Task(data.model_fn, (data.x_train, data.y_train), (data.x_val, data.y_val), data.loss_fn,
                         epochs=epochs, batch_size=data.batch_size, device="cpu",
                         optimizer_fn=partial(optimizer_for, SETUP[name][0]))


def target_steps(name: str) -> int:
    return SETUP[name][1]


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

def range_test(name: str, seed: int) -> lrsearch.RangeTestResult:
    task = make_task(name, EVALS)
    torch.manual_seed(seed)
    model = task.model_fn()
    batches = lrsearch.TensorBatches(*task.train_data, batch_size=task.batch_size, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, batches, verbose=False)


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
        result = lrsearch.optimize(objective, budget=budget, seed_from=range_test(name, seed), seed=seed,
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
    return {"schedule": choice.schedule.to_dict(), "predicted": choice.predicted.value, "by": choice.by,
            "std": choice.predicted.std, "lr_shift": choice.lr_shift}


def grid_schedules(name: str) -> list[lrsearch.Schedule]:
    return [grid_schedule(f, grid_lr(name, k)) for f in FAMILIES for k in range(GRID)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("grid", "all"), default="all")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", default=str(OUT / "bench_transfer_runs.jsonl"))
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
        OUT.mkdir(exist_ok=True)
        (OUT / "bench_transfer.json").write_text(json.dumps(report, indent=1))
        text = render(report)
        (OUT / "bench_transfer.md").write_text(text)
        print(text)
    finally:
        runner.close()


def grid_means(runner: Runner, name: str) -> dict[str, float]:
    t = target_steps(name)
    return {s.to_json(): runner.mean(name, s, t) for s in grid_schedules(name)}


def grid_best(runner: Runner, name: str) -> lrsearch.Schedule:
    means = grid_means(runner, name)
    return lrsearch.Schedule.from_json(min(means, key=means.get))


def _err(pred: float, measured: float) -> float:
    return abs(pred - measured) / abs(measured)


def analyse(runner: Runner, searches: dict, names: list[str]) -> dict:
    out: dict = {"tasks": {}}
    for name in names:
        t = target_steps(name)
        means = grid_means(runner, name)
        best_spec = min(means, key=means.get)
        best = means[best_spec]
        near = [k for k, v in means.items() if v <= best * 1.1]
        finite = [k for k, v in means.items() if math.isfinite(v)]
        per_family = {f: min(v for k, v in means.items() if json.loads(k)["family"] == f) for f in FAMILIES}
        rows = []
        for seed in SEEDS:
            rec = searches[name, seed]
            reused = lrsearch.Schedule.from_dict(rec["reused"])
            errors = {law: {"near": statistics.median(_err(d["grid"][k], means[k]) for k in near),
                            "all": statistics.median(_err(d["grid"][k], means[k]) for k in finite)}
                      for law, d in rec["laws"].items()}
            errors["selected"] = {"near": statistics.median(_err(rec["model_grid"][k], means[k]) for k in near),
                                  "all": statistics.median(_err(rec["model_grid"][k], means[k]) for k in finite)}
            at = {}
            for m, kinds in rec["choices"].items():
                mt = int(m) * t
                at[m] = {kind: {**c, "measured": runner.mean(name, lrsearch.Schedule.from_dict(c["schedule"]), mt)}
                         for kind, c in kinds.items()}
                at[m]["reused"] = {"schedule": rec["reused"], "measured": runner.mean(name, reused, mt)}
                at[m]["grid_best"] = {"schedule": json.loads(best_spec),
                                      "measured": best if m == "1" else
                                      runner.mean(name, lrsearch.Schedule.from_json(best_spec), mt)}
            rows.append({"seed": seed, "at": at, "gaps": {k: (v["measured"] - best) / best for k, v in at["1"].items()},
                         "compute": rec["spent"] * (t // 3) / (len(FAMILIES) * GRID * t),
                         "law": rec["model"]["law"], "holdout_error": rec["model"]["holdout_error"],
                         "errors": errors, "search_seconds": rec["seconds"], "counts": rec["counts"]})
        short = [c for c in (grid_curve(runner.row((name, sch.to_json(), max(1, round(t / d)), 0)))
                             for d in SHORT for sch in grid_schedules(name)) if c is not None]
        grid_laws = {}
        for law in lrsearch.lossmodel.LAWS:
            fitted = lrsearch.LossModel(laws=(law,), overfit=False).fit(short)
            grid_laws[law] = {
                "near": statistics.median(_err(fitted.predict(lrsearch.Schedule.from_json(k), t).value, means[k])
                                          for k in near),
                "all": statistics.median(_err(fitted.predict(lrsearch.Schedule.from_json(k), t).value, means[k])
                                         for k in finite),
                "holdout_error": fitted.holdout_error}
        out["tasks"][name] = {"T": t, "grid_laws": grid_laws, "grid_best": json.loads(best_spec), "grid_best_value": best,
                              "per_family": per_family, "near_points": len(near), "searches": rows,
                              "grid": {k: v for k, v in means.items()}}
    return out


def grid_curve(row: dict) -> lrsearch.lossmodel.Curve | None:
    """A grid run as the loss model's curve (evaluations evenly spaced, as ``lrsearch.train``)."""
    values = row["curve"]
    if any(v is None for v in values):
        return None
    n, steps = len(values), row["steps"]
    return lrsearch.lossmodel.Curve(lrsearch.Schedule.from_dict(row["schedule"]), steps,
                                    tuple(max(1, round((k + 1) * steps / n)) for k in range(n)), tuple(values))


def _fmt(spec: dict) -> str:
    return f"{spec['family']} {spec['lr']:.3g}"


def render(report: dict) -> str:
    lines = ["# Schedules chosen on short runs, checked at the full length", "",
             "Grid: cosine, wsd, linear (all to zero) and constant, 5% linear warmup, 7 peak LRs a factor 2 apart, "
             "trained at T with 2 seeds (mean). Search: `lrsearch.optimize` with no trial longer than T/3, budget "
             f"{SEARCH_SHARE:.0%} of the one-seed grid's compute (range test included; column `compute`). Each "
             "choice trained at T with 2 seeds (mean): `auto` = `result.schedule_for(T)` (the law if it passed its "
             "held-out check, else the rule), `law` = `schedule_for(T, law=True)`, `rule` = `schedule_for(T, "
             "law=False)` (the best T/3 run, peak LR x 3^-0.16), `reused` = `result.best_schedule` unchanged. "
             "Gap: relative to the grid's best mean at T (lower is better).", "",
             "| task | T | grid best | seed | compute | held-out error | auto (by) | gap | law | gap | rule | gap | "
             "reused | gap |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, d in report["tasks"].items():
        for r in d["searches"]:
            a = r["at"]["1"]
            held = "-" if r["holdout_error"] is None else f"{r['holdout_error']:.1%}"
            cells = [f"{_fmt(a[k]['schedule'])}" + (f" ({a[k]['by']})" if k == "auto" else "") + f" | {r['gaps'][k]:+.2%}"
                     for k in ("auto", "law", "rule", "reused")]
            lines.append(f"| {name} | {d['T']} | {_fmt(d['grid_best'])}: {d['grid_best_value']:.4f} | {r['seed']} | "
                         f"{r['compute']:.0%} | {held} | " + " | ".join(cells) + " |")
    lines += ["", "## Loss laws: predicting the grid's final values at T from the search's trials (<= T/3)", "",
              "Median absolute relative error over the grid points within 10% of the grid's best (all finite "
              "points in brackets); `selected` is the form `LossModel` chose by its held-out check "
              "(predicting the T/3 runs from the T/9 ones), whose error is the last column.", "",
              "| task | seed | area | multipower | selected (form) | held-out error |", "|---|---|---|---|---|---|"]
    for name, d in report["tasks"].items():
        for r in d["searches"]:
            e = r["errors"]
            cells = [f"{e[k]['near']:.2%} ({e[k]['all']:.2%})" for k in ("area", "multipower", "selected")]
            held = "-" if r["holdout_error"] is None else f"{r['holdout_error']:.2%}"
            lines.append(f"| {name} | {r['seed']} | {cells[0]} | {cells[1]} | {cells[2]} {r['law']} | {held} |")
    lines += ["", "Fitted instead on the grid's own T/9 and T/3 runs (28 schedules each, seed 0):", "",
              "| task | area | multipower | held-out error (area, multipower) |", "|---|---|---|---|"]
    for name, d in report["tasks"].items():
        g = d["grid_laws"]
        held = ", ".join("-" if g[k]["holdout_error"] is None else f"{g[k]['holdout_error']:.2%}"
                         for k in ("area", "multipower"))
        lines.append(f"| {name} | {g['area']['near']:.2%} ({g['area']['all']:.2%}) | "
                     f"{g['multipower']['near']:.2%} ({g['multipower']['all']:.2%}) | {held} |")
    lines += ["", "## Longer runs", "", "Each choice made for mT (`schedule_for(m * T)`), the grid's best at T and "
              "the T/3 best rebuilt at mT unchanged; final validation loss, mean of 2 seeds.", "",
              "| task | seed | m | auto | law | rule | grid best at T | reused |", "|---|---|---|---|---|---|---|---|"]
    for name, d in report["tasks"].items():
        for r in d["searches"]:
            for m, x in r["at"].items():
                if m == "1":
                    continue
                cells = [f"{x[k]['measured']:.4f}" + (f" ({_fmt(x[k]['schedule'])})" if k in ("auto", "law") else "")
                         for k in ("auto", "law", "rule", "grid_best", "reused")]
                lines.append(f"| {name} | {r['seed']} | {m} | " + " | ".join(cells) + " |")
    meta = report.get("meta", {})
    lines += ["", f"{meta.get('trained', '?')} runs trained by this invocation, {meta.get('seconds', '?')} s wall "
              f"(torch {meta.get('torch', '?')}, 1 thread per worker, load {meta.get('load', 0):.1f} "
              f"on {meta.get('cpus', '?')} CPUs)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
