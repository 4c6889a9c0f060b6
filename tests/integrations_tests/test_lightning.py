"""lrsearch.integrations.lightning: a tiny LightningModule on random tensors, CPU, a few seconds."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest
import torch

import lrsearch
from lrsearch import Schedule
from tests.integrations_tests import AlwaysPrune
from tests.integrations_tests import check_study_runs
from tests.integrations_tests import check_tail_run


torch.set_num_threads(1)
L = pytest.importorskip("lightning.pytorch")
from lrsearch.integrations import require  # noqa: E402
from lrsearch.integrations.lightning import LRSearchCallback  # noqa: E402
from lrsearch.integrations.lightning import count_evals  # noqa: E402
from lrsearch.integrations.lightning import lr_find  # noqa: E402
from lrsearch.integrations.lightning import optimizer_of  # noqa: E402


# Lightning's advice for real jobs (more loader workers, a log interval longer than a tiny epoch), and
# Lightning 2.6's own use of a torch pytree class that torch 2.13 deprecates
pytestmark = [
    pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
    pytest.mark.filterwarnings(r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"),
]


class Tiny(L.LightningModule):
    def __init__(self, with_scheduler: bool = False) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
        self.with_scheduler = with_scheduler

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return {"loss": loss}

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        if self.with_scheduler:
            return [opt], [torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)]
        return opt


def loaders(n: int = 32, batch_size: int = 8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    data = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    return torch.utils.data.DataLoader(data, batch_size=batch_size), torch.utils.data.DataLoader(data, batch_size=16)


class LRLog(L.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.lrs.append(optimizer.param_groups[0]["lr"])


def trainer(callbacks, **kwargs):
    kwargs.setdefault("max_epochs", 3)
    return L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=callbacks, **kwargs)


def test_study_drives_each_step_from_the_trainers_step_count(tmp_path) -> None:
    runs = []

    def objective(trial):
        search, lrs = LRSearchCallback(trial, monitor="val_loss"), LRLog()
        t = trainer([search, lrs])
        t.fit(Tiny(), *loaders())
        runs.append((trial.number, search, lrs.lrs, t.global_step, t.estimated_stepping_batches))
        return search.value

    result = lrsearch.optimize(objective, n_trials=3, storage=str(tmp_path / "s.log"), artifacts=None)
    check_study_runs(result, runs, full_steps=12)  # 3 epochs of 4 batches; a 1/3-length run stops at 4


def test_pruning_raises_through_fit_and_the_trial_ends_pruned(tmp_path) -> None:
    fits = []

    def objective(trial):
        search = LRSearchCallback(trial, schedule=Schedule("cosine", lr=0.05))
        t = trainer([search])
        fits.append(t)
        t.fit(Tiny(), *loaders())
        return search.value

    result = lrsearch.optimize(objective, n_trials=2, storage=str(tmp_path / "p.log"), artifacts=None,
                               pruner=AlwaysPrune(), rungs=None)
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in result.study.trials)
    assert all(t.global_step == 4 for t in fits)  # stopped at the first validation, after epoch 1
    assert result.study.trials[0].user_attrs["schedule"] == Schedule("cosine", lr=0.05).to_dict()


@pytest.mark.parametrize("kwargs", [
    {"max_epochs": 2},
    {"max_epochs": 3, "val_check_interval": 0.5, "accumulate_grad_batches": 2},
    {"max_epochs": 4, "check_val_every_n_epoch": 2},
    {"max_steps": 6, "max_epochs": 5},
    {"max_steps": 7, "max_epochs": 5, "val_check_interval": 3, "check_val_every_n_epoch": None},
])
def test_the_counted_evaluations_are_the_ones_made(kwargs) -> None:
    study = optuna.create_study()
    trial = study.ask()
    search = LRSearchCallback(trial, schedule=Schedule("linear", lr=0.05))
    trainer([search], **kwargs).fit(Tiny(), *loaders())
    assert search.n_evals == len(trial.storage.get_trial(trial._trial_id).intermediate_values) >= 1


def test_count_evals_arithmetic() -> None:
    assert count_evals(4, 1, 1, 4, 12) == 3
    assert count_evals(4, 1, 1, 4, 6) == 2  # stopped mid-epoch 2: a last validation at the stop
    assert count_evals(4, 1, 2, 4, 6) == 1  # epoch 2 does not validate
    assert count_evals(float("inf"), 1, 1, float("inf"), 6) == 0


def test_refusals() -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match="monitor"):
        LRSearchCallback(trial, monitor="")
    with pytest.raises(ValueError, match="n_evals"):
        LRSearchCallback(trial, n_evals=0)
    with pytest.raises(ValueError, match="no LR scheduler"):
        trainer([LRSearchCallback(trial)]).fit(Tiny(with_scheduler=True), *loaders())
    with pytest.raises(ValueError, match="'nope' is not among"):
        trainer([LRSearchCallback(trial, monitor="nope", schedule=Schedule("constant", lr=0.1))]).fit(
            Tiny(), *loaders())


@pytest.mark.filterwarnings("ignore::lrsearch.RangeTestWarning")  # 30 steps on 32 samples: noisy
@pytest.mark.parametrize("with_scheduler", [False, True])
def test_lr_find_on_the_module_leaves_it_unchanged(with_scheduler) -> None:
    module = Tiny(with_scheduler=with_scheduler)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    result = lr_find(module, loaders()[0], num_iter=30, end_lr=10.0, verbose=False)
    assert len(result.lrs) >= 10 and result.lrs[0] == pytest.approx(1e-7)
    low, high = result.search_range()
    assert 0 < low < high
    assert all(torch.equal(before[k], v) for k, v in module.state_dict().items())
    with pytest.raises(ValueError, match="LightningModule"):
        lr_find(torch.nn.Linear(2, 1), loaders()[0])


def test_optimizer_of_every_return_form() -> None:
    module = Tiny()
    for form in (lambda o, s: o, lambda o, s: [o], lambda o, s: ([o], [s]), lambda o, s: {"optimizer": o,
                 "lr_scheduler": s}, lambda o, s: [{"optimizer": o, "lr_scheduler": {"scheduler": s}}]):
        opt = torch.optim.SGD(module.parameters(), lr=0.05)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5)
        assert optimizer_of(form(opt, sched)) is opt and opt.param_groups[0]["lr"] == 0.05  # base LR back
    with pytest.raises(ValueError, match="one torch optimizer"):
        optimizer_of([opt, torch.optim.SGD(module.parameters(), lr=0.1)])


def test_missing_framework_says_which_extra() -> None:
    with pytest.raises(ImportError, match=r"pip install 'lrsearch\[lightning\]'"):
        require("lrsearch_no_such_framework", "lightning")


def test_import_lrsearch_loads_no_framework() -> None:
    code = ("import sys, lrsearch, lrsearch.integrations; lrsearch.ScheduleLR; lrsearch.optimize; "
            "print(' '.join(sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert not loaded & {"lightning", "pytorch_lightning", "transformers", "accelerate", "matplotlib"}


class Record(L.Callback):
    """The live weights after each optimizer step and the validation metric of each validation."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps.append(torch.cat([p.detach().flatten().clone() for p in pl_module.parameters()]))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.values.append(float(trainer.callback_metrics["val_loss"]))


def _fit_with(tail) -> dict:
    torch.manual_seed(0)
    module, record = Tiny(), Record()
    search = LRSearchCallback(optuna.create_study().ask(), schedule=Schedule("constant", lr=0.05, tail=tail))
    train, val = loaders()
    trainer([record, search], num_sanity_val_steps=0).fit(module, train, val)  # 3 epochs of 4 steps
    x, y = val.dataset.tensors
    with torch.no_grad():
        final_value = float(torch.nn.functional.mse_loss(module.net(x), y))
    assert (search.averager is None) == (tail is None)
    return {"steps": record.steps, "values": record.values, "final_value": final_value,
            "final": torch.cat([p.detach().flatten() for p in module.parameters()])}


def test_a_tail_validates_and_returns_the_averaged_weights() -> None:
    check_tail_run(_fit_with(None), _fit_with({"kind": "swa", "start": 0.5}), start=6)
