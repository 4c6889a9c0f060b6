"""Regret against a grid at the budgets users pay: lrsearch beside the peers a user would pick instead.

For every task, method, search seed and budget B (full runs, counted in optimizer steps as
``bench_search.py`` counts them: range tests, short rungs and pruned runs charged what they train),
the method searches once from scratch at that budget; its winner is then retrained from scratch at
full length on training seeds 0 and 1, and its *regret* is the mean of those two final validation
losses minus the best 2-seed mean of the task's committed full-length grid
(``studies/results/bench_grid.json``, ``bench_grid.py``). Seed noise: the grid's own (see there).

Methods (every one on the same ``lrsearch.Task``: data, model, loss, batching, evaluations):

  lrsearch          ``lrsearch.optimize(task=..., budget=B, seed_from=lr_find(...))``, defaults (the range
                    test clips as the task does; the range a prior, ``lrsearch.search._prior``; the 4
                    families of ``DEFAULT_FAMILIES``).
  lrsearch-all      ``lrsearch`` over every family (``SearchSpace("all")``, 14: 0.2's default space).
  lrsearch-wall     ``lrsearch-all`` with 0.1's range handling: the range test without clipping, its
                    ``search_range()`` as hard bounds, plain grouped TPE (no prior): what the prior and
                    the tails change, and nothing else.
  lrsearch-sf       ``lrsearch`` over the default families and ``schedule_free`` (the task's optimizer in
                    its Schedule-Free form, ``lrsearch.optim.schedule_free``): Schedule-Free as an arm.
  tpe-hyperband     Optuna ``TPESampler`` + ``HyperbandPruner``, LR log-uniform [1e-6, 1], every family.
  schedulefree      Schedule-Free AdamW, its LR tuned by TPE + MedianPruner (``search_arms``).
  default           cosine + 5% warmup at the range test's ``valley``: one run, no search (same at every B).
  priorband         NePS PriorBand (``peer_arms.py``; needs ``make peers``): family x log LR, its prior at
                    the range test's cosine LR (charged the test), Hyperband over run length 1/9..1.
  pbt               Ray Tune PBT (``peer_pbt.py``; needs ``make peers``): population min(8, B) of one full
                    run each, LR explored x0.8/x1.2; its winner's LR trajectory as a piecewise schedule.

    python studies/bench_anytime.py --tasks lstm-sgd,char-lm --budgets 2,4,8 --seeds 3
    python studies/bench_anytime.py --quick          # 1 task, 1 seed, budget 2, 3 methods; writes nothing
    python studies/bench_anytime.py --from-cache     # re-summarise the cached runs

Outputs ``studies/results/bench_anytime.{json,md}`` (every search and retrain; median regret per task,
method and budget) and ``bench_anytime_<task>.png`` (regret against budget, a line per method).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import optuna

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import anytime_report  # noqa: E402
import harness  # noqa: E402
import search_arms  # noqa: E402
from harness import OUT  # noqa: E402

METHODS = ("lrsearch", "lrsearch-all", "lrsearch-wall", "lrsearch-sf", "tpe-hyperband", "schedulefree",
           "default", "priorband", "pbt")
RETRAIN_SEEDS = (0, 1)
# the peers' and TPE's peak-LR range up to 10 where the grid's best LRs lie above 1 (SGD + clipping: 3-10)
WIDE_FOR = {"lstm-sgd": (1e-5, 10.0)}
# bumped when lrsearch's search changes, so cached lrsearch runs of an older search are not reused
# (2: auto rungs and deferred promotions; 3: no seed below the midpoint; 4: the 4-family default space,
# whose runs are version 3's over the same 4 families, and version 3's default space is lrsearch-all's)
LRSEARCH_RUNS = 4


def setup(name: str) -> tuple[int, str, float | None]:
    """(epochs, optimizer, gradient clipping) of a task's full run, as the grid trained it."""
    import bench_grid

    epochs, opt = bench_grid.SETUP[name]
    return epochs, opt, harness.load(name).clip_grad_norm


def task_for(name: str) -> lrsearch.Task:
    epochs, opt, _ = setup(name)
    return harness.task_of(harness.load(name), epochs, opt)


