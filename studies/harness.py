"""A resumable runner of training jobs for the benchmarks: in-process, or in a pool of
single-threaded workers; every result is remembered, and with a cache (a JSON-lines file) it
survives an interrupted run."""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

import lrsearch


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


EPS = 1e-9


def steps_per_run(task: lrsearch.Task) -> int:
    return task.epochs * math.ceil(len(task.train_data[0]) / task.batch_size)


def range_test(task: lrsearch.Task, seed: int) -> lrsearch.RangeTestResult:
    torch.manual_seed(seed)
    device = task.resolve_device()
    model = task.model_fn().to(device)
    batches = lrsearch.TensorBatches(*task.train_data, batch_size=task.batch_size, seed=seed, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, batches, verbose=False)


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
