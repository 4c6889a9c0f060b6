"""``bench_lr_shift.py``'s settings and analysis: the LR grids, the best LR of a grid (refined by a
parabola), beta fitted across lengths and pooled over tasks, and the markdown tables."""

from __future__ import annotations

import math
import os
import statistics

import numpy as np

import lrsearch


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


def grid_lr(name: str, k: int) -> float:
    _, _, centre, factor = SETUP[name]
    return float(centre * factor ** (k - GRID // 2))


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
