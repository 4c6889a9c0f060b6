"""A schedule search whose every trial trains across processes with DDP (gloo on CPU, tiny data).

    torchrun --nproc_per_node 2 studies/ddp_search.py --trials 8

Every rank runs this whole file. Each rank holds its half of every global batch; the DDP model
averages the gradients, so the ranks train one model in lockstep. The range test runs on every
rank (each point is the ranks' mean loss) and every rank gets rank 0's result; then
``lrsearch.optimize_distributed`` lets rank 0 alone run the Optuna study (and open its SQLite file)
while the other ranks train each trial it starts with the same schedule, and stop with it when
it is pruned. Rank 0 prints the best schedule.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import torch
import torch.distributed as dist
import torch.nn.functional as F

import lrsearch

GLOBAL_BATCH = 64


def rings(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two noisy concentric rings in 2-D, labelled by ring: offline and the same on every rank."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * 6.2832
    radius = 1.0 + label.float() + 0.25 * torch.randn(n, generator=g)
    return torch.stack([radius * angle.cos(), radius * angle.sin()], 1), label


def my_share(t: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's slice of every global batch (rows ``rank::world``)."""
    return t[rank::world]


def model_fn() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Linear(2, 32), torch.nn.Tanh(), torch.nn.Linear(32, 2))
    return torch.nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights


def run(trials: int = 8, epochs: int = 6, storage: str = "studies/ddp_search.db", quiet: bool = False) -> object:
    dist.init_process_group("gloo")  # torchrun sets the rank, the world size and the address
    torch.set_num_threads(1)
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = rings(1024)
    vx, vy = rings(512, seed=1)  # every rank judges on the whole validation set: the same value
    train = (my_share(x, rank, world), my_share(y, rank, world))
    task = lrsearch.Task(model_fn, train, (vx, vy), F.cross_entropy, epochs=epochs,
                         batch_size=GLOBAL_BATCH // world, device="cpu", threads=1)

    model = model_fn()
    optimizer = task.optimizer_fn(model.parameters())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        found = lrsearch.lr_find(model, optimizer, task.loss_fn,
                                 lrsearch.TensorBatches(*train, batch_size=GLOBAL_BATCH // world),
                                 num_iter=60, verbose=False)

    def objective(trial: object) -> float:  # on every rank, with a lrsearch.DistributedTrial
        schedule = lrsearch.suggest_schedule(trial)
        steps = lrsearch.run_length(trial, task.full_steps())
        result = lrsearch.train(task, schedule, total_steps=steps,
                                on_eval=lambda i, value: lrsearch.report(trial, value, i, n_evals=task.epochs))
        return result.final

    if rank == 0:
        os.makedirs(os.path.dirname(storage) or ".", exist_ok=True)
    result = lrsearch.optimize_distributed(objective, n_trials=trials, storage=storage, study_name="ddp_search",
                                           seed_from=found, show_progress_bar=False)
    if rank == 0 and not quiet:
        print(f"range test on {world} ranks: LR range {found.search_range()[0]:.3g} .. {found.search_range()[1]:.3g}")
        print(f"best: {result.best_schedule.to_json()}  val loss {result.study.best_value:.4f}")
    dist.destroy_process_group()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--storage", default="studies/ddp_search.db")
    args = parser.parse_args()
    run(args.trials, args.epochs, args.storage)
    # Leave without the interpreter's finalization: gloo's threads may still hold tensors whose release
    # then needs the GIL of a dying interpreter and aborts (SIGABRT; pytorch/pytorch#179291).
    sys.stdout.flush()
    os._exit(0)
