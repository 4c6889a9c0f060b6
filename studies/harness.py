"""The benchmarks' shared harness (public lrsearch API only).

- ``Runner``: a resumable runner of training jobs, in-process or in a pool of single-threaded
  workers; every result is remembered, and with a cache (a JSON-lines file) it survives an
  interrupted run. ``pool_map``: jobs in a pool without a cache, results in order.
- ``load`` (a task of ``tasks.TASKS``, built once per process) and ``task_of`` (its
  ``lrsearch.Task`` at a length, optimizer and device); ``quiet`` (one thread, Optuna quiet).
- ``range_test``, ``steps_per_run``, ``evaluate`` and ``score`` (a model on the test split),
  ``best_at`` (a budget trace's best once the budget is spent), ``mean_std``.
- ``command`` (the command line a result quotes) and ``write`` (``studies/results/<name>.md|json``).
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tasks as task_zoo  # noqa: E402


OUT = Path(__file__).resolve().parent / "results"
EPS = 1e-9  # slack when a budget trace is compared with its budget


class Runner:
    """``run_one(job) -> row`` trains a job; ``key(job)`` and ``row_key(row)`` name a job and the
    row it gave alike, so cached rows answer jobs."""

    def __init__(self, run_one: Callable[[tuple], dict], key: Callable[[tuple], str],
                 row_key: Callable[[dict], str], workers: int, cache: str | Path | None) -> None:
        self.run_one, self.key = run_one, key
        self.cache = Path(cache) if cache else None
        self.done: dict[str, dict] = {}
        self.trained = 0  # runs trained by this invocation (the rest came from the cache)
        if self.cache and self.cache.exists():
            for line in self.cache.read_text().splitlines():
                row = json.loads(line)
                self.done[row_key(row)] = row
        self.pool = ProcessPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) \
            if workers > 1 else None

    def run(self, jobs: list[tuple]) -> None:
        todo = list(dict.fromkeys(j for j in jobs if self.key(j) not in self.done))
        if not todo:
            return
        start = time.perf_counter()
        print(f"  {len(todo)} runs ...", end="", flush=True)
        results = self.pool.map(self.run_one, todo) if self.pool else map(self.run_one, todo)
        for job, row in zip(todo, results):
            self.done[self.key(job)] = row
            self.trained += 1
            if self.cache:
                with self.cache.open("a") as f:
                    f.write(json.dumps(row) + "\n")
        print(f" {time.perf_counter() - start:.0f} s", flush=True)

    def row(self, job: tuple) -> dict:
        return self.done[self.key(job)]

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown()


def pool_map(fn: Callable, jobs: list, workers: int) -> Iterator:
    """``fn(job)`` for every job in a pool of ``workers`` processes, results in the jobs' order."""
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(fn, jobs)


@functools.lru_cache(maxsize=None)
def load(name: str, **options) -> task_zoo.TaskData:  # noqa: ANN003
    """``tasks.TASKS[name](**options)``, built once per process (MNIST-1D takes seconds to generate)."""
    return task_zoo.TASKS[name](**options)


def task_of(data: task_zoo.TaskData, epochs: int, optimizer: str, device: str = "cpu",
            **options) -> lrsearch.Task:
    """``data`` as an ``lrsearch.Task`` of ``epochs`` evaluations with ``tasks.optimizer_for(optimizer)``;
    ``options`` are more ``Task`` fields (``threads``); ``data``'s ``clip_grad_norm`` and ``eval_every``
    are passed on unless ``options`` names them."""
    options = {"clip_grad_norm": data.clip_grad_norm, "eval_every": data.eval_every, **options}
    return lrsearch.Task(data.model_fn, (data.x_train, data.y_train), (data.x_val, data.y_val), data.loss_fn,
                         epochs=epochs, batch_size=data.batch_size, device=device,
                         optimizer_fn=functools.partial(task_zoo.optimizer_for, optimizer), **options)


def quiet() -> None:
    """One torch thread, Optuna's log at WARNING, no ExperimentalWarning: how a job starts."""
    import optuna

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def steps_per_run(task: lrsearch.Task) -> int:
    return task.epochs * math.ceil(len(task.train_data[0]) / task.batch_size)


def range_test(task: lrsearch.Task, seed: int, clip: bool = True) -> lrsearch.RangeTestResult:
    """``lr_find`` on a fresh model of ``task`` (100 steps), clipping as the task does unless not ``clip``."""
    torch.manual_seed(seed)
    device = task.resolve_device()
    model = task.model_fn().to(device)
    batches = lrsearch.TensorBatches(*task.train_data, batch_size=task.batch_size, seed=seed, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, batches, verbose=False,
                                clip_grad_norm=task.clip_grad_norm if clip else None)


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn, batch_size: int,
             classification: bool) -> dict:
    """Sample-weighted mean loss over (x, y) in eval mode (as ``lrsearch.train``), plus accuracy."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss, correct, n = 0.0, 0, 0
    for xb, yb in lrsearch.TensorBatches(x, y, batch_size=batch_size, shuffle=False, device=device):
        out = model(xb)
        k = yb.shape[0]
        loss += float(loss_fn(out, yb)) * k
        if classification:
            correct += int((out.argmax(1) == yb).sum())
        n += k
    model.train(was_training)
    return {"loss": loss / n, **({"accuracy": correct / n} if classification else {})}


def best_at(trace: list, budget: float) -> float:
    """The best value a trace holds once ``budget`` full runs are spent (nothing after counts)."""
    values = [b for spent, b in trace if spent <= budget + EPS and b is not None and math.isfinite(b)]
    return min(values, default=math.inf)


def score(model: torch.nn.Module, data: task_zoo.TaskData) -> dict:
    """``evaluate`` on the test split of ``data``: its loss (and accuracy, for classification)."""
    return evaluate(model, data.x_test, data.y_test, data.loss_fn, data.batch_size, data.classification)


def mean_std(xs: list[float]) -> str:
    """``mean +- std`` to 4 decimals (std 0 for one value)."""
    return f"{statistics.fmean(xs):.4f} +- {statistics.stdev(xs) if len(xs) > 1 else 0.0:.4f}"


def command(script: str, argv: list[str] | None) -> str:
    """``python studies/<script> <argv>`` (``sys.argv``'s when ``argv`` is None), as a result quotes it."""
    return f"python studies/{Path(script).name} " + " ".join(argv if argv is not None else sys.argv[1:])


def write(name: str, md: str | None = None, data: object = None, json_end: str = "") -> None:
    """``studies/results/<name>.md`` (``md`` as it is) and ``<name>.json`` (``data``, indent 1, then
    ``json_end``): the files a benchmark leaves."""
    OUT.mkdir(parents=True, exist_ok=True)
    if data is not None:
        (OUT / f"{name}.json").write_text(json.dumps(data, indent=1) + json_end)
    if md is not None:
        (OUT / f"{name}.md").write_text(md)
