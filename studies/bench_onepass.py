"""Transfer where the loss laws were made: a one-pass character LM (issue 24, item 4).

Every optimizer step reads 8 fresh windows of 32 characters of Python source (``stdlib_text``, a
fixed shuffle of its windows, so a longer run sees more text and no window twice); the model is
``tasks.CharTransformer`` with AdamW. ``lrsearch.Task(steps=...)`` over a stream (a DataLoader over
an ``IterableDataset``), evaluated 9 times a run on 256 held-out windows. Lengths: the search's
S = 400 steps, then 3S = 1200 and 10S = 4000 (the targets, T >= 1000).

- **grid** at 3S and 10S (the reference a user would tune instead): cosine, wsd, linear (all to
  zero) and constant, 5% linear warmup, 7 peak LRs a factor 2 apart, 2 seeds (mean); its seed noise
  is the median over the families' best points of |seed 0 - seed 1| / 2.
- **search**: ``lrsearch.optimize(task=<the task at S>, budget=16, seed_from=lr_find(...))`` (the
  defaults: 4 families, rungs), so no trial is longer than S; 3 search seeds.
- **chosen** = ``result.choice_for(m * S)`` (the default: the law if it passed its held-out check,
  else the rule) and the law's and the rule's choices, **reused** = ``result.best_schedule`` rebuilt
  at m * S; each trained at 3S and 10S with 2 seeds (mean).
- **predictions**: the search's ``loss_model()`` predicts every grid schedule's final at 3S and
  10S: the share of measured finals (both seeds) inside ``Prediction.interval()`` is the coverage;
  the chosen schedule's predicted final against its measured mean is the error a user meets.

    python studies/bench_onepass.py              # ~45 min of one core (cache: resumable); results/bench_onepass.*
    python studies/bench_onepass.py --workers 2  # the runs in 2 processes
    python studies/bench_onepass.py --quick      # smoke run: S = 30, 3 LRs, 1 search seed, prints only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import optuna
import torch
from torch.utils.data import DataLoader
from torch.utils.data import IterableDataset

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
import onepass_report  # noqa: E402
from tasks import CharTransformer  # noqa: E402
from tasks import _token_cross_entropy  # noqa: E402
from tasks import optimizer_for  # noqa: E402
from tasks_heldout import _windows  # noqa: E402
from tasks_heldout import stdlib_text  # noqa: E402
from transfer_analysis import EVALS  # noqa: E402
from transfer_analysis import FAMILIES  # noqa: E402
from transfer_analysis import GRID  # noqa: E402
from transfer_analysis import SEEDS  # noqa: E402
from transfer_analysis import grid_schedule  # noqa: E402


CONTEXT, BATCH, VAL = 32, 8, 256
SHORT = 400  # S: the longest trial of the search
MULTIPLES = (3, 10)  # the targets: 3S and 10S
CENTRE = 3e-3  # grid LRs: CENTRE * 2 ** (k - GRID // 2), k = 0 .. GRID - 1 (bench_transfer's families and warmup)
BUDGET = 16  # full runs of S: lrsearch's default budget
VERSION = 1  # cache key part: bump when a run's meaning changes


@lru_cache(maxsize=None)
def windows(max_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Train windows for ``max_steps`` steps of one pass, the validation windows and the vocab: the
    text's non-overlapping windows in one fixed shuffle, validation first (disjoint from training)."""
    need = (max_steps * BATCH + VAL) * CONTEXT + CONTEXT
    inputs, targets, vocab = _windows(stdlib_text(int(need * 1.02) + 1), CONTEXT, 20)
    n = len(inputs)
    order = np.random.default_rng(0).permutation(n)
    x, y = torch.from_numpy(inputs[order]), torch.from_numpy(targets[order])
    if n < VAL + max_steps * BATCH:
        raise ValueError(f"the text holds {n} windows, fewer than the {VAL + max_steps * BATCH} needed")
    return x[VAL:], y[VAL:], x[:VAL], y[:VAL], vocab


