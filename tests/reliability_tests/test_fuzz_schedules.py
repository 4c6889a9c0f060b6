"""Schedules and ScheduleLR, fuzzed: only ValueError escapes, every LR is finite and >= 0, and a
refused ``load_state_dict`` leaves the scheduler exactly as it was."""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from lrsearch import Schedule
from lrsearch.schedules import FAMILIES
from lrsearch.schedules import families
from lrsearch.schedules._params import Choice
from lrsearch.schedules._params import Float
from lrsearch.schedules._params import Fractions
from lrsearch.schedules._params import Int
from lrsearch.schedules._piecewise import PHASE_ANNEALS


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HUGE_INTS = st.sampled_from([10**400, -(10**400), 2**53, 2**53 + 1, 2**63, 2**64, 10**4000])  # repr refuses > 4300 digits
EXTREME_FLOATS = st.sampled_from([1.7976931348623157e308, 1e300, 1e-300, 5e-324, 0.0, -0.0, 1.0, 1 - 1e-16,
                                  1 + 1e-15, math.nan, math.inf, -math.inf])
wild = st.one_of(st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(), EXTREME_FLOATS,
                 st.text(max_size=8), st.lists(st.floats(), max_size=3))
PARAM_NAMES = sorted({name for fam in FAMILIES.values() for name in fam.params})


def _float_in(spec: Float) -> st.SearchStrategy[float]:
    low = spec.low if spec.low is not None else -1e308
    high = spec.high if spec.high is not None else 1.7976931348623157e308
    edges = [v for v in (low, high, 1e-300, 5e-324, 1e300, 1.7976931348623157e308, 1 - 1e-16)
             if (low < v or (v == low and not spec.low_open)) and (v < high or (v == high and not spec.high_open))]
    return st.one_of(st.floats(low, high, exclude_min=spec.low_open, exclude_max=spec.high_open),
                     st.sampled_from(edges))


@st.composite
def _phases(draw) -> list[dict]:
    weights = draw(st.lists(st.floats(1e-6, 1.0), min_size=1, max_size=12))
    fracs = [w / math.fsum(weights) for w in weights]
    fracs[-1] = 1.0 - math.fsum(fracs[:-1])
    if fracs[-1] <= 0:
        fracs = [1.0]
    ratio = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1.0, 5e-324]))
    return [{"frac": f, "anneal": draw(st.sampled_from(PHASE_ANNEALS)), "start": draw(ratio), "end": draw(ratio),
             "power": draw(st.one_of(st.floats(1e-3, 1e3), st.sampled_from([5e-324, 1e300])))} for f in fracs]


def _value_for(spec) -> st.SearchStrategy:
    """Mostly valid values, edges included, so the math (not only the checks) is exercised."""
    if isinstance(spec, Float):
        return _float_in(spec)
    if isinstance(spec, Int):
        return st.one_of(st.integers(spec.low, 50), st.integers(spec.low, 10**18))
    if isinstance(spec, Choice):
        return st.sampled_from(spec.choices)
    if isinstance(spec, Fractions):
        return st.lists(st.floats(1e-9, 1 - 1e-9), min_size=1, max_size=4, unique=True).map(sorted)
    return _phases()


@st.composite
def specs(draw) -> dict:
    """A schedule spec: a family, valid params at their edges, an lr and a warmup; one in four has a
    junk value somewhere."""
    family = draw(st.sampled_from(families()))
    params = {k: draw(_value_for(s)) for k, s in FAMILIES[family].params.items() if draw(st.booleans())}
    lr = draw(st.one_of(st.floats(5e-324, 1.7976931348623157e308), st.sampled_from([1e-3, 1.0, 1e308])))
    frac = st.just(0.0) if FAMILIES[family].rises else st.floats(0.0, 1.0, exclude_max=True)
    warmup = draw(st.fixed_dictionaries({}, optional={
        "frac": frac, "shape": st.sampled_from(["linear", "cosine", "constant"]),
        "start_ratio": st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 5e-324, 1.0]))}))
    spec = {"family": family, "lr": lr, "params": params, "warmup": warmup}
    junk = draw(st.sampled_from(["none", "none", "none", "none", "none", "lr", "param", "warmup"]))
    if junk == "lr":
        spec["lr"] = draw(st.one_of(wild, EXTREME_FLOATS))
    elif junk == "param":
        params[draw(st.sampled_from(PARAM_NAMES))] = draw(wild)
    elif junk == "warmup":
        warmup[draw(st.sampled_from(["frac", "shape", "start_ratio", "length"]))] = draw(wild)
    return spec


totals = st.one_of(st.integers(1, 3000), st.sampled_from([2**53, 2**53 + 1, 10**400, 0, -1]))
steps = st.one_of(st.integers(0, 3000), st.integers(0, 2**70), HUGE_INTS)


def _schedule_or_none(spec: dict) -> Schedule | None:
    try:
        return Schedule.from_dict(spec)
    except ValueError as err:
        assert str(err) and len(str(err)) < 2000
        return None


