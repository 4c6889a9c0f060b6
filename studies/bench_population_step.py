"""Where a population's time goes: a fixed cost per run, a cost per member, the arithmetic rate.

Whole runs of ``lrsearch.train_population`` (the ``bench_search`` task, SGD, 9 epochs = 225 steps,
2 CPU threads) of 1 and of K members, alternating over rounds; medians. Time per run is a fixed
part (Python, autograd, dispatch, per step; setup) plus K times a member's part, so the two sizes
give both. A member's arithmetic is the multiply-adds of its convolutions and linears: forward,
input (but the first layer's) and weight gradients of each training step, and forwards of its
evaluations. Beside it, the rate ``torch.bmm`` reaches on the largest layer's matrix shape with
contiguous, cache-hot operands: a practical ceiling for these matrix sizes on this machine.

    python studies/bench_population_step.py                      # the CNN, K = 16
    python studies/bench_population_step.py --task mnist1d-mlp --k 32
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import bench_population as bp  # noqa: E402
import harness  # noqa: E402
import lrsearch  # noqa: E402
from search_arms import SETUP  # noqa: E402  (bench_search's tasks)
from search_arms import make_task  # noqa: E402

THREADS = 2


def layers(model: torch.nn.Module, x: torch.Tensor) -> list[tuple[int, int, int]]:
    """Each convolution's and linear's product for the batch ``x``: ``(rows, inner, columns)``."""
    shapes = []

    def hook(module: torch.nn.Module, _inputs, out: torch.Tensor) -> None:  # noqa: ANN001
        if isinstance(module, torch.nn.Linear):
            shapes.append((out.numel() // out.shape[-1], module.in_features, module.out_features))
        else:  # Conv1d: [B, O, L] out
            inner = module.in_channels * module.kernel_size[0]
            shapes.append((out.shape[0] * out.shape[2], inner, out.shape[1]))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return shapes


def matmul_rate(shape: tuple[int, int, int], k: int) -> float:
    """GFLOP/s of ``torch.bmm`` over ``k`` members on one product shape, contiguous and hot."""
    m, inner, n = shape
    a, w, out = torch.randn(k, m, inner), torch.randn(k, inner, n), torch.empty(k, m, n)
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(50):
            torch.bmm(a, w, out=out)
        best = min(best, (time.perf_counter() - t0) / 50)
    return 2 * k * m * inner * n / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mnist1d-cnn", choices=["mnist1d-cnn", "mnist1d-mlp"])
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if args.k < 2 or args.rounds < 1:
        parser.error(f"--k must be >= 2 and --rounds >= 1 but got --k {args.k} --rounds {args.rounds}")
    epochs, opt, _ = SETUP[args.task]
    task, data = make_task(args.task, epochs, opt, "cpu")
    task.threads = THREADS
    torch.set_num_threads(THREADS)
    scheds = bp.schedules(args.k)
    times: dict[int, list[float]] = {1: [], args.k: []}
    lrsearch.train_population(task, scheds[:1], 0, population=1, total_steps=20)  # warm up
    for _ in range(args.rounds):
        for k, reps in ((1, 4), (args.k, 1)):
            t0 = time.perf_counter()
            for _ in range(reps):
                lrsearch.train_population(task, scheds[:k], 0, population=k)
            times[k].append((time.perf_counter() - t0) / reps)
    t1, tk = statistics.median(times[1]), statistics.median(times[args.k])
    member = (tk - t1) / (args.k - 1)
    fixed = t1 - member
    steps = harness.steps_per_run(task)
    model = data.model_fn()
    x = torch.as_tensor(data.x_train[:task.batch_size])
    shapes = layers(model, x)
    forward = sum(math.prod(shape) for shape in shapes) / task.batch_size  # multiply-adds per sample
    first = math.prod(shapes[0]) / task.batch_size  # the first layer's input gradient is not needed
    flops = 2 * ((3 * forward - first) * steps * task.batch_size + forward * epochs * len(data.x_val))
    ceiling = matmul_rate(max(shapes, key=math.prod), args.k)
    print(f"{args.task}, {THREADS} threads, {steps} steps of {task.batch_size} + {epochs} evaluations: "
          f"a run of 1 member {t1:.2f} s, of {args.k} {tk:.2f} s "
          f"(medians of {args.rounds} alternating rounds)")
    print(f"  fixed {fixed * 1e3 / steps:.2f} ms per step; a member {member * 1e3 / steps:.2f} ms per step, "
          f"{flops / member / 1e9:.0f} GFLOP/s of its products "
          f"(torch.bmm on the largest layer's shape, contiguous and hot: {ceiling:.0f} GFLOP/s)")


if __name__ == "__main__":
    main()
