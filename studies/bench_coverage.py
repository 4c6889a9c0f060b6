"""Do ``LossModel.predict``'s intervals hold on held-out long runs? (issue 24, item 1)

The grid of ``bench_transfer`` (4 families x 7 peak LRs, 5% warmup) on MNIST-1D's MLP, trained at
T/9 and T/3 (the short runs a search sees) and at T (held out, seeds 0 and 1 by default). ``LossModel()``
(every law form, as ``SearchResult.loss_model`` fits) is fitted on the short runs and predicts
each schedule's final value at T; a prediction's interval is ``Prediction.interval()``. The
coverage is the share of held-out finals inside it, over every grid schedule with a finite final
("all") and over those within 10% of the best final ("near", as ``bench_transfer``).

    python studies/bench_coverage.py                       # MNIST-1D MLP; runs cached (resumable)
    python studies/bench_coverage.py --tasks mnist1d-mlp mnist1d-cnn --seeds 0 1

Writes ``studies/results/bench_coverage.{json,md}`` (``--out`` for the JSON; the md beside it).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_transfer as bt  # noqa: E402
from transfer_analysis import grid_curve  # noqa: E402


OUT = Path(__file__).resolve().parent / "results"


def coverage(runner: bt.Runner, name: str, seeds: tuple[int, ...]) -> dict:
    t = bt.target_steps(name)
    short = [c for c in (grid_curve(runner.row((name, s.to_json(), max(1, round(t / d)), 0)))
                         for d in bt.SHORT for s in bt.grid_schedules(name)) if c is not None]
    model = lrsearch.LossModel().fit(short)
    finals = {s.to_json(): [runner.row((name, s.to_json(), t, seed))["final"] for seed in seeds]
              for s in bt.grid_schedules(name)}
    finite = {k: v for k, v in finals.items() if all(x is not None and math.isfinite(x) for x in v)}
    best = min(statistics.fmean(v) for v in finite.values())
    rows = []
    for spec, measured in finite.items():
        try:
            pred = model.predict(lrsearch.Schedule.from_json(spec), t)
        except ValueError:  # no finite prediction: a miss
            pred = lrsearch.Prediction(math.nan, math.nan)
        for m in measured:
            rows.append({"schedule": json.loads(spec), "measured": m, "predicted": pred.value, "std": pred.std,
                         "near": statistics.fmean(measured) <= 1.1 * best,
                         "covered": pred.interval()[0] <= m <= pred.interval()[1],
                         "error": abs(m - pred.value) / abs(m)})

    def share(sel: list[dict]) -> float:
        return sum(r["covered"] for r in sel) / len(sel) if sel else math.nan

    near = [r for r in rows if r["near"]]
    return {"T": t, "law": model.describe()["law"], "holdout_error": model.holdout_error,
            "coverage_all": share(rows), "coverage_near": share(near), "n_all": len(rows), "n_near": len(near),
            "median_error_near": statistics.median(r["error"] for r in near) if near else math.nan,
            "median_std_near": statistics.median(r["std"] / abs(r["predicted"]) for r in near) if near else math.nan,
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["mnist1d-mlp"], choices=sorted(bt.SETUP))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", default=str(OUT / "bench_coverage_runs.jsonl"))
    parser.add_argument("--out", default=str(OUT / "bench_coverage.json"))
    args = parser.parse_args()
    seeds = tuple(args.seeds)
    runner = bt.Runner(args.workers, Path(args.cache))
    try:
        for name in args.tasks:
            t, specs = bt.target_steps(name), [s.to_json() for s in bt.grid_schedules(name)]
            runner.run([(name, s, t, seed) for s in specs for seed in seeds]
                       + [(name, s, max(1, round(t / d)), 0) for d in bt.SHORT for s in specs])
    finally:
        runner.close()
    reports = {}
    for name in args.tasks:
        reports[name] = coverage(runner, name, seeds)
    rows = [row for r in reports.values() for row in r["rows"]]
    lines = [f"{name}: T={r['T']}, law {r['law']} (held-out error {r['holdout_error']:.1%}); Prediction.interval() "
             f"covers {r['coverage_all']:.0%} of {r['n_all']} held-out finals at T, {r['coverage_near']:.0%} of the "
             f"{r['n_near']} near the best (median error {r['median_error_near']:.1%}, median std "
             f"{r['median_std_near']:.1%})" for name, r in reports.items()]
    lines.append(f"all tasks: {sum(x['covered'] for x in rows) / len(rows):.0%} of {len(rows)} held-out finals covered")
    print("\n".join(lines))
    Path(args.out).write_text(json.dumps({"seeds": list(seeds), "tasks": reports}, indent=1) + "\n")
    command = "python studies/bench_coverage.py " + " ".join(sys.argv[1:])
    Path(args.out).with_suffix(".md").write_text(f"# bench_coverage\n\n`{command.strip()}`\n\n"
                                                 + "\n".join(f"- {line}" for line in lines) + "\n")


if __name__ == "__main__":
    main()
