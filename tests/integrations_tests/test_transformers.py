"""lrsearch.integrations.transformers: a tiny torch module in the Hugging Face Trainer, CPU, no downloads."""

from __future__ import annotations

import optuna
import pytest
import torch

import lrsearch
from lrsearch import Schedule
from tests.integrations_tests import AlwaysPrune
from tests.integrations_tests import check_study_runs
from tests.integrations_tests import check_tail_run


torch.set_num_threads(1)
tf = pytest.importorskip("transformers")
from lrsearch.integrations.transformers import LRSearchCallback  # noqa: E402


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def dataset(n: int = 32):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return [{"x": x[i], "labels": x[i].sum(0, keepdim=True)} for i in range(n)]


class LRLog(tf.TrainerCallback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs) -> None:
        self.lrs.append(optimizer.param_groups[0]["lr"])


def args(tmp_path, **kwargs):
    kwargs = {"num_train_epochs": 3, "eval_strategy": "epoch", **kwargs}
    return tf.TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8,
                                per_device_eval_batch_size=16, learning_rate=0.05, report_to=[],
                                save_strategy="no", logging_strategy="no", use_cpu=True, disable_tqdm=True,
                                **kwargs)


def trainer(tmp_path, callbacks, model=None, **kwargs):
    return tf.Trainer(model=model or Tiny(), args=args(tmp_path, **kwargs), train_dataset=dataset(),
                      eval_dataset=dataset(16), callbacks=callbacks)


def test_study_drives_each_step_from_the_trainers_step_count(tmp_path) -> None:
    runs = []

    def objective(trial):
        search, lrs = LRSearchCallback(trial, metric="eval_loss"), LRLog()
        t = trainer(tmp_path, [search, lrs])
        t.train()
        runs.append((trial.number, search, lrs.lrs, t.state.global_step, t.state.max_steps))
        return search.value

    result = lrsearch.optimize(objective, n_trials=3, storage=str(tmp_path / "s.log"), artifacts=None)
    check_study_runs(result, runs, full_steps=12)  # 3 epochs of 4 batches; a 1/3-length run stops at 4


def test_pruning_raises_through_train_and_the_trial_ends_pruned(tmp_path) -> None:
    def objective(trial):
        search = LRSearchCallback(trial, schedule=Schedule("cosine", lr=0.05))
        trainer(tmp_path, [search]).train()
        return search.value

    result = lrsearch.optimize(objective, n_trials=2, storage=str(tmp_path / "p.log"), artifacts=None,
                               pruner=AlwaysPrune(), rungs=None)
    assert [t.state for t in result.study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(len(t.intermediate_values) == 1 for t in result.study.trials)


@pytest.mark.parametrize("kwargs", [
    {"num_train_epochs": 2},
    {"eval_strategy": "steps", "eval_steps": 5},
    {"max_steps": 6, "gradient_accumulation_steps": 2},
])
def test_the_counted_evaluations_are_the_ones_made(tmp_path, kwargs) -> None:
    trial = optuna.create_study().ask()
    search = LRSearchCallback(trial, schedule=Schedule("linear", lr=0.05))
    t = trainer(tmp_path, [search], **kwargs)
    t.train()
    t.evaluate()  # after train: not reported
    assert search.n_evals == len(trial.storage.get_trial(trial._trial_id).intermediate_values) >= 1


def test_hyperparameter_search_with_lrsearchs_space(tmp_path) -> None:
    search = LRSearchCallback()
    t = tf.Trainer(model_init=Tiny, args=args(tmp_path), train_dataset=dataset(), eval_dataset=dataset(16),
                   callbacks=[search])
    best = t.hyperparameter_search(hp_space=search.hp_space, backend="optuna", n_trials=3, direction="minimize",
                                   compute_objective=lambda metrics: metrics["eval_loss"])
    assert set(best.hyperparameters) >= {"family", "lr"}
    # the trainer reported each evaluation (at its global step) with the sampled schedule's peak as lr
    study_trial = search.trial.study.trials[-1]
    assert "schedule" in study_trial.user_attrs and len(study_trial.intermediate_values) == 3
    assert search.scheduler.schedule == Schedule.from_dict(study_trial.user_attrs["schedule"])


def test_refusals(tmp_path) -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match="metric"):
        LRSearchCallback(trial, metric="")
    with pytest.raises(ValueError, match="trial must be"):
        trainer(tmp_path, [LRSearchCallback()]).train()
    with pytest.raises(ValueError, match="lr_scheduler_type"):
        trainer(tmp_path, [LRSearchCallback(trial)], lr_scheduler_type="reduce_lr_on_plateau").train()
    with pytest.raises(ValueError, match="'eval_nope' is not among"):
        trainer(tmp_path, [LRSearchCallback(trial, metric="eval_nope", schedule=Schedule("constant", lr=0.1))]
                ).train()


class Record(tf.TrainerCallback):
    """The live weights after each optimizer step and each evaluation's loss (listed before the
    lrsearch callback, so it sees the weights before any swap)."""

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []
        self.values: list[float] = []

    def on_step_end(self, args, state, control, model=None, **kwargs) -> None:
        self.steps.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs) -> None:
        self.values.append(metrics["eval_loss"])


def _train_with(tmp_path, tail) -> dict:
    torch.manual_seed(0)
    model, record = Tiny(), Record()
    search = LRSearchCallback(optuna.create_study().ask(), schedule=Schedule("constant", lr=0.05, tail=tail))
    t = trainer(tmp_path, [record, search], model=model)
    t.train()  # 3 epochs of 4 steps, an evaluation after each
    assert (search.averager is None) == (tail is None) and len(record.values) == 3
    values = list(record.values)
    return {"steps": record.steps, "values": values, "final_value": t.evaluate()["eval_loss"],
            "final": torch.cat([p.detach().flatten() for p in model.parameters()])}


def test_a_tail_evaluates_and_returns_the_averaged_weights(tmp_path) -> None:
    check_tail_run(_train_with(tmp_path, None), _train_with(tmp_path, {"kind": "swa", "start": 0.5}), start=6)
