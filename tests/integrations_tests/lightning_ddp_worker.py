"""A 3-trial search with Lightning's own DDP (``test_lightning_ddp.py``).

``torchrun --nproc_per_node 2 lightning_ddp_worker.py OUT``: every rank runs the objective with a
``DistributedTrial`` (``lrsearch.optimize_distributed``); Lightning finds the process group
already initialised and trains with ``strategy="ddp"``. Each rank reads every other sample (its
own loader: Lightning's sampler would shuffle the training set), so each global batch of 32 is the
one-process run's. ``python lightning_ddp_worker.py OUT
one``: that one-process reference. Each process pickles what its objective saw to ``OUT``.
"""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from typing import Any

import lightning.pytorch as pl
import optuna
import torch
import torch.distributed as dist
import torch.nn.functional as F

import lrsearch
from lrsearch.integrations.lightning import LRSearchCallback


PRUNED = 1


class PruneOne(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.number == PRUNED and len(trial.intermediate_values) >= 2


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val_loss", F.cross_entropy(self.net(batch[0]), batch[1]), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def main(out: str, one: bool) -> None:
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")  # Lightning's advice on loader workers and log intervals
    if not one:
        dist.init_process_group("gloo")
    world = 1 if one else dist.get_world_size()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 8, generator=g)
    data = torch.utils.data.TensorDataset(x, (x[:, :2].sum(1) > 0).long())
    mine = torch.utils.data.Subset(data, range(0 if one else dist.get_rank(), len(data), world))
    seen: list[tuple[Any, ...]] = []

    def objective(trial: optuna.trial.BaseTrial) -> float:
        search = LRSearchCallback(trial, monitor="val_loss")
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", devices=world, strategy="ddp" if world > 1 else "auto",
                             use_distributed_sampler=False, callbacks=[search], logger=False, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)
        number = trial.number
        try:
            trainer.fit(Net(), torch.utils.data.DataLoader(mine, batch_size=32 // world),
                        torch.utils.data.DataLoader(mine, batch_size=128 // world))
        except optuna.TrialPruned:
            seen.append((number, trial.params, "pruned"))
            raise
        seen.append((number, trial.params, search.value))
        return search.value  # type: ignore[return-value]

    options = {"n_trials": 3, "storage": os.path.join(out, "one.db" if one else "ddp.db"), "study_name": "pl",
               "rungs": None, "pruner": PruneOne(), "show_progress_bar": False, "heartbeat_interval": None,
               "space": lrsearch.SearchSpace(families=["cosine", "constant"], lr=(1e-2, 1.0), warmup=False)}
    if one:
        lrsearch.search.optimize(objective, **options)
    else:
        lrsearch.optimize_distributed(objective, **options)
    name = "one" if one else f"rank{dist.get_rank()}"
    with open(os.path.join(out, f"{name}.pkl"), "wb") as f:
        pickle.dump(seen, f)
    if not one:
        dist.destroy_process_group()


if __name__ == "__main__":
    from tests.search_tests.ddp_worker import leave

    main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "one")
    leave()  # results are on disk: no interpreter finalization, where gloo's threads can abort the process
