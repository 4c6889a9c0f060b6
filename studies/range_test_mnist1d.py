"""Range test on MNIST-1D (generated offline): print the suggestions and save the plot.

    python studies/range_test_mnist1d.py [--optimizer sgd|adam] [--out studies/range_test_mnist1d.png]

Question: which peak-LR range should a schedule search on this MLP explore? The printed
``search_range()`` is what ``lrsearch.SearchSpace`` takes; the plot marks every suggestion.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import mnist1d_mlp  # noqa: E402
from tasks import make_optimizer  # noqa: E402


def run(optimizer: str = "sgd", out: str | None = None, num_iter: int = 100, seed: int = 0,
        verbose: bool = True) -> lrsearch.RangeTestResult:
    task = mnist1d_mlp()
    torch.manual_seed(seed)
    model = task.model_fn()
    opt = make_optimizer(optimizer, model, lr=1e-3)
    batches = lrsearch.TensorBatches(task.x_train, task.y_train, batch_size=task.batch_size, seed=seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lrsearch.RangeTestWarning)
        result = lrsearch.lr_find(model, opt, task.loss_fn, batches, num_iter=num_iter, verbose=verbose)
    if out:
        fig = result.plot()
        fig.axes[0].set_title(f"MNIST-1D MLP, {optimizer}: LR range test")
        fig.savefig(out, dpi=110)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--optimizer", default="sgd", choices=["sgd", "adam"])
    parser.add_argument("--num-iter", type=int, default=100)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "range_test_mnist1d.png"))
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = run(args.optimizer, args.out, args.num_iter)
    print(f"{result.iterations} steps in {time.perf_counter() - t0:.1f}s, stopped: {result.stop_reason}")
    for name, lr in result.suggestions().items():
        print(f"  {name:<9} {lr:.3g}" if lr else f"  {name:<9} -")
    low, high = result.search_range()
    print(f"search_range: {low:.3g} .. {high:.3g}")
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
