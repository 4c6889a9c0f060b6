"""PlateauMonitor: ReduceLROnPlateau's state machine as plain data."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lrsearch import PlateauMonitor


@pytest.mark.parametrize(
    "settings,values,plateaus",
    [
        ({"patience": 0}, [1.0, 1.0, 0.5, 0.6], [False, True, False, True]),
        ({"patience": 2}, [1.0, 1.1, 1.2, 1.3, 0.9], [False, False, False, True, False]),
        ({"patience": 1, "cooldown": 2}, [1.0, 2, 2, 2, 2, 2, 2], [False, False, True, False, False, False, True]),
        ({"patience": 0, "threshold": 0.1, "threshold_mode": "rel"}, [1.0, 0.95, 0.85], [False, True, False]),
        ({"patience": 0, "threshold": 0.1, "threshold_mode": "abs"}, [1.0, 0.95, 0.85], [False, True, False]),
        ({"mode": "max", "patience": 0}, [0.5, 0.6, 0.55], [False, False, True]),
        ({"patience": 0}, [1.0, float("nan"), 0.9], [False, True, False]),
    ],
)
def test_monitor_table(settings: dict, values: list[float], plateaus: list[bool]) -> None:
    m = PlateauMonitor(**settings)
    assert [m.update(v) for v in values] == plateaus


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("threshold_mode", ["rel", "abs"])
@pytest.mark.parametrize("cooldown", [0, 2])
def test_same_decisions_as_reduce_lr_on_plateau(mode: str, threshold_mode: str, cooldown: int) -> None:
    gen = torch.Generator().manual_seed(1)
    values = (torch.linspace(1, 0.2, 60) + 0.3 * torch.rand(60, generator=gen)).tolist()
    if mode == "max":
        values = [3.0 - v for v in values]  # positive: torch's rel rule is wrong-signed below zero
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    ref = ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=3, threshold=0.01,
                            threshold_mode=threshold_mode, cooldown=cooldown)
    m = PlateauMonitor(mode, 3, 0.01, threshold_mode, cooldown)
    ours, theirs, last = [], [], 1.0
    for v in values:
        ours.append(m.update(v))
        ref.step(v)
        theirs.append(opt.param_groups[0]["lr"] < last)
        last = opt.param_groups[0]["lr"]
        assert m.num_bad_evals == ref.num_bad_epochs and m.cooldown_counter == ref.cooldown_counter
    assert ours == theirs and sum(ours) >= 2


@pytest.mark.parametrize("mode,sign", [("min", 1.0), ("max", -1.0)])
def test_rel_threshold_is_relative_to_the_magnitude_for_negative_metrics(mode: str, sign: float) -> None:
    # a stalled negative log-likelihood: torch's best * (1 -/+ thr) would count it as improving
    m = PlateauMonitor(mode, patience=1, threshold=0.01, threshold_mode="rel")
    values = [sign * v for v in (-1.0, -2.0, -2.005, -2.009, -2.01)]
    assert [m.update(v) for v in values] == [False, False, False, True, False]


def test_state_round_trips_through_json_mid_sequence() -> None:
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.6, 0.6, 0.6]
    a = PlateauMonitor(patience=1, cooldown=1)
    out_a = [a.update(v) for v in values]
    b = PlateauMonitor(patience=1, cooldown=1)
    out_b = [b.update(v) for v in values[:4]]
    c = PlateauMonitor.from_state_dict(json.loads(json.dumps(b.state_dict())))
    out_b += [c.update(v) for v in values[4:]]
    assert out_a == out_b and c.state_dict() == a.state_dict()


def test_fresh_state_has_no_best() -> None:
    state = PlateauMonitor().state_dict()
    assert state["best"] is None and json.dumps(state)
    assert math.isinf(PlateauMonitor.from_state_dict(state).best)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mode": "minimum"}, "mode must be one of 'min', 'max' but got 'minimum'"),
        ({"patience": -1}, "patience must be >= 0 but got -1"),
        ({"patience": 1.5}, "patience must be an integer but got 1.5"),
        ({"threshold": -0.1}, "threshold must be >= 0 but got -0.1"),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"threshold_mode": "relative"}, "threshold_mode must be one of 'rel', 'abs'"),
        ({"cooldown": -2}, "cooldown must be >= 0 but got -2"),
    ],
)
def test_bad_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        PlateauMonitor(**kwargs)
    assert message in str(info.value)


def test_bad_state() -> None:
    with pytest.raises(ValueError, match="num_bad_evals must be >= 0"):
        PlateauMonitor.from_state_dict({"num_bad_evals": -1})
    with pytest.raises(ValueError, match="state must be a dict"):
        PlateauMonitor.from_state_dict([1])  # type: ignore[arg-type]
