"""``bench_search.py``'s measures and outputs: budgets to reach a baseline's best, seed noise, the
markdown tables with the goal checks, and one figure per task."""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import EPS  # noqa: E402
from harness import OUT  # noqa: E402
from harness import best_at  # noqa: E402

METHODS = ("lrsearch", "tpe-median", "tpe-hyperband", "random", "defaults", "schedulefree")
BASELINES = METHODS[1:]
LABEL = {"lrsearch": "lrsearch", "tpe-median": "(a) TPE+Median", "tpe-hyperband": "(b) TPE+Hyperband",
         "random": "(c) random", "defaults": "(d) defaults", "schedulefree": "(e) schedule-free"}
FIXED = "adamw-1e-3"  # the fixed schedule whose spread over seeds is the noise figure


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
