"""TensorBatches' shuffling state can be saved and loaded (a checkpoint, and what lr_find rewinds)."""

from __future__ import annotations

import copy

import pytest
import torch

from lrsearch import TensorBatches
from tests.test_range_test import _data


def _batches(tb: TensorBatches, passes: int) -> list[torch.Tensor]:
    return [b[0] for _ in range(passes) for b in tb]


def test_tensor_batches_state_dict_round_trip() -> None:
    x, y = _data(50)
    tb = TensorBatches(x, y, batch_size=16, seed=7)
    _batches(tb, 2)
    state = tb.state_dict()
    assert state == {"seed": 7, "passes": 2}
    expected = _batches(tb, 2)
    other = TensorBatches(x, y, batch_size=16)  # another seed, loaded from the checkpoint
    other.load_state_dict(copy.deepcopy(state))
    assert all(torch.equal(a, b) for a, b in zip(_batches(other, 2), expected, strict=True))
    tb.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(_batches(tb, 2), expected, strict=True))


@pytest.mark.parametrize(("state", "message"), [
    ([2], "state_dict must be a mapping"),
    ({"passes": 2}, "state_dict must have the keys"),
    ({"seed": 0, "passes": -1}, r"state_dict\['passes'\] must be >= 0 but got -1"),
    ({"seed": 1.5, "passes": 0}, r"state_dict\['seed'\] must be an integer but got 1.5"),
])
def test_tensor_batches_load_state_dict_rejects_bad_states(state, message: str) -> None:
    tb = TensorBatches(*_data(10), batch_size=4)
    with pytest.raises(ValueError, match=message):
        tb.load_state_dict(state)
    assert tb.state_dict() == {"seed": 0, "passes": 0}