class Stream(IterableDataset):
    """The training windows in their fixed order, ``BATCH`` at a time, never shuffled: one pass, or
    (``period``) the first ``period`` batches again and again (epochs over the same windows)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, period: int | None = None) -> None:
        self.x, self.y, self.period = x, y, period

    def __iter__(self):  # noqa: ANN204
        n = (len(self.x) // BATCH) if self.period is None else self.period
        for k in range(len(self.x) // BATCH):
            i = (k % n) * BATCH
            yield self.x[i:i + BATCH], self.y[i:i + BATCH]


def make_task(steps: int, longest: int, variant: str = "onepass") -> lrsearch.Task:
    """The task at ``steps`` optimizer steps over a stream long enough for ``longest``: fresh windows
    at every step (``onepass``), or epochs over the first S steps of windows (``epochs-<S>``)."""
    x, y, xv, yv, vocab = windows(longest)
    stream = Stream(x, y, None if variant == "onepass" else int(variant.split("-")[1]))
    return lrsearch.Task(_Model(vocab), DataLoader(stream, batch_size=None), (xv, yv), _token_cross_entropy,
                         steps=steps, epochs=EVALS, batch_size=64, device="cpu", threads=1,
                         optimizer_fn=_adamw)


class _Model:
    """A picklable model factory (the search's workers and the cache key need no lambdas)."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def __call__(self) -> torch.nn.Module:
        return CharTransformer(self.vocab, CONTEXT)


def _adamw(params) -> torch.optim.Optimizer:  # noqa: ANN001
    return optimizer_for("adamw", params)


def lengths(short: int) -> list[int]:
    return [m * short for m in MULTIPLES]


def grid_schedules(grid: int = GRID) -> list[lrsearch.Schedule]:
    return [grid_schedule(f, float(CENTRE * 2.0 ** (k - grid // 2))) for f in FAMILIES for k in range(grid)]


# ------------------------------------------------------------------------------------------ runs

def run_one(job: tuple[str, str, int, int, int]) -> dict:
    """Train (variant, schedule spec JSON, steps, seed, longest) once; the curve and the final value."""
    torch.set_num_threads(1)
    variant, spec, steps, seed, longest = job
    start = time.perf_counter()
    result = lrsearch.train(make_task(steps, longest, variant), lrsearch.Schedule.from_json(spec), seed=seed)
    curve = [v if math.isfinite(v) else None for v in result.values]
    return {"v": VERSION, "variant": variant, "schedule": json.loads(spec), "steps": steps, "seed": seed,
            "curve": curve, "final": curve[-1], "seconds": round(time.perf_counter() - start, 2)}


def _key(job: tuple) -> str:
    variant, spec, steps, seed, _ = job
    return f"{VERSION}|{variant}|{json.dumps(json.loads(spec), sort_keys=True)}|{steps}|{seed}"


def _row_key(row: dict) -> str:
    spec = json.dumps(row["schedule"], sort_keys=True)
    return f"{row['v']}|{row.get('variant', 'onepass')}|{spec}|{row['steps']}|{row['seed']}"


class Runner(harness.Runner):
    def __init__(self, workers: int, cache: Path | None, longest: int, variant: str) -> None:
        super().__init__(run_one, _key, _row_key, workers, cache)
        self.longest, self.variant = longest, variant

    def jobs(self, schedules: list[lrsearch.Schedule], steps: int, seeds=SEEDS) -> list[tuple]:  # noqa: ANN001
        return [(self.variant, s.to_json(), steps, seed, self.longest) for s in schedules for seed in seeds]

    def finals(self, schedule: lrsearch.Schedule, steps: int, seeds=SEEDS) -> list[float | None]:  # noqa: ANN001
        return [self.row((self.variant, schedule.to_json(), steps, s, self.longest))["final"] for s in seeds]


# ---------------------------------------------------------------------------------------- search

def search(seed: int, short: int, longest: int, journal: Path, variant: str, grid: list[lrsearch.Schedule]) -> dict:
    """One search at S (its study kept in ``journal``: a finished one is read back, not rerun); what
    it chooses for 3S and 10S (default, law, rule) and what its loss model predicts there for the
    reused short-run best and for each ``grid`` schedule."""
    torch.set_num_threads(1)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    name = f"{variant}-{short}-{seed}"
    if name in optuna.get_all_study_names(storage):
        result = lrsearch.SearchResult(optuna.load_study(study_name=name, storage=storage))
    else:
        task = make_task(short, longest, variant)
        start = time.perf_counter()
        result = lrsearch.optimize(task=task, budget=BUDGET, seed_from=_range_test(task, seed), seed=seed,
                                   storage=storage, study_name=name, artifacts=None, heartbeat_interval=None)
        result.study.set_user_attr("bench_seconds", round(time.perf_counter() - start, 1))
    model = result.loss_model()
    out = {"seed": seed, "spent": result.spent, "budget": BUDGET, "seconds": result.study.user_attrs.get("bench_seconds"),
           "reused": result.best_schedule.to_dict(), "reused_value": result.best_value,
           "model": model.describe() if model else None, "holdout_error": model.holdout_error if model else None,
           "choices": {}, "grid": {}}
    reused = result.best_schedule
    for steps in lengths(short):
        out["choices"][str(steps)] = {kind: _choice(result.choice_for(steps, law))
                                      for kind, law in (("auto", None), ("law", True), ("rule", False))}
        out["grid"][str(steps)] = {s.to_json(): _prediction(model, s, steps) for s in grid}
        out["choices"][str(steps)]["reused"] = {"schedule": out["reused"], "by": "reuse",
                                                "trusted": out["choices"][str(steps)]["law"]["trusted"],
                                                **_prediction(model, reused, steps)}
    return out


def _range_test(task: lrsearch.Task, seed: int) -> lrsearch.RangeTestResult:
    torch.manual_seed(seed)
    model = task.model_fn()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, task.train_data,
                                verbose=False)


def _prediction(model, schedule: lrsearch.Schedule, steps: int) -> dict:  # noqa: ANN001
    if model is None:
        return {"predicted": None, "std": None, "interval": None}
    try:
        p = model.predict(schedule, steps)
    except ValueError:  # no finite prediction
        return {"predicted": None, "std": None, "interval": None}
    return {"predicted": p.value, "std": p.std, "interval": list(p.interval())}


def _choice(choice) -> dict:  # noqa: ANN001
    law = choice.law_predicted or choice.predicted  # the law's own value, trusted or not
    ok = law is not None and math.isfinite(law.value) and math.isfinite(law.std)
    return {"schedule": choice.schedule.to_dict(), "by": choice.by, "trusted": choice.trusted,
            "holdout_error": choice.holdout_error, "lr_shift": choice.lr_shift,
            "predicted": law.value if ok else None, "std": law.std if ok else None,
            "interval": list(law.interval()) if ok else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--searches", type=int, default=3, help="search seeds")
    parser.add_argument("--variant", choices=("onepass", "epochs"), default="onepass",
                        help="fresh text every step, or epochs over the search's S steps of text (results/bench_epochs.*)")
    parser.add_argument("--short", type=int, default=SHORT, help="S: the search's longest trial, in steps")
    parser.add_argument("--quick", action="store_true", help="S = 30, 3 LRs, 1 search seed; prints only")
    parser.add_argument("--cache", default=str(harness.OUT / "bench_onepass_runs.jsonl"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    harness.quiet()
    if args.quick:
        args.short, args.searches, args.cache = 30, 1, None
    short, longest = args.short, max(lengths(args.short))
    grid = grid_schedules(3 if args.quick else GRID)
    cache = Path(args.cache) if args.cache else None
    variant = "onepass" if args.variant == "onepass" else f"epochs-{short}"
    runner = Runner(args.workers, cache, longest, variant)
    start = time.perf_counter()
    try:
        for steps in sorted(lengths(short), reverse=True):
            print(f"grid at {steps} steps", flush=True)
            runner.run(runner.jobs(grid, steps))
        searches = []
        journal = (cache.with_name(f"{cache.stem}_search.log") if cache
                   else Path(os.environ.get("TMPDIR", "/tmp")) / f"onepass_quick_{os.getpid()}.log")
        for seed in range(args.searches):
            print(f"search seed {seed} at S = {short} ...", end="", flush=True)
            searches.append(search(seed, short, longest, journal, variant, grid))
            print(" done", flush=True)
        jobs = []
        for rec in searches:
            for steps, kinds in rec["choices"].items():
                jobs += runner.jobs([lrsearch.Schedule.from_dict(c["schedule"]) for c in kinds.values()], int(steps))
        print("chosen and reused at 3S and 10S", flush=True)
        runner.run(jobs)
        report = onepass_report.analyse(runner, searches, short, grid, SEEDS)
        report["meta"] = {"seconds": round(time.perf_counter() - start), "trained": runner.trained,
                          "runs": len(runner.done), "cpu_seconds": round(sum(r["seconds"] for r in runner.done.values())),
                          "torch": torch.__version__, "load": os.getloadavg()[0], "cpus": os.cpu_count(),
                          "short": short, "multiples": list(MULTIPLES), "budget": BUDGET, "variant": args.variant}
        text = onepass_report.render(report)
        print(text)
        if not args.quick:
            stem = ("bench_onepass" if args.variant == "onepass" else "bench_epochs") + \
                ("" if short == SHORT else f"_s{short}")
            harness.write(stem, data=report)
            harness.write(stem, text)
            onepass_report.figure(report, harness.OUT / f"{stem}.png")
    finally:
        runner.close()


if __name__ == "__main__":
    main()
