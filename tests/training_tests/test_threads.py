"""The CPU thread rule: chosen deliberately, overridable, restored after a run."""

from __future__ import annotations

import pytest
import torch

import lrsearch
from lrsearch.training import _threads


@pytest.fixture
def clean_env(monkeypatch):  # noqa: ANN201
    monkeypatch.delenv("LRSEARCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return monkeypatch


@pytest.mark.parametrize("cores,expected", [(1, 1), (2, 1), (4, 2), (8, 4), (64, 4)])
def test_the_default_is_half_the_usable_cores_between_1_and_4(cores, expected, clean_env) -> None:
    clean_env.setattr(_threads, "usable_cores", lambda: cores)
    assert _threads.cpu_threads() == expected


def test_the_user_overrides_in_order(clean_env) -> None:
    clean_env.setattr(_threads, "usable_cores", lambda: 16)
    clean_env.setenv("OMP_NUM_THREADS", "3")
    assert _threads.cpu_threads() is None  # torch follows OMP_NUM_THREADS already
    clean_env.setenv("LRSEARCH_THREADS", "2")
    assert _threads.cpu_threads() == 2
    assert _threads.cpu_threads(5) == 5 and _threads.cpu_threads(0) is None
    clean_env.setenv("LRSEARCH_THREADS", "many")
    with pytest.raises(ValueError, match="LRSEARCH_THREADS must be an integer"):
        _threads.cpu_threads()
    with pytest.raises(ValueError, match="threads must be >= 0"):
        lrsearch.Task(model_fn=lambda: torch.nn.Linear(1, 1), train_data=None, val_data=None,
                      loss_fn=torch.nn.functional.mse_loss, threads=-1)


def test_training_uses_the_rule_and_restores_torchs_setting(clean_env) -> None:
    x = torch.randn(64, 3)
    seen = []

    def model() -> torch.nn.Module:
        seen.append(torch.get_num_threads())
        return torch.nn.Linear(3, 1)

    task = lrsearch.Task(model_fn=model, train_data=(x, x.sum(1, keepdim=True)), val_data=(x, x.sum(1, keepdim=True)),
                         loss_fn=torch.nn.functional.mse_loss, epochs=1, batch_size=32, device="cpu", threads=2)
    before = torch.get_num_threads()
    lrsearch.train(task, lrsearch.Schedule("cosine", lr=0.01))
    assert seen == [2] and torch.get_num_threads() == before
