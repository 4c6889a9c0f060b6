"""A study worker for the fault tests: ``python worker.py STORAGE STUDY N_TRIALS SLEEP [SEED_FROM.json]``.

Each trial samples a schedule, "trains" for a few evaluations (sleeping SLEEP seconds each) and
returns a value derived from the schedule, so results are deterministic per parameter set.
"""

from __future__ import annotations

import json
import math
import sys
import time

import optuna

import lrsearch


def objective(trial: optuna.trial.Trial, pause: float) -> float:
    schedule = lrsearch.suggest_schedule(trial)
    value = abs(math.log10(schedule.lr) + 2.0) + 0.01 * len(schedule.family)
    for step in range(3):
        time.sleep(pause)
        lrsearch.report(trial, value + 0.1 * (3 - step), step, n_evals=3)
    return value


def main() -> None:
    storage, study, n_trials, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    seed_from = None
    if len(sys.argv) > 5:
        with open(sys.argv[5]) as f:
            seed_from = lrsearch.RangeTestResult.from_dict(json.load(f))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lrsearch.optimize(lambda t: objective(t, pause), n_trials=n_trials, study_name=study, storage=storage,
                      seed_from=seed_from, heartbeat_interval=1, artifacts=None,
                      space=lrsearch.SearchSpace(["constant", "cosine", "wsd", "onecycle"]))


if __name__ == "__main__":
    main()
