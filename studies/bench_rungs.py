"""Which rung ladder should ``Rungs()`` default to? lrsearch alone, three ladders, same tasks and seeds.

Each job is ``lrsearch.optimize(task=..., budget=16, rungs=Rungs(fractions, reduction), seed_from=lr_find)``
on a task of ``bench_search.py`` (same data, models, optimizers, epochs, seeds and budget unit); the
measure is the best full-length validation loss once 16 full runs are spent (``bench_search.best_at``).

    python studies/bench_rungs.py            # 4 tasks x 3 ladders x 3 seeds, ~16 min on 2 workers
"""

from __future__ import annotations

import statistics
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LADDERS = {"1/9, 1/3, 1 (x3)": ((1 / 9, 1 / 3, 1.0), 3.0), "1/3, 1 (x3)": ((1 / 3, 1.0), 3.0),
           "1/4, 1/2, 1 (x2)": ((0.25, 0.5, 1.0), 2.0)}
TASKS = ("mnist1d-mlp", "mnist1d-cnn", "mnist1d-cnn-bn", "regression-mlp")
BUDGET = 16.0


def job(args: tuple) -> tuple:
    name, ladder, seed = args
    import optuna
    import torch

    import bench_search as b
    import lrsearch

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore")
    epochs, opt, _ = b.SETUP[name]
    task, _ = b.make_task(name, epochs, opt, "cpu")
    fractions, reduction = LADDERS[ladder]
    result = lrsearch.optimize(task=task, budget=BUDGET, rungs=lrsearch.Rungs(fractions, reduction=reduction),
                               seed_from=b.range_test(task, seed), storage=optuna.storages.InMemoryStorage(),
                               artifacts=None, seed=seed, heartbeat_interval=None, study_name=f"{name}-{seed}")
    return name, ladder, seed, b.best_at(result.spent_trace(), BUDGET)


def main() -> None:
    jobs = [(n, ladder, s) for n in TASKS for ladder in LADDERS for s in range(3)]
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(job, jobs))
    lines = ["| task | " + " | ".join(LADDERS) + " |", "|---|" + "---|" * len(LADDERS)]
    for name in TASKS:
        cells = []
        for ladder in LADDERS:
            vals = [v for n, la, _, v in runs if n == name and la == ladder]
            cells.append(f"{statistics.fmean(vals):.4f} ({', '.join(f'{v:.4f}' for v in vals)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    out = Path(__file__).resolve().parent / "results" / "bench_rungs.md"
    out.write_text("# Rung ladders: best full-length validation loss at a budget of 16 full runs\n\n"
                   "Mean over seeds 0-2 (per seed in brackets); `python studies/bench_rungs.py`.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
