"""Which rung ladder should ``Rungs()`` default to? lrsearch alone, three ladders, same tasks and seeds.

Each job is ``lrsearch.optimize(task=..., budget=16, rungs=Rungs(fractions, reduction), seed_from=lr_find)``
on a task of ``bench_search.py`` (same data, models, optimizers, epochs, seeds and budget unit); the
measure is the best full-length validation loss once 16 full runs are spent (``harness.best_at``).

    python studies/bench_rungs.py            # 4 tasks x 3 ladders x 3 seeds, ~16 min on 2 workers
"""

from __future__ import annotations

import statistics
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

LADDERS = {"1/9, 1/3, 1 (x3)": ((1 / 9, 1 / 3, 1.0), 3.0), "1/3, 1 (x3)": ((1 / 3, 1.0), 3.0),
           "1/4, 1/2, 1 (x2)": ((0.25, 0.5, 1.0), 2.0)}
TASKS = ("mnist1d-mlp", "mnist1d-cnn", "mnist1d-cnn-bn", "regression-mlp")
BUDGET = 16.0


def job(args: tuple) -> tuple:
    name, ladder, seed = args
    import optuna

    import lrsearch
    from search_arms import SETUP
    from search_arms import make_task

    harness.quiet()
    warnings.filterwarnings("ignore")
    epochs, opt, _ = SETUP[name]
    task, _ = make_task(name, epochs, opt, "cpu")
    fractions, reduction = LADDERS[ladder]
    result = lrsearch.optimize(task=task, budget=BUDGET, rungs=lrsearch.Rungs(fractions, reduction=reduction),
                               seed_from=harness.range_test(task, seed), space=lrsearch.SearchSpace("all"),
                               storage=optuna.storages.InMemoryStorage(),
                               artifacts=None, seed=seed, heartbeat_interval=None, study_name=f"{name}-{seed}")
    return name, ladder, seed, harness.best_at(result.spent_trace(), BUDGET)


def main() -> None:
    jobs = [(n, ladder, s) for n in TASKS for ladder in LADDERS for s in range(3)]
    runs = list(harness.pool_map(job, jobs, 2))
    lines = ["| task | " + " | ".join(LADDERS) + " |", "|---|" + "---|" * len(LADDERS)]
    for name in TASKS:
        cells = []
        for ladder in LADDERS:
            vals = [v for n, la, _, v in runs if n == name and la == ladder]
            cells.append(f"{statistics.fmean(vals):.4f} ({', '.join(f'{v:.4f}' for v in vals)})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    harness.write("bench_rungs", "# Rung ladders: best full-length validation loss at a budget of 16 full runs\n\n"
                  "Mean over seeds 0-2 (per seed in brackets); `python studies/bench_rungs.py`.\n\n" + table + "\n")


if __name__ == "__main__":
    main()