def search(name: str, method: str, seed: int, budget: float) -> dict:
    """One search of ``method`` at ``budget``: what it spent and its winner, as data to retrain."""
    harness.quiet()
    task = task_for(name)
    t0 = time.perf_counter()
    if method == "priorband":  # its prior at the range test's cosine LR, charged the test's steps
        import peer_arms

        out = peer_arms.run_priorband(task, budget, seed, harness.range_test(task, seed), **_wide(name))
        out = {"spent": out["spent"], "trials": out["trials"],
               "winner": {"kind": "schedule", "schedule": out["best"]["schedule"]}}
    elif method == "pbt":  # from the wide range, as its users start: no range test
        import peer_pbt

        out = peer_pbt.run_pbt(task, budget, seed, **_wide(name))
        out = {"spent": out["spent"], "trials": out["trials"],
               "winner": {"kind": "schedule", "schedule": out["best"]["schedule"]}}
    elif method == "schedulefree":
        out = search_arms.run_schedulefree(task, seed, budget)
        out = {"spent": out["spent"], "winner": out["best"], "trials": out["trials"]}
    elif method == "default":
        rt = harness.range_test(task, seed)
        lr = rt.suggestion("valley") or math.sqrt(math.prod(rt.search_range()))
        schedule = lrsearch.Schedule("cosine", lr=lr, warmup={"frac": 0.05})
        out = {"spent": rt.iterations / harness.steps_per_run(task) + 1.0, "trials": 1,
               "winner": {"kind": "schedule", "schedule": schedule.to_dict()}}
    else:
        kwargs: dict = {"storage": optuna.storages.InMemoryStorage(), "artifacts": None, "seed": seed,
                        "heartbeat_interval": None, "budget": budget, "study_name": f"{name}-{method}-{seed}"}
        if method == "tpe-hyperband":
            top = WIDE_FOR.get(name, (None, 1.0))[1]
            kwargs.update(rungs=None, space=lrsearch.SearchSpace("all", lr=(1e-6, top)),
                          sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.HyperbandPruner())
        elif method == "lrsearch-wall":
            rt = harness.range_test(task, seed, clip=False)
            kwargs.update(seed_from=rt, space=lrsearch.SearchSpace("all", lr=rt.search_range()),
                          sampler=optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed))
        else:
            kwargs["seed_from"] = harness.range_test(task, seed)
            if method == "lrsearch-all":
                kwargs["space"] = lrsearch.SearchSpace("all")
            elif method == "lrsearch-sf":
                kwargs["space"] = lrsearch.SearchSpace(families=lrsearch.SearchSpace().families + ("schedule_free",))
        result = lrsearch.optimize(task=task, **kwargs)
        out = {"spent": float(result.spent), "trials": len(result.study.trials),
               "winner": {"kind": "schedule", "schedule": result.best_schedule.to_dict()}}
    return {"task": name, "method": method, "seed": seed, "budget": budget, **out,
            "seconds": time.perf_counter() - t0}


def _wide(name: str) -> dict:
    """The peers' LR range where their default (up to 1) would cut the task's best LRs off."""
    return {"wide": WIDE_FOR[name]} if name in WIDE_FOR else {}


def retrain(name: str, winner: dict, seed: int) -> dict:
    """``winner`` trained from scratch at full length on training ``seed``: its final validation loss."""
    harness.quiet()
    task = task_for(name)
    t0 = time.perf_counter()
    if winner["kind"] == "schedulefree":
        model = search_arms.train_schedulefree(task, winner["lr"], seed)
        value = harness.evaluate(model, *task.val_data, task.loss_fn, task.batch_size, False)["loss"]
    else:
        value = lrsearch.train(task, lrsearch.Schedule.from_dict(winner["schedule"]), seed=seed).final
    value = value if math.isfinite(value) else math.inf
    return {"task": name, "winner": _key(winner), "seed": seed, "val": value, "seconds": time.perf_counter() - t0}


def _key(winner: dict) -> str:
    return json.dumps(winner, sort_keys=True)


