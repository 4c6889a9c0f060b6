"""Each member of a population trains as ``train`` would train it alone; members leave on their own."""

from __future__ import annotations

import pytest
import torch

import lrsearch
from lrsearch import Schedule
from lrsearch.population import PopulationWarning
from lrsearch.population import _chain
from lrsearch.population import population_plan
from lrsearch.population import train_population
from lrsearch.population._stack import MAX_POPULATION
from lrsearch.population._stack import Stack
from lrsearch.population._stack import population_size
from tests.population_tests.conftest import cnn
from tests.population_tests.conftest import make_task
from tests.population_tests.conftest import mlp


SCHEDULES = [Schedule("cosine", lr=3e-3), Schedule("onecycle", lr=1e-2),
             Schedule("plateau", lr=2e-3, params={"patience": 0}), Schedule("wsd", lr=5e-3)]


def _sgd(params) -> torch.optim.Optimizer:  # noqa: ANN001
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3)


class _Wrapped(torch.nn.Module):
    """Not a Sequential: trained through vmap rather than the hand-batched layers."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


@pytest.mark.parametrize(("model_fn", "optimizer_fn", "clip", "chunked"), [
    (mlp, None, None, False), (cnn, _sgd, 1.0, False), (cnn, None, None, True), (_Wrapped, None, None, False)])
def test_each_member_matches_train(model_fn, optimizer_fn, clip, chunked, monkeypatch) -> None:  # noqa: ANN001
    if chunked:  # one member per convolution chunk
        monkeypatch.setattr(_chain, "CHUNK_BYTES", 1)
    extra = {} if optimizer_fn is None else {"optimizer_fn": optimizer_fn}
    task = make_task(model_fn, clip_grad_norm=clip, **extra)
    seeds, totals = [0, 1, 2, 3], [15, 10, 15, 7]  # own seeds (weights, data order) and own lengths
    results = train_population(task, SCHEDULES, seeds, total_steps=totals, population=4)
    model = model_fn()
    assert (Stack([model], {id(p) for p in model.parameters()}).layers is None) == (model_fn is _Wrapped)
    for result, schedule, seed, total in zip(results, SCHEDULES, seeds, totals):
        alone = lrsearch.train(task, schedule, seed=seed, total_steps=total)
        assert result.steps == alone.steps == total and result.error is None
        assert result.values == pytest.approx(alone.values, abs=1e-5)
        for mine, theirs in zip(result.model.parameters(), alone.model.parameters()):
            assert torch.allclose(mine, theirs, atol=1e-5)


def test_a_stopped_member_leaves_and_the_others_go_on(task, monkeypatch) -> None:  # noqa: ANN001
    sizes: list[int] = []
    forward = Stack.forward

    def counting(self, flat, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if self.module.training:  # training steps, not evaluations
            sizes.append(flat.shape[0])
        return forward(self, flat, *args, **kwargs)

    def stop_at_second(index: int, value: float) -> None:
        if index == 1:
            raise RuntimeError("pruned")

    schedules = SCHEDULES[:3]
    exits: list[int] = []
    reference = train_population(task, schedules, population=3)
    monkeypatch.setattr(Stack, "forward", counting)
    results = train_population(task, schedules, on_eval=[None, stop_at_second, None], population=3,
                               on_exit=lambda i, r: exits.append(i))
    assert isinstance(results[1].error, RuntimeError) and len(results[1].values) == 2
    assert results[1].steps == 10 and results[1].values == reference[1].values[:2]
    assert exits[0] == 1 and sorted(exits) == [0, 1, 2]
    for i in (0, 2):
        assert results[i].error is None and results[i].values == pytest.approx(reference[i].values, abs=1e-6)
    assert sizes[-15:] == [3] * 10 + [2] * 5  # after step 10 the stopped member no longer computes


@pytest.mark.parametrize(("model_fn", "reason"), [
    (lambda: torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3)),
     "BatchNorm1d"),
    (lambda: _Branchy(), "vmap"),
])
def test_unstackable_models_fall_back_with_the_reason(model_fn, reason) -> None:  # noqa: ANN001
    task = make_task(model_fn)
    with pytest.warns(PopulationWarning, match=reason):
        results = train_population(task, SCHEDULES[:2], total_steps=6)
    alone = lrsearch.train(task, SCHEDULES[1], total_steps=6)
    assert results[1].values == alone.values
    assert population_plan(task)[1] is not None and reason in population_plan(task)[1]


class _Branchy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(12, 3), torch.nn.Linear(12, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return h if h.sum() > 0 else self.b(x)  # control flow on the model's own values


def test_unbatched_optimizer_and_task_features_fall_back(task) -> None:  # noqa: ANN001
    rms = make_task(optimizer_fn=lambda p: torch.optim.RMSprop(p, lr=1e-3))
    with pytest.warns(PopulationWarning, match="RMSprop"):
        train_population(rms, SCHEDULES[:1], total_steps=3)
    accumulate = make_task(accumulation_steps=2)
    with pytest.warns(PopulationWarning, match="accumulation_steps"):
        train_population(accumulate, SCHEDULES[:1], total_steps=3)


def test_size_is_chosen_from_memory_and_bounded(task, monkeypatch) -> None:  # noqa: ANN001
    assert population_size(10, 10**12, 100) == MAX_POPULATION
    assert population_size(10, 10**12, 5) == 5
    assert population_size(10**9, 10**3, 100) == 1
    assert population_size(1000, 4500, 100) == 4
    size, reason = population_plan(task)
    assert reason is None and size == MAX_POPULATION  # a tiny model: the cap
    monkeypatch.setattr("lrsearch.population._runner.free_bytes", lambda device: 3 * 1024)
    assert population_plan(task)[0] == 1


@pytest.mark.parametrize("bad", [0, -2, True, 2.5, "big", None])
def test_bad_population_is_refused(task, bad) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="population"):
        train_population(task, SCHEDULES[:1], population=bad)


def test_bad_member_arguments_are_refused(task) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="schedules"):
        train_population(task, [])
    with pytest.raises(ValueError, match="seeds"):
        train_population(task, SCHEDULES[:2], seeds=[0])
    with pytest.raises(ValueError, match=r"total_steps\[1\]"):
        train_population(task, SCHEDULES[:2], total_steps=[3, 0])
