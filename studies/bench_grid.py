"""Regret against a grid (issue 23): where does an exhaustive full-length grid put the best peak LR,
against the range test's ``search_range()`` and suggestions?

For each task (the five of ``bench_search.py`` at ``search_arms.SETUP``'s epochs and optimizer, and
the held-out ``lstm-sgd``, SGD + momentum with gradient clipping 0.25, and ``onepass-lm``, AdamW;
``SETUP`` below), it runs the range test of ``harness.range_test(task, seed=0)``, then trains every
family of ``FAMILIES`` at its defaults (a 5% linear warmup where the family has no rise of its own)
at peak LRs on a half-decade ladder (1e-4, 3e-4, 1e-3, ...) from one decade below the range's low
to 1.5 decades above its high, with training seeds 0 and 1, each a full-length ``lrsearch.train``
run; the value of a run is its FINAL validation loss (``TrainResult.final``, as ``bench_search``'s
full runs), with its test loss. A family whose best 2-seed mean sits at an edge of its ladder gets
one more point on that side, until it does not (at most ``--max-widen`` times a side); a diverged
run (non-finite) counts as worse than any finite one.

The best LR of a family is also refined by a parabola through (log10 LR, mean) at its best grid
point and the two neighbours. The seed noise of a task: the median, over its families' best points, of |seed 0 - seed 1| / 2
(the two-sample estimate of the std of a 2-seed mean).

Writes ``studies/results/bench_grid.json`` (every run, and per task the range test, the best,
the noise and each family's best) and ``bench_grid.md`` (the tables), rewritten after each task;
``grid(task)`` reads the committed JSON for other benchmarks.

    python studies/bench_grid.py                # all tasks, 1 worker, resumable through
                                                # studies/results/bench_grid_runs.jsonl
    python studies/bench_grid.py --tasks lstm-sgd onepass-lm
    python studies/bench_grid.py --quick        # smoke run: regression-mlp, 2 LRs, 1 seed, prints only
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from search_arms import SETUP as SEARCH_SETUP  # noqa: E402


# task -> (epochs per full run, optimizer): bench_search's, then the held-out tasks'
SETUP = {**{name: (epochs, opt) for name, (epochs, opt, _) in SEARCH_SETUP.items()},
         "lstm-sgd": (3, "sgd"), "onepass-lm": (1, "adamw")}
ORDER = ("lstm-sgd", "onepass-lm", "char-lm", "mnist1d-mlp", "regression-mlp", "mnist1d-cnn", "mnist1d-cnn-bn")
FAMILIES = ("cosine", "linear", "wsd", "onecycle", "constant", "step")
SEEDS = (0, 1)
CACHE = harness.OUT / "bench_grid_runs.jsonl"


def lr_of(k: int) -> float:
    """The half-decade ladder: k = 2j is 1e{j}, k = 2j + 1 is 3e{j}."""
    return float(f"{1 if k % 2 == 0 else 3}e{k // 2}")


def ladder(low: float, high: float) -> range:
    """Ladder indices from one decade below ``low`` to 1.5 decades above ``high``."""
    return range(math.floor(2 * math.log10(low)) - 2, math.ceil(2 * math.log10(high)) + 4)


def schedule(family: str, lr: float) -> lrsearch.Schedule:
    """``family`` at its defaults, with a 5% linear warmup unless it rises on its own."""
    if lrsearch.schedules.get_family(family).rises:
        return lrsearch.Schedule(family, lr=lr)
    return lrsearch.Schedule(family, lr=lr, warmup={"shape": "linear", "frac": 0.05})


def run_one(job: tuple[str, str, float, int]) -> dict:
    """One full run of (task, family, lr, seed): its final validation loss and test loss (None if
    not finite)."""
    torch.set_num_threads(1)
    # denormal floats (an LSTM's saturated gates at a high LR) made a CPU run 7x slower; flushing them
    # left lstm-sgd's cosine at LR 30 bit-identical (validation 2.29017) in 7 s instead of 40-50 s
    # (set for this run only: left on, it is process state that breaks float code run after it)
    name, family, lr, seed = job
    epochs, opt = SETUP[name]
    data = harness.load(name)
    task = harness.task_of(data, epochs, opt)
    start = time.perf_counter()
    torch.set_flush_denormal(True)
    try:
        result = lrsearch.train(task, schedule(family, lr), seed=seed)
    finally:
        torch.set_flush_denormal(False)
    val = result.final if math.isfinite(result.final) else None
    test = harness.score(result.model, data)["loss"] if val is not None else None
    return {"task": name, "family": family, "lr": lr, "seed": seed, "epochs": epochs, "optimizer": opt,
            "steps": result.steps, "val": val, "test": test if test is None or math.isfinite(test) else None,
            "seconds": round(time.perf_counter() - start, 3)}


def _key(job: tuple) -> str:
    name, family, lr, seed = job
    return f"{name}|{family}|{lr!r}|{seed}"


def _row_key(row: dict) -> str:
    return _key((row["task"], row["family"], row["lr"], row["seed"]))


def _mean(runner: harness.Runner, name: str, family: str, lr: float, seeds, field: str = "val") -> float:  # noqa: ANN001
    values = [runner.row((name, family, lr, s))[field] for s in seeds]
    return statistics.fmean(values) if all(v is not None for v in values) else math.inf


def refine(lrs: list[float], means: list[float], at: int) -> float:
    """The vertex of the parabola through (log10 lr, mean) at the best grid point and its two
    neighbours, kept between them; the grid point itself at an edge or next to a diverged run."""
    if not 0 < at < len(lrs) - 1 or not all(map(math.isfinite, means[at - 1:at + 2])):
        return lrs[at]
    (x0, x1, x2), (y0, y1, y2) = [math.log10(x) for x in lrs[at - 1:at + 2]], means[at - 1:at + 2]
    a = x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)
    b = x2 ** 2 * (y0 - y1) + x1 ** 2 * (y2 - y0) + x0 ** 2 * (y1 - y2)
    return lrs[at] if a == 0 else 10 ** min(max(-b / (2 * a), x0), x2)


@functools.lru_cache(maxsize=None)
def range_info(name: str) -> dict:
    """The range test of ``name``'s task (seed 0): its search_range and suggestions."""
    epochs, opt = SETUP[name]
    task = harness.task_of(harness.load(name), epochs, opt)
    rt = harness.range_test(task, seed=0)
    low, high = rt.search_range()
    return {"low": low, "high": high, "iterations": rt.iterations, "steps_per_run": task.full_steps(),
            **{k: rt.suggestion(k) for k in ("valley", "midpoint", "steep")}}