def grid_best(name: str) -> tuple[float, float]:
    """(best 2-seed mean, seed noise) of the task's committed grid."""
    import bench_grid

    try:
        g = bench_grid.grid(name)
    except (FileNotFoundError, KeyError):  # no committed grid for the task (yet): regrets are NaN
        return math.nan, math.nan
    return g["best"]["val"], g["noise"]


def summarise(searches: list[dict], retrains: dict[str, float], names: list[str],
              budgets: list[float]) -> tuple[str, dict]:
    """Median regret over search seeds per (task, method, budget), and the table."""
    regret: dict = {}
    for s in searches:
        vals = [retrains.get(f"{s['task']}|{_key(s['winner'])}|{seed}") for seed in RETRAIN_SEEDS]
        if any(v is None for v in vals):
            continue
        best, _ = grid_best(s["task"])
        s["retrained"] = statistics.fmean(vals)
        s["regret"] = s["retrained"] - best
        regret.setdefault((s["task"], s["method"], s["budget"]), []).append(s["regret"])
    methods = [m for m in METHODS if any(k[1] == m for k in regret)]
    lines = []
    for name in names:
        best, noise = grid_best(name)
        lines += [f"\n### {name}: grid best {best:.4f}, seed noise {noise:.4f}\n",
                  "| method | " + " | ".join(f"B={b:g}" for b in budgets) + " |",
                  "|---|" + "---|" * len(budgets)]
        for m in methods:
            cells = []
            for b in budgets:
                xs = regret.get((name, m, b))
                cells.append(f"{statistics.median(xs):+.4f} ({len(xs)})" if xs else "-")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    head = ("Median regret (retrained 2-seed mean validation loss minus the grid's best) over search seeds "
            "(how many in brackets); lower is better, within the seed noise is a tie.\n")
    return head + "\n".join(lines) + "\n", {f"{k[0]}|{k[1]}|{k[2]:g}": v for k, v in regret.items()}


