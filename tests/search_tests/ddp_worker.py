"""One rank of the DDP tests (``test_distributed.py``): a range test and a small search, gloo on CPU.

``python ddp_worker.py RANK WORLD STORE OUT`` runs rank ``RANK`` of ``WORLD`` (meeting the others at the
file ``STORE``: no port to race for, no store server that leaves with rank 0) and pickles what it
saw to ``OUT/rank<RANK>.pkl``; ``run(None, ...)`` is the one-process reference on the same global
batches (each rank trains on its half of every batch; DDP averages the gradients).
"""

from __future__ import annotations

import math
import os
import pickle
import sys
import warnings
from typing import Any

import optuna
import torch
import torch.distributed as dist
import torch.nn.functional as F

import lrsearch

PRUNED = 1  # the trial number the test's pruner prunes, at its second evaluation
N_EVALS = 3
STEPS = 9


class PruneOne(optuna.pruners.BasePruner):
    """Prunes trial ``PRUNED`` once it has two evaluations; no other trial."""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == PRUNED and len(trial.intermediate_values) >= 2


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(192, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    return x[:128], y[:128], x[128:], y[128:]


def model_fn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))


def shard(t: torch.Tensor, rank: int | None, world: int) -> torch.Tensor:
    """This rank's half of every global batch of 16 rows (everything for the reference)."""
    if rank is None:
        return t
    return t.reshape(-1, 16, *t.shape[1:])[:, rank * 16 // world:(rank + 1) * 16 // world].reshape(-1, *t.shape[1:])


def wrap(model: torch.nn.Module, rank: int | None) -> torch.nn.Module:
    return model if rank is None else torch.nn.parallel.DistributedDataParallel(model)


def range_test(rank: int | None, world: int) -> dict[str, Any]:
    x, y, _, _ = data()
    model = wrap(model_fn(), rank)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = ({k: v.clone() for k, v in model.state_dict().items()}, repr(opt.state_dict()))
    batches = lrsearch.TensorBatches(shard(x, rank, world), shard(y, rank, world), batch_size=16 // world, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        result = lrsearch.lr_find(model, opt, F.cross_entropy, batches, start_lr=1e-3, end_lr=100.0, num_iter=40,
                                  verbose=False)
    after = model.state_dict()
    restored = all(torch.equal(before[0][k], after[k]) for k in after) and before[1] == repr(opt.state_dict())
    return {"lrs": result.lrs, "losses": result.losses, "stop": result.stop_reason,
            "suggestion": result.suggestion(), "range": result.search_range(), "restored": restored}


def search(rank: int | None, world: int, storage: str) -> tuple[Any, list[tuple[Any, ...]]]:
    x, y, vx, vy = data()
    task = lrsearch.Task(lambda: wrap(model_fn(), rank), (shard(x, rank, world), shard(y, rank, world)), (vx, vy),
                         F.cross_entropy, epochs=N_EVALS, batch_size=128 // world, device="cpu", threads=0)
    seen: list[tuple[Any, ...]] = []

    def objective(trial: optuna.trial.BaseTrial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        steps = lrsearch.run_length(trial, STEPS)
        number, params = trial.number, trial.params
        try:
            result = lrsearch.train(task, schedule, total_steps=steps,
                                    on_eval=lambda i, v: lrsearch.report(trial, v, i, n_evals=N_EVALS))
        except optuna.TrialPruned:
            seen.append((number, params, "pruned", trial.user_attrs.get("prune_reason")))
            raise
        seen.append((number, params, result.final, None))
        return result.final

    space = lrsearch.SearchSpace(families=["constant", "cosine", "linear"], lr=(1e-2, 1.0), warmup=False)
    options = {"n_trials": 4, "storage": storage, "study_name": "ddp", "space": space, "rungs": None,
               "pruner": PruneOne(), "show_progress_bar": False, "heartbeat_interval": None}
    if rank is None:
        return lrsearch.search.optimize(objective, **options), seen
    return lrsearch.optimize_distributed(objective, **options), seen


def search_task(rank: int | None, world: int, storage: str) -> list[tuple[Any, ...]] | None:
    """The same through ``optimize(task=...)``: the reference loop (full batches, one step an
    epoch, so 3-step runs at the first rung), default rungs and pruner."""
    x, y, vx, vy = data()
    task = lrsearch.Task(lambda: wrap(model_fn(), rank), (shard(x, rank, world), shard(y, rank, world)), (vx, vy),
                         F.cross_entropy, epochs=STEPS, batch_size=128 // world, device="cpu", threads=0)
    space = lrsearch.SearchSpace(families=["cosine", "wsd"], lr=(1e-2, 1.0))
    options = {"n_trials": 3, "storage": storage, "study_name": "task", "space": space,
               "show_progress_bar": False, "heartbeat_interval": None}
    if rank is None:
        result = lrsearch.search.optimize(task=task, **options)
    else:
        result = lrsearch.optimize_distributed(task=task, **options)
    if result is None:
        return None
    return [(t.number, t.state.name, t.value, t.params, t.user_attrs.get("run_steps")) for t in result.study.trials]


def calls(rank: int) -> dict[str, str]:
    """What a rank > 0 raises when its trial calls differ from rank 0's, or when rank 0's raises."""
    out = {}
    trial = lrsearch.DistributedTrial(optuna.trial.FixedTrial({"a": 0.5}) if rank == 0 else None)
    for what, name in (("diverged", "a" if rank == 0 else "b"), ("shared", "missing")):
        try:
            out[what] = repr(trial.suggest_float(name, 0.0, 1.0))
        except (RuntimeError, ValueError) as err:
            out[what] = f"{type(err).__name__}: {err}"
    # each rank measured another value (rank 1 a NaN): every rank decides on rank 0's
    trial = lrsearch.DistributedTrial(optuna.trial.FixedTrial({}) if rank == 0 else None)
    try:
        lrsearch.report(trial, math.nan if rank else 0.5, 0, n_evals=2)
        out["report"] = "went on"
    except optuna.TrialPruned as err:
        out["report"] = f"pruned: {err}"
    return out


def run(rank: int | None, world: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if rank is not None:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    found = range_test(rank, world)
    # each rank names its own storage: the test checks that a rank > 0 never created its file
    result, seen = search(rank, world, os.path.join(out, f"rank{rank}.db"))
    found["seen"] = seen
    found["values"] = None if result is None else [(t.number, t.state.name, t.value) for t in result.study.trials]
    found["task"] = search_task(rank, world, os.path.join(out, f"rank{rank}.db"))
    if rank is not None:
        found["calls"] = calls(rank)
    with open(os.path.join(out, f"rank{rank}.pkl"), "wb") as f:
        pickle.dump(found, f)
    if rank is not None:
        dist.barrier()  # leave together: a rank tearing gloo down while the other still talks aborts it
        dist.destroy_process_group()


def leave() -> None:
    """Exit without the interpreter's finalization: gloo's threads may still hold tensors whose release
    then needs the GIL of a dying interpreter and aborts the process (SIGABRT, "terminate called without
    an active exception"; pytorch/pytorch#179291), about one CI run in several. The results are on disk."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    run(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
    leave()
