"""A study worker for the fault tests: ``python worker.py STORAGE STUDY N_TRIALS SLEEP [SEED_FROM.json]``
(STORAGE ``grpc://HOST:PORT``: Optuna's gRPC storage proxy there).

Each trial samples a schedule, "trains" for a few evaluations (sleeping SLEEP seconds each) and
returns a value derived from the schedule, so results are deterministic per parameter set. It trains
full length (no promotions): the kill campaign covers promoted runs.
"""

from __future__ import annotations

import json
import sys

import optuna

import lrsearch
from kill_campaign import objective  # this folder is on the path when run as a script


def main() -> None:
    storage, study, n_trials, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    seed_from = None
    if len(sys.argv) > 5:
        with open(sys.argv[5]) as f:
            seed_from = lrsearch.RangeTestResult.from_dict(json.load(f))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage.startswith("grpc://"):
        host, _, port = storage[len("grpc://"):].rpartition(":")
        storage = optuna.storages.GrpcStorageProxy(host=host, port=int(port))
        storage.wait_server_ready(timeout=60)
    lrsearch.optimize(lambda t: objective(t, pause, promote=False), n_trials=n_trials, study_name=study, storage=storage,
                      seed_from=seed_from, heartbeat_interval=1, artifacts=None,
                      space=lrsearch.SearchSpace(["constant", "cosine", "wsd", "onecycle"]))


if __name__ == "__main__":
    main()