def containment(names: list[str], seeds: int) -> str:
    """Per task and search seed: the LR range the search samples (``SearchSpace(lr=range test)``: the
    range test's ``search_range()`` and its tails) against every family's grid-best peak LR."""
    import bench_grid

    lines = ["| task | seed | search_range() | searched range | grid-best LRs inside (core / searched) |",
             "|---|---|---|---|---|"]
    total = [0, 0, 0]
    for name in names:
        try:
            families = bench_grid.grid(name)["families"]
        except (FileNotFoundError, KeyError):
            continue
        for seed in range(seeds):
            rt = harness.range_test(task_for(name), seed)
            (lo, hi), (wlo, whi) = rt.search_range(), lrsearch.SearchSpace(lr=rt).lr
            lrs = [f["lr"] for f in families.values()]
            core = sum(lo <= x <= hi for x in lrs)
            wide = sum(wlo * (1 - 1e-9) <= x <= whi * (1 + 1e-9) for x in lrs)
            total = [total[0] + core, total[1] + wide, total[2] + len(lrs)]
            lines.append(f"| {name} | {seed} | {lo:.3g} .. {hi:.3g} | {wlo:.3g} .. {whi:.3g} | "
                         f"{core} / {wide} of {len(lrs)} |")
    return "\n".join(lines) + (f"\n\nAll: {total[0]} of {total[2]} inside search_range(), "
                               f"{total[1]} inside the searched range.\n")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="lstm-sgd,char-lm")
    parser.add_argument("--methods", default="lrsearch,lrsearch-all,lrsearch-wall,lrsearch-sf,tpe-hyperband,"
                                             "schedulefree,default")
    parser.add_argument("--budgets", default="2,4,8")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--name", default="bench_anytime")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--from-cache", action="store_true", help="summarise the cached runs, train nothing")
    args = parser.parse_args(argv)
    harness.quiet()
    names = args.tasks.split(",")[:1] if args.quick else args.tasks.split(",")
    methods = ["lrsearch", "tpe-hyperband", "default"] if args.quick else args.methods.split(",")
    if set(methods) - set(METHODS):
        raise SystemExit(f"methods must be among {METHODS}")
    budgets = [2.0] if args.quick else [float(b) for b in args.budgets.split(",")]
    seeds = 1 if args.quick else args.seeds
    cache = None if args.quick else OUT / f"{args.name}_cache.jsonl"
    rows: dict[str, dict] = {}
    if cache and cache.exists():
        for line in cache.read_text().splitlines():
            row = json.loads(line)
            rows[row["key"]] = row
    t0 = time.perf_counter()
    jobs = [("search", (n, m, s, b)) for n in names for s in range(seeds) for b in budgets for m in methods]

    def done(key: str, row: dict) -> None:
        rows[key] = {**row, "key": key}
        if cache:
            with cache.open("a") as f:
                f.write(json.dumps(rows[key]) + "\n")

    def run(kind: str, todo: list[tuple]) -> None:
        keyed = {_job_key(kind, j): j for j in todo}
        keyed = {k: j for k, j in keyed.items() if k not in rows}
        if args.from_cache or not keyed:
            return
        fn = search if kind == "search" else retrain
        for i, (key, row) in enumerate(zip(keyed, harness.pool_map(_star(fn), list(keyed.values()), args.workers))
                                       if args.workers > 1 else ((k, _star(fn)(j)) for k, j in keyed.items())):
            done(key, row)
            print(f"[{kind} {i + 1}/{len(keyed)} {time.perf_counter() - t0:6.0f}s] "
                  + (f"{row['task']} {row['method']} B={row['budget']:g} seed {row['seed']}: spent {row['spent']:.2f}"
                     if kind == "search" else f"{row['task']} retrain seed {row['seed']}: {row['val']:.4f}"), flush=True)

    for name in names:  # task by task: each task's table is complete before the next starts
        mine = [j for _, j in jobs if j[0] == name]
        run("search", mine)
        found = [rows[_job_key("search", j)] for j in mine if _job_key("search", j) in rows]
        run("retrain", [(s["task"], s["winner"], seed) for s in found for seed in RETRAIN_SEEDS])
    searches = [rows[_job_key("search", j)] for _, j in jobs if _job_key("search", j) in rows]
    retrains = {f"{r['task']}|{r['winner']}|{r['seed']}": r["val"] for r in rows.values() if "val" in r}
    table, regret = summarise(searches, retrains, names, budgets)
    print(table)
    if args.quick:
        for s in searches:
            print(f"{s['method']:>14} B={s['budget']:g} spent {s['spent']:.2f}, {s['trials']} trials: retrained "
                  f"{s.get('retrained', math.nan):.4f} {lrsearch.Schedule.from_dict(s['winner']['schedule']).describe()}"
                  if s["winner"]["kind"] == "schedule" else f"{s['method']} {s['winner']}")
    if not args.quick:
        table += "\n## Goals (issue 23), from the medians above\n\n" + anytime_report.goals(regret, names, grid_best)
        table += "\n## Where the grid's best LRs sit against the range searched\n\n" + containment(names, seeds)
        harness.write(args.name, f"`{harness.command(__file__, argv)}`\n\n" + table,
                      {"searches": searches, "regret": regret})
        anytime_report.plot(regret, names, budgets, grid_best, METHODS)
    print(f"wall {time.perf_counter() - t0:.0f} s")
    return {"searches": searches, "retrains": retrains, "regret": regret}


def _job_key(kind: str, job: tuple) -> str:
    if kind == "search":
        name, method, seed, budget = job
        version = f"@{LRSEARCH_RUNS}" if method.startswith("lrsearch") else ""
        if name in WIDE_FOR and method in ("priorband", "pbt", "tpe-hyperband"):
            version += f"@wide{WIDE_FOR[name][1]:g}"
        return f"search|{name}|{method}{version}|{seed}|{budget:g}"
    name, winner, seed = job
    return f"retrain|{name}|{_key(winner)}|{seed}"


class _star:
    """``fn(*job)``, picklable for a process pool."""

    def __init__(self, fn) -> None:  # noqa: ANN001
        self.fn = fn

    def __call__(self, job: tuple) -> dict:
        return self.fn(*job)


if __name__ == "__main__":
    main()
