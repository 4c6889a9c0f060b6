"""The averaging tail of a spec: round trip, defaults, validation, update steps and SWALR parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lrsearch import Schedule
from lrsearch.schedules._params import steps_of
from lrsearch.schedules._tail import update_steps


def test_no_tail_keeps_the_old_json() -> None:
    s = Schedule("constant", lr=0.1)
    assert s.tail is None and s.tail_start_step(10) is None
    assert set(s.to_dict()) == {"version", "family", "lr", "params", "warmup"}
    assert Schedule.from_dict({**s.to_dict(), "tail": None}) == s


@pytest.mark.parametrize("tail", [
    {"kind": "swa"},
    {"kind": "ema", "decay": 0.99, "start": 0.5, "every": 0.01},
    {"kind": "swa", "swa_lr": 0.05, "anneal": 0.1, "anneal_shape": "linear", "start": 0.8},
])
def test_round_trip_fills_defaults_and_freezes(tail: dict) -> None:
    s = Schedule("wsd", lr=0.02, tail=tail)
    again = Schedule.from_json(s.to_json())
    assert again == s and hash(again) == hash(s) and again.to_dict() == s.to_dict()
    assert s.to_dict()["tail"]["kind"] == tail["kind"]
    assert s.tail["start"] == tail.get("start", 0.75) and s.tail["every"] == tail.get("every", 0.0)
    assert ("decay" in s.tail) == (tail["kind"] == "ema")
    with pytest.raises(TypeError):
        s.tail["start"] = 0.1  # type: ignore[index]
    assert s.replace(lr=0.1).tail == s.tail and s.replace(tail=None).tail is None
    assert Schedule.from_dict({**s.to_dict(), "tail": None}) == s.replace(tail=None)


def test_describe_mentions_the_tail() -> None:
    assert "SWA from 75%" in Schedule("cosine", tail={"kind": "swa"}).describe()
    text = Schedule("cosine", tail={"kind": "ema", "decay": 0.99, "swa_lr": 0.05}).describe()
    assert "EMA(0.99) from 75%" in text and "LR -> 0.05 over 5.0% cos" in text


@pytest.mark.parametrize("tail,message", [
    ([1], "tail must be None or a dict but got [1]"),
    ({"start": 0.5}, "tail.kind must be given"),
    ({"kind": "mean"}, "tail.kind must be one of 'swa', 'ema' but got 'mean'"),
    ({"kind": "swa", "start": 1.0}, "tail.start must be in (0, 1) but got 1.0"),
    ({"kind": "swa", "start": 0}, "tail.start must be in (0, 1) but got 0.0"),
    ({"kind": "ema", "decay": 1.0}, "tail.decay must be in [0, 1) but got 1.0"),
    ({"kind": "swa", "decay": 0.9}, "tail has an unknown parameter 'decay' for tail kind 'swa'"),
    ({"kind": "swa", "swa_lr": 0.0},
     "tail.swa_lr must be None or a ratio of the peak LR in (0, 1] but got 0.0"),
    ({"kind": "swa", "swa_lr": "x"}, "tail.swa_lr must be a real number but got 'x'"),
    ({"kind": "swa", "every": -0.1}, "tail.every must be in [0, 1) but got -0.1"),
    ({"kind": "swa", "anneal_shape": "exp"},
     "tail.anneal_shape must be one of 'cos', 'linear' but got 'exp'"),
    ({"kind": "ema", "strat": 0.5}, "Did you mean 'start'?"),
])
def test_bad_tails_name_the_key_the_rule_and_the_value(tail, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Schedule.from_dict({"family": "cosine", "tail": tail})
    assert message in str(info.value)


def test_update_steps_start_at_the_tail_and_end_on_the_last_step() -> None:
    s = Schedule("cosine", tail={"kind": "swa", "start": 0.75})
    assert s.tail_start_step(100) == 75 and Schedule("cosine").tail_start_step(100) is None
    assert update_steps(s.tail, 100).tolist() == list(range(75, 100))
    every = Schedule("cosine", tail={"kind": "swa", "start": 0.5, "every": 0.1}).tail
    assert update_steps(every, 100).tolist() == [59, 69, 79, 89, 99]
    late = Schedule("cosine", tail={"kind": "swa", "start": 0.9, "every": 0.5}).tail
    assert update_steps(late, 100).tolist() == [99]  # the final weights are always averaged in
    assert update_steps(s.tail, 1).tolist() == [0]


def test_without_swa_lr_the_lr_is_unchanged() -> None:
    base = Schedule("cosine", lr=0.1, warmup={"frac": 0.05})
    np.testing.assert_array_equal(base.replace(tail={"kind": "ema"}).curve(500), base.curve(500))


def _torch_swalr(
    base: Schedule, total: int, start: int, swa_lr: float, anneal: int, shape: str
) -> np.ndarray:
    """The documented torch recipe per optimizer step: the base schedule until ``start``, then
    ``SWALR`` built at ``start`` and stepped after every optimizer step."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base.lr)
    main = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: base.lr_at(t, total) / base.lr)
    lrs, swa = [], None
    for t in range(total):
        if t == start:
            swa = torch.optim.swa_utils.SWALR(opt, swa_lr=swa_lr * base.lr, anneal_epochs=anneal,
                                              anneal_strategy=shape)
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        (swa or main).step()
    return np.array(lrs)


@pytest.mark.parametrize("total", [37, 1000])
@pytest.mark.parametrize("shape", ["cos", "linear"])
@pytest.mark.parametrize("anneal", [0.0, 0.001, 0.1, 0.5])
def test_swa_lr_matches_torch_swalr_step_for_step(total: int, shape: str, anneal: float) -> None:
    base = Schedule("cosine", lr=0.1, params={"min_ratio": 0.01}, warmup={"frac": 0.05})
    tail = {"kind": "swa", "start": 0.7, "swa_lr": 0.05, "anneal": anneal, "anneal_shape": shape}
    s = base.replace(tail=tail)
    start = s.tail_start_step(total)
    peer = _torch_swalr(base, total, start, 0.05, steps_of(anneal, total), shape)
    ours = s.curve(total)
    np.testing.assert_array_equal(ours[:start], base.curve(total)[:start])
    assert np.max(np.abs(ours - peer) / peer) <= 1e-9
    if anneal < 0.3:  # the anneal is over before the end, and the LR holds swa_lr
        assert ours[-1] == pytest.approx(0.1 * 0.05, rel=1e-12)