@FUZZ
@given(spec=specs(), total=totals, step=steps)
def test_random_specs_give_a_value_error_or_finite_lrs(spec: dict, total: int, step: int) -> None:
    s = _schedule_or_none(spec)
    if s is None:
        return
    assert Schedule.from_json(s.to_json()) == s
    try:
        value = s.lr_at(step, total)
    except ValueError:
        assert not (1 <= total <= 2**53 and step >= 0)
        return
    assert math.isfinite(value) and 0.0 <= value <= s.lr
    curve = s.curve(min(total, 3000))
    assert np.all(np.isfinite(curve)) and np.all(curve >= 0) and np.all(curve <= s.lr)
    momentum = s.momentum_at(step, total)
    assert momentum is None or 0.0 <= momentum < 1.0


def _nested(depth: int, kind: str) -> str:
    opens, closes = {"list": ("[", "]"), "dict": ('{"a":', "}"), "params": ('{"params":', "}")}[kind]
    return opens * depth + "1" + closes * depth


@settings(max_examples=25, deadline=None)
@given(depth=st.one_of(st.integers(1, 2000), st.sampled_from([10**5, 3 * 10**5])),
       kind=st.sampled_from(["list", "dict", "params"]), digits=st.integers(310, 6000))
def test_nested_json_and_long_integers_are_value_errors(depth: int, kind: str, digits: int) -> None:
    for text in (_nested(depth, kind), '{"family": "cosine", "lr": %s}' % ("7" * digits),
                 '{"family": "cosine", "params": {"k": %s}}' % ("-" + "3" * digits)):
        try:
            Schedule.from_json(text)
        except ValueError as err:
            assert len(str(err)) < 2000
        else:  # pragma: no cover - none of these is a valid spec
            raise AssertionError(text[:80])


@FUZZ
@given(text=st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(),
                                   st.text(max_size=6), st.sampled_from(families())),
                         lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                 st.dictionaries(st.sampled_from(
                                                     ["family", "lr", "params", "warmup", "version",
                                                      "phases", "frac", *PARAM_NAMES]), inner, max_size=4)),
                         max_leaves=20))
def test_random_json_documents(text) -> None:
    try:
        s = Schedule.from_json(json.dumps(text))
    except ValueError:
        return
    assert np.all(np.isfinite(s.curve(50)))


def _optimizer(ratio: float) -> torch.optim.Optimizer:
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": ratio}], lr=1.0, momentum=0.9)


def _lrs(opt: torch.optim.Optimizer) -> list[float]:
    return [float(g["lr"]) for g in opt.param_groups]


RATIOS = st.one_of(st.floats(1e-300, 1e300), st.sampled_from([1.0, 10.0, 1e308, 5e-324]))


@FUZZ
@given(spec=specs(), ratio=RATIOS, total=st.integers(1, 400), n=st.integers(0, 40))
def test_scheduler_lrs_are_finite_and_non_negative(spec: dict, ratio: float, total: int, n: int) -> None:
    s = _schedule_or_none(spec)
    if s is None:
        return
    opt = _optimizer(ratio)
    try:
        sched = s.build(opt, total)
    except ValueError:
        return
    for _ in range(n):
        lrs = _lrs(opt)
        assert all(math.isfinite(v) and v >= 0 for v in lrs), lrs
        if sched.accepts_metric:
            sched.step(float(n))
        sched.step()
    assert all(math.isfinite(v) and v >= 0 for v in _lrs(opt))


STATE_KEYS = ["schedule", "total_steps", "step", "group_scales", "plateau_scale", "plateau"]


@FUZZ
@given(changes=st.dictionaries(st.sampled_from([*STATE_KEYS, "extra"]), st.one_of(wild, specs(), HUGE_INTS),
                               max_size=3),
       drop=st.lists(st.sampled_from(STATE_KEYS), max_size=2), scales=st.lists(RATIOS, min_size=2, max_size=2),
       plateau=st.dictionaries(st.sampled_from(["mode", "patience", "best", "num_bad_evals", "cooldown"]), wild,
                               max_size=2))
def test_random_states_are_refused_without_a_trace(changes: dict, drop: list, scales: list, plateau: dict) -> None:
    def make():
        opt = _optimizer(0.1)
        sched = Schedule("step", lr=0.3, params={"step_frac": 0.2}).build(opt, 20)
        sched.step()
        return opt, sched

    _, source = make()
    source.load_state_dict({**source.state_dict(), "schedule": Schedule("plateau", lr=0.2).to_dict()})
    source.step(1.0)
    state = {**source.state_dict(), "group_scales": scales, **changes}
    state["plateau"] = {**state["plateau"], **plateau} if isinstance(state["plateau"], dict) else state["plateau"]
    for key in drop:
        state.pop(key, None)
    opt, sched = make()
    twin_opt, twin = make()
    before = sched.state_dict()
    try:
        sched.load_state_dict(state)
    except ValueError as err:
        assert str(err) and len(str(err)) < 2000
        assert sched.state_dict() == before and _lrs(opt) == _lrs(twin_opt)
        for _ in range(25):
            sched.step()
            twin.step()
            assert _lrs(opt) == _lrs(twin_opt)
        return
    assert isinstance(sched.schedule, Schedule)
    for _ in range(25):
        assert all(math.isfinite(v) and v >= 0 for v in _lrs(opt))
        sched.step()
