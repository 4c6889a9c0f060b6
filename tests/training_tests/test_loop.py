"""The reference training loop: options, and its contract with the schedule and the hook."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lrsearch
from lrsearch import Schedule
from lrsearch import Task
from lrsearch import train


def _data(n: int = 256):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    return x, (x[:, 0] > 0).long()


def _task(**kw) -> Task:
    x, y = _data()

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    defaults = dict(epochs=3, batch_size=32, optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    return Task(model, (x[:192], y[:192]), (x[192:], y[192:]), F.cross_entropy, **{**defaults, **kw})


def test_schedule_steps_once_per_optimizer_step_and_evaluates_each_epoch() -> None:
    seen = []
    result = train(_task(), Schedule("cosine", lr=0.05), on_eval=lambda step, value: seen.append((step, value)))
    assert result.steps == 3 * 6 and [s for s, _ in seen] == [0, 1, 2]
    assert result.values == [v for _, v in seen] and result.final < seen[0][1]


def test_accumulation_counts_optimizer_steps() -> None:
    assert train(_task(accumulation_steps=4), Schedule("constant", lr=0.05)).steps == 3 * 2  # ceil(6/4)


def test_same_seed_same_result_and_clipping_changes_it() -> None:
    a = train(_task(), Schedule("onecycle", lr=0.5), seed=3).values
    b = train(_task(), Schedule("onecycle", lr=0.5), seed=3).values
    c = train(_task(clip_grad_norm=0.01), Schedule("onecycle", lr=0.5), seed=3).values
    assert a == b and a != c


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cpu(amp: str) -> None:
    result = train(_task(amp=amp), Schedule("constant", lr=0.05))
    assert all(v == v for v in result.values) and result.final < 1.0


def test_metric_and_maximize() -> None:
    accuracy = lambda out, y: (out.argmax(1) == y).float().mean()  # noqa: E731
    result = train(_task(metric=accuracy, direction="maximize", epochs=5), Schedule("cosine", lr=0.1))
    assert 0.5 < result.final <= 1.0


def test_dataloaders_work_too() -> None:
    x, y = _data()
    train_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:192], y[:192]), batch_size=32)
    val = [(x[192:], y[192:])]
    task = Task(_task().model_fn, train_loader, val, F.cross_entropy, epochs=2,
                optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1))
    assert train(task, Schedule("linear", lr=0.1)).steps == 2 * 6


class RecordingSGD(torch.optim.SGD):
    """SGD that remembers the LR of every step it takes."""

    def __init__(self, params, **kw) -> None:  # noqa: ANN001
        super().__init__(params, **kw)
        self.lrs: list[float] = []

    def step(self, closure=None):  # noqa: ANN001, ANN201
        self.lrs.append(self.param_groups[0]["lr"])
        return super().step(closure)


def test_plateau_schedule_reduces_on_the_validation_metric() -> None:
    made: list[RecordingSGD] = []
    task = _task(epochs=6, optimizer_fn=lambda p: made.append(RecordingSGD(p, lr=0.1)) or made[-1])
    train(task, Schedule("plateau", lr=5.0, params={"patience": 0, "factor": 0.5, "threshold": 0.5}))
    lrs = made[0].lrs
    assert max(lrs) == 5.0 and min(lrs) < 5.0  # a huge LR stalls, the monitor halves it


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "epochs must be >= 1 but got 0"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"direction": "up"}, "direction must be one of 'minimize', 'maximize'"),
        ({"amp": "fp8"}, "amp must be one of None, 'bf16', 'fp16'"),
        ({"clip_grad_norm": -1.0}, "clip_grad_norm must be > 0"),
        ({"direction": "maximize"}, "direction must be 'minimize' when metric is None"),
        ({"optimizer_fn": 3}, "optimizer_fn must be callable"),
        ({"metric": "accuracy"}, "metric must be callable or None"),
        ({"accumulation_steps": 0}, "accumulation_steps must be >= 1"),
    ],
)
def test_bad_tasks(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        _task(**kwargs)
    assert message in str(info.value)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_cuda_training(amp) -> None:
    result = train(_task(device="cuda", amp=amp), Schedule("cosine", lr=0.05))
    assert result.device.startswith("cuda") and result.final == result.final


def test_public() -> None:
    assert lrsearch.train is train and lrsearch.Task is Task


def test_the_result_carries_the_trained_model() -> None:
    task = _task()
    result = train(task, Schedule("cosine", lr=0.05))
    x, y = task.val_data
    with torch.no_grad():
        loss = float(F.cross_entropy(result.model.eval()(x), y))
    assert loss == pytest.approx(result.final, rel=1e-5)