def run_task(name: str, runner: harness.Runner, families, seeds, ks: list[int], max_widen: int) -> dict:  # noqa: ANN001
    """The grid of one task, widened at the edges; its summary."""
    cells = {f: list(ks) for f in families}
    widened = {f: [0, 0] for f in families}  # (low side, high side)
    while True:
        runner.run([(name, f, lr_of(k), s) for f, fk in cells.items() for k in fk for s in seeds])
        grew = False
        for f, fk in cells.items():
            means = [_mean(runner, name, f, lr_of(k), seeds) for k in fk]
            at = min(range(len(fk)), key=means.__getitem__)
            side = 0 if at == 0 and math.isfinite(means[0]) else 1 if at == len(fk) - 1 else None
            if side is not None and widened[f][side] < max_widen:
                fk.insert(0, fk[0] - 1) if side == 0 else fk.append(fk[-1] + 1)
                widened[f][side] += 1
                grew = True
        if not grew:
            break
    return summarise(name, runner, cells, widened, seeds)


def summarise(name: str, runner: harness.Runner, cells: dict, widened: dict, seeds) -> dict:  # noqa: ANN001
    info = range_info(name)
    out: dict = {"range_test": info, "families": {}, "grid": {}}
    for f, fk in cells.items():
        lrs = [lr_of(k) for k in fk]
        means = [_mean(runner, name, f, lr, seeds) for lr in lrs]
        at = min(range(len(lrs)), key=means.__getitem__)
        lr = lrs[at]
        vals = [runner.row((name, f, lr, s))["val"] for s in seeds]
        out["grid"][f] = [{"lr": x, "val": None if not math.isfinite(m) else m} for x, m in zip(lrs, means)]
        mid = info["midpoint"] or math.sqrt(info["low"] * info["high"])
        out["families"][f] = {
            "lr": lr, "refined_lr": refine(lrs, means, at), "val": means[at], "seeds": vals,
            "test": _mean(runner, name, f, lr, seeds, "test"),
            "log10_vs_high": math.log10(lr / info["high"]), "log10_vs_low": math.log10(lr / info["low"]),
            "log10_vs_midpoint": math.log10(lr / mid), "inside": info["low"] <= lr <= info["high"],
            "edge": "low" if at == 0 else "high" if at == len(lrs) - 1 else None, "widened": widened[f]}
    best_f = min(out["families"], key=lambda f: out["families"][f]["val"])
    diffs = [abs(v["seeds"][0] - v["seeds"][1]) / 2 for v in out["families"].values()
             if len(v["seeds"]) > 1 and None not in v["seeds"]]
    out["best"] = {"family": best_f, **{k: out["families"][best_f][k] for k in ("lr", "val", "seeds", "test")}}
    out["noise"] = statistics.median(diffs) if diffs else None
    inside = [(p["val"], f, p["lr"]) for f, g in out["grid"].items() for p in g
              if info["low"] <= p["lr"] <= info["high"] and p["val"] is not None]
    if inside:  # the best a search confined to search_range() could find on this grid
        val, f, lr = min(inside)
        out["inside_best"] = {"family": f, "lr": lr, "val": val, "regret": val - out["best"]["val"]}
    sides = [(v["lr"] > info["high"]) - (v["lr"] < info["low"]) for v in out["families"].values()]
    out["families_below_inside_above"] = [sides.count(-1), sides.count(0), sides.count(1)]
    out["seconds_per_run"] = statistics.median(
        r["seconds"] for r in runner.done.values() if r["task"] == name)
    return out


