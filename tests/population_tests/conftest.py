from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lrsearch


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Unflatten(1, (1, 12)), torch.nn.Conv1d(1, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv1d(4, 4, 3, stride=2, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(24, 3))


def make_task(model_fn=mlp, **kwargs) -> lrsearch.Task:  # noqa: ANN001
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 12, generator=gen)
    y = (x[:, :3].sum(1) > 0).long() + (x[:, 3] > 0.5).long()
    settings = {"epochs": 3, "batch_size": 32, "device": "cpu", **kwargs}
    return lrsearch.Task(model_fn, (x[:150], y[:150]), (x[150:], y[150:]), F.cross_entropy, **settings)


@pytest.fixture
def task() -> lrsearch.Task:
    return make_task()
