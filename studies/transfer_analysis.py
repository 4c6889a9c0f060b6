"""``bench_transfer.py``'s settings and analysis: the grid of strong schedules, the grid's means and
best at T, the choices and the loss laws scored against it, and the markdown tables."""

from __future__ import annotations

import json
import math
import statistics
from typing import TYPE_CHECKING

import lrsearch

if TYPE_CHECKING:
    from bench_transfer import Runner


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


def target_steps(name: str) -> int:
    return SETUP[name][1]


def grid_schedules(name: str) -> list[lrsearch.Schedule]:
    return [grid_schedule(f, grid_lr(name, k)) for f in FAMILIES for k in range(GRID)]


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