def _f(x: float | None, fmt: str = ".4f") -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, fmt)


def markdown(results: dict, command: str) -> str:
    lines = ["# Regret against a grid (issue 23)", "", f"`{command}`", "",
             "Per task: every family of " + ", ".join(f"`{f}`" for f in FAMILIES) + " at its defaults (5% "
             "linear warmup unless it rises), peak LRs on a half-decade ladder from a decade below the range "
             "test's `search_range()` low to 1.5 decades above its high (widened at an edge), training seeds "
             f"{', '.join(map(str, SEEDS))}, each a full-length run; value = the FINAL validation loss, mean "
             "over seeds. Noise = median over the families' best points of |seed 0 - seed 1| / 2. "
             "`log10 vs high` = log10(best LR / range high); `vs mid` = log10(best LR / midpoint), both of the "
             "grid point; `refined` = the vertex of a parabola through (log10 LR, mean) at the best point and "
             "its two neighbours (the ladder resolves the best LR to about +-0.25 decades).", "",
             "Summary: `best inside` = the best grid point (any family) whose LR lies inside `search_range()`; "
             "`regret` = its mean minus the grid best's; `families` = how many families' best LRs lie "
             "below / inside / above the range.", "",
             "| task | optimizer | search_range | grid best | best inside | regret | seed noise | families |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rt, b, ib = r["range_test"], r["best"], r.get("inside_best")
        inside = f"{ib['family']} {ib['lr']:g}: {ib['val']:.4f}" if ib else "none"
        lines.append(f"| {name} | {SETUP[name][1]} | {rt['low']:.3g} .. {rt['high']:.3g} | {b['family']} "
                     f"{b['lr']:g}: {b['val']:.4f} | {inside} | {_f(ib and ib['regret'], '+.4f')} | "
                     f"{_f(r['noise'])} | {' / '.join(map(str, r.get('families_below_inside_above', [])))} |")
    lines.append("")
    for name, r in results.items():
        rt, b = r["range_test"], r["best"]
        epochs, opt = SETUP[name]
        lines += [f"## {name} ({opt}, {epochs} epoch(s), {rt['steps_per_run']} steps, "
                  f"~{r['seconds_per_run']:.1f} s a run)", "",
                  f"Range test (seed 0, {rt['iterations']} iterations): search_range {rt['low']:.3g} .. "
                  f"{rt['high']:.3g}; valley {_f(rt['valley'], '.3g')}, midpoint {_f(rt['midpoint'], '.3g')}, "
                  f"steep {_f(rt['steep'], '.3g')}.", "",
                  f"Grid best: **{b['family']} at {b['lr']:g}**: {b['val']:.4f} (seeds "
                  f"{', '.join(_f(v) for v in b['seeds'])}; test {_f(b['test'])}); seed noise "
                  f"{_f(r['noise'])}.", "",
                  "| family | best LR | refined | val (mean) | test | vs best | log10 vs high | log10 vs mid | "
                  "inside range |", "|---|---|---|---|---|---|---|---|---|"]
        for f, v in r["families"].items():
            edge = f" (edge: {v['edge']})" if v["edge"] else ""
            lines.append(f"| {f} | {v['lr']:g}{edge} | {v.get('refined_lr', v['lr']):.3g} | {_f(v['val'])} | {_f(v['test'])} | "
                         f"{_f(v['val'] - b['val'], '+.4f')} | {v['log10_vs_high']:+.2f} | "
                         f"{v['log10_vs_midpoint']:+.2f} | {'yes' if v['inside'] else 'no'} |")
        lrs = sorted({p["lr"] for g in r["grid"].values() for p in g})
        table = {f: {p["lr"]: p["val"] for p in g} for f, g in r["grid"].items()}
        lines += ["", "| LR | " + " | ".join(table) + " |", "|---" * (len(table) + 1) + "|"]
        lines += [f"| {lr:g} | " + " | ".join(_f(t.get(lr)) if lr in t else "" for t in table.values()) + " |"
                  for lr in lrs]
        lines.append("")
    return "\n".join(lines)


def grid(task: str, path: str | Path | None = None) -> dict:
    """The committed grid of ``task``: ``{"best": {family, lr, val, seeds, test}, "noise",
    "families": {family: {lr, val, ...}}, "range_test": {low, high, valley, midpoint, steep}, "grid"}``."""
    data = json.loads(Path(path or harness.OUT / "bench_grid.json").read_text())
    return data["tasks"][task]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(ORDER), choices=list(SETUP))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument("--max-widen", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="regression-mlp, 2 LRs, 1 seed; writes nothing")
    args = parser.parse_args(argv)
    harness.quiet()
    quick = args.quick
    names = ["regression-mlp"] if quick else args.tasks
    families, seeds = (("cosine", "onecycle"), (0,)) if quick else (FAMILIES, SEEDS)
    runner = harness.Runner(run_one, _key, _row_key, args.workers, None if quick else args.cache)
    results: dict = {}
    try:
        for name in names:
            info = range_info(name)
            ks = list(ladder(info["low"], info["high"]))
            ks = ks[len(ks) // 2 - 1:len(ks) // 2 + 1] if quick else ks
            print(f"{name}: range {info['low']:.3g} .. {info['high']:.3g}, LRs {lr_of(ks[0]):g} .. "
                  f"{lr_of(ks[-1]):g} ({len(ks)})", flush=True)
            results[name] = run_task(name, runner, families, seeds, ks, 0 if quick else args.max_widen)
            b = results[name]["best"]
            print(f"  best {b['family']} {b['lr']:g}: {b['val']:.4f}, noise {_f(results[name]['noise'])}",
                  flush=True)
            if not quick:  # the tasks of earlier invocations stay; their runs are in the cache
                path = harness.OUT / "bench_grid.json"
                before = json.loads(path.read_text())["tasks"] if path.exists() else {}
                done = {n: results.get(n, before.get(n)) for n in ORDER if n in results or n in before}
                runs = [r for r in runner.done.values() if r["task"] in done]
                md = markdown(done, harness.command(__file__, argv))
                harness.write("bench_grid", md, {"command": harness.command(__file__, argv),
                                                 "setup": {n: SETUP[n] for n in done}, "tasks": done, "runs": runs})
    finally:
        runner.close()
    if quick:
        print(markdown(results, harness.command(__file__, argv)))
    return results


if __name__ == "__main__":
    main()
