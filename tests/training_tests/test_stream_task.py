"""A ``Task`` for streams: evaluation every N optimizer steps, training data without a length (a
DataLoader over an IterableDataset, read once), in ``train``, the search and the population."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data import IterableDataset

import lrsearch
from lrsearch import Schedule
from lrsearch import Task
from lrsearch import train
from lrsearch.search._optimize import task_objective
from lrsearch.search._transfer import trial_curve


torch.set_num_threads(1)


class Stream(IterableDataset):
    """``batches`` fresh batches, the same ones on every pass; counts the batches it has yielded."""

    def __init__(self, batches: int) -> None:
        self.batches, self.served = batches, 0

    def __iter__(self):  # noqa: ANN204
        g = torch.Generator().manual_seed(0)
        for _ in range(self.batches):
            x = torch.randn(16, 6, generator=g)
            self.served += 1
            yield x, (x[:, 0] > 0).long()


def _model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _val() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(1))
    return x, (x[:, 0] > 0).long()


def stream_task(batches: int = 23, **kw) -> Task:
    settings = {"steps": 23, "eval_every": 5, "device": "cpu", **kw}
    return Task(_model, DataLoader(Stream(batches), batch_size=None), _val(), F.cross_entropy, **settings)


def _served_metric(stream: Stream):  # noqa: ANN202
    """A metric whose value is the training batches read so far: it shows when evaluation ran."""
    return lambda out, y: torch.tensor(float(stream.served))


def test_a_one_pass_stream_evaluates_every_n_steps_and_at_the_last() -> None:
    task = stream_task()
    task.metric = _served_metric(task.train_data.dataset)
    seen = []
    result = train(task, Schedule("cosine", lr=0.05), on_eval=lambda i, v: seen.append(i))
    assert task.eval_steps() == [5, 10, 15, 20, 23] and len(seen) == math.ceil(23 / 5)
    assert result.steps == 23 and result.values == [5.0, 10.0, 15.0, 20.0, 23.0] and seen == [0, 1, 2, 3, 4]
    assert task.eval_steps(10) == [5, 10] and task.eval_steps(4) == [4]  # a short run of the search


def test_a_stream_that_runs_out_is_an_error_not_a_second_pass() -> None:
    with pytest.raises(ValueError, match=r"train_data must yield batches .* 24 optimizer steps .* ran out after 23"):
        train(stream_task(steps=24), Schedule("constant", lr=0.05))


def test_a_stream_needs_steps_and_a_reiterable_loader() -> None:
    with pytest.raises(ValueError, match=r"steps must be given when train_data has no length .* None"):
        stream_task(steps=None)
    with pytest.raises(ValueError, match=r"train_data must be \(inputs, targets\) tensors or a re-iterable .* generator"):
        Task(_model, (b for b in Stream(3)), _val(), F.cross_entropy, steps=3)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=rf"eval_every must be .*{bad}"):
            stream_task(eval_every=bad)
    with pytest.raises(ValueError, match=r"steps must be .* 0"):
        stream_task(steps=0)


def _tensor_task(**kw) -> tuple[Task, list[int]]:
    x = torch.randn(96, 6, generator=torch.Generator().manual_seed(2))
    calls = [0]

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls[0] += out.requires_grad  # training batches only (evaluation runs without grad)
        return F.cross_entropy(out, y)

    task = Task(_model, (x, (x[:, 0] > 0).long()), _val(), loss, metric=lambda o, y: torch.tensor(float(calls[0])),
                epochs=3, batch_size=16, device="cpu", **kw)
    return task, calls


def test_eval_every_crosses_epochs_and_without_it_evaluations_stay_per_epoch() -> None:
    task, _ = _tensor_task()  # 6 batches per epoch, 3 epochs
    assert train(task, Schedule("constant", lr=0.05)).values == [6.0, 12.0, 18.0]
    assert task.eval_steps() == [6, 12, 18] and task.eval_steps(9) == [3, 6, 9]  # as before: epochs evenly spaced
    task, _ = _tensor_task(eval_every=4)
    assert train(task, Schedule("constant", lr=0.05)).values == [4.0, 8.0, 12.0, 16.0, 18.0]
    task, _ = _tensor_task(steps=10)  # a tensor task may run a step count too: 10 evenly spaced... of 3
    assert train(task, Schedule("constant", lr=0.05)).values == [3.0, 7.0, 10.0]


class _PruneFrom(optuna.pruners.BasePruner):
    def __init__(self, step: int) -> None:
        self.step = step

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return trial.last_step is not None and trial.last_step >= self.step


def test_the_search_reports_every_evaluation_and_prunes_a_stream_mid_run() -> None:
    study = optuna.create_study(pruner=_PruneFrom(2))
    study.optimize(task_objective(stream_task()), n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert sorted(trial.intermediate_values) == [0, 1, 2]  # stopped at step 15 of 23
    assert trial.user_attrs["n_evals"] == 5 and trial.user_attrs["eval_every"] == 5


def test_optimize_searches_a_stream_at_every_rung() -> None:
    result = lrsearch.optimize(task=stream_task(), n_trials=3, storage=optuna.storages.InMemoryStorage(),
                               artifacts=None, pruner=optuna.pruners.NopPruner(), show_progress_bar=False)
    trials = [t for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trials) == 3
    for t in trials:
        run = t.user_attrs["run_steps"]
        assert t.user_attrs["n_evals"] == len(t.intermediate_values) == math.ceil(run / 5)
        assert trial_curve(t).steps == tuple(min(run, 5 * (k + 1)) for k in range(math.ceil(run / 5)))
    assert {t.user_attrs["run_steps"] for t in trials} == {round(23 / 3)}  # fresh trials start short


def test_population_falls_back_for_a_stream_and_batches_eval_every() -> None:
    schedules = [Schedule("constant", lr=0.05), Schedule("cosine", lr=0.1)]
    with pytest.warns(lrsearch.PopulationWarning, match="stream without a length"):
        results = lrsearch.train_population(stream_task(), schedules)
    assert [len(r.values) for r in results] == [5, 5] and [r.steps for r in results] == [23, 23]
    task, _ = _tensor_task(eval_every=7)
    task.metric = None  # the validation loss
    with warnings.catch_warnings():
        warnings.simplefilter("error", lrsearch.PopulationWarning)  # trained together, not one by one
        together = lrsearch.train_population(task, schedules, total_steps=[20, 10])
    alone = [train(task, s, total_steps=n).values for s, n in zip(schedules, (20, 10))]
    assert [len(r.values) for r in together] == [3, 2]
    for r, values in zip(together, alone):
        assert r.values == pytest.approx(values, rel=1e-4)
