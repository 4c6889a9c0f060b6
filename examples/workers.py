"""Parallel workers on one journal file (or PostgreSQL): prepare the study once, then start workers.

SQLite is for one process (a second one is refused); a journal file (``storage="....log"``) takes
several processes on one machine, a PostgreSQL URL several machines (``storage="postgresql://..."``,
same code). Each worker is an ordinary ``optimize`` call on the same ``study_name`` and storage; the
range-test seeds are enqueued once, when the study is prepared, and each runs exactly once.
In a terminal, ``lrsearch worker --study NAME --storage FILE.log --objective examples/workers.py:objective``
starts one more. Data: scikit-learn's bundled digits (offline). Run: ``python examples/workers.py``
(``--tiny`` for a seconds-long check).
"""

import argparse
import multiprocessing
import os

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import lrsearch


EPOCHS = int(os.environ.get("EXAMPLE_EPOCHS", "8"))


def data():
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    return (x[order[:1400]], y[order[:1400]]), (x[order[1400:]], y[order[1400:]])


def task() -> lrsearch.Task:
    train, val = data()
    return lrsearch.Task(
        model_fn=lambda: torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)),
        train_data=train, val_data=val, loss_fn=F.cross_entropy, epochs=EPOCHS, batch_size=100, threads=1,
        optimizer_fn=lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9))


def worker(budget: float, study: str, storage: str) -> None:
    # the budget is the study's total: every worker stops when the workers together have spent it
    lrsearch.optimize(task=task(), study_name=study, storage=storage, budget=budget, show_progress_bar=False)


def main(tiny: bool, n_workers: int = 2, study: str = "workers", storage: str = "studies/workers.log") -> None:
    t = task()
    model = t.model_fn()
    found = lrsearch.lr_find(model, t.optimizer_fn(model.parameters()), F.cross_entropy,
                             lrsearch.TensorBatches(*t.train_data, batch_size=100), num_iter=30 if tiny else 100, verbose=False)
    budget = 3 if tiny else 12
    # prepare: create the study and enqueue the seeds (their share of the budget), train nothing
    lrsearch.optimize(task=t, study_name=study, storage=storage, n_trials=0, budget=budget, seed_from=found)
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters, as separate terminals would be
    procs = [ctx.Process(target=worker, args=(budget, study, storage)) for _ in range(n_workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a worker failed with exit code {p.exitcode}")
    import optuna
    backend = (optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(storage))
               if storage.endswith(".log") else storage)
    states = [t.state.name for t in optuna.load_study(study_name=study, storage=backend).trials]
    print(f"{len(states)} trials from {n_workers} workers: "
          + ", ".join(f"{states.count(s)} {s.lower()}" for s in sorted(set(states))))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds: tiny budget and runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--study", default="workers")
    parser.add_argument("--storage", default="studies/workers.log",
                        help="a journal file (.log, one machine) or a PostgreSQL URL (several machines)")
    args = parser.parse_args()
    if args.tiny:
        os.environ.setdefault("EXAMPLE_EPOCHS", "3")  # read again by the spawned workers
        EPOCHS = 3
    main(args.tiny, args.workers, args.study, args.storage)
