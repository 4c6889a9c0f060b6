"""The Schedule spec: defaults, JSON round trip, closed form, warmup, validation messages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lrsearch import Schedule
from lrsearch.schedules import families


def test_defaults_are_valid_for_every_family() -> None:
    for name in families():
        s = Schedule(name)
        assert s.family == name and s.lr == 1e-3
        assert set(s.params) == set(s.spec_family.params)


def test_json_round_trip_is_exact() -> None:
    s = Schedule("multistep", lr=3.7e-3, params={"gamma": 0.25, "milestones": [0.3, 0.65]},
                 warmup={"frac": 0.03, "shape": "cosine", "start_ratio": 0.01})
    again = Schedule.from_json(json.dumps(s.to_dict()))
    assert again == s and hash(again) == hash(s)
    assert again.to_dict() == s.to_dict()
    assert s.to_dict()["params"]["milestones"] == [0.3, 0.65]


def test_partial_dict_fills_defaults_and_int_floats_coerce() -> None:
    s = Schedule.from_dict({"family": "plateau", "params": {"patience": 3.0}})
    assert s.params["patience"] == 3 and isinstance(s.params["patience"], int)
    assert s.params["factor"] == 0.1 and s.warmup["frac"] == 0.0


def test_params_are_read_only() -> None:
    s = Schedule("cosine")
    with pytest.raises(TypeError):
        s.params["k"] = 2.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        s.lr = 1.0  # type: ignore[misc]


def test_lr_at_equals_curve_and_holds_past_the_end() -> None:
    s = Schedule("cosine", lr=0.5, params={"min_ratio": 0.1}, warmup={"frac": 0.1})
    curve = s.curve(200)
    assert [s.lr_at(t, 200) for t in (0, 19, 20, 100, 199)] == [curve[t] for t in (0, 19, 20, 100, 199)]
    assert s.lr_at(200, 200) == s.lr_at(5000, 200) == curve[-1]


def test_time_is_a_fraction_of_the_run() -> None:
    s = Schedule("wsd", lr=1.0, params={"decay_frac": 0.2, "decay_shape": "linear"}, warmup={"frac": 0.1})
    short, long = s.curve(100), s.curve(1000)
    # the same fractions of the run give the same ratios of the peak
    np.testing.assert_allclose(short[[15, 50, 85]], long[[150, 500, 850]], rtol=1e-12)


def test_warmup_first_step_is_not_zero_and_reaches_the_peak() -> None:
    for shape, start in [("linear", 0.0), ("cosine", 0.0), ("exp", 0.01), ("constant", 0.1)]:
        s = Schedule("constant", lr=2.0, warmup={"frac": 0.1, "shape": shape, "start_ratio": start})
        c = s.curve(100)
        assert c[0] > 0 and c[10] == 2.0
        if shape != "constant":
            assert np.all(np.diff(c[:10]) > 0) and c[9] == 2.0
    zero = Schedule("constant", warmup={"frac": 0.1, "shape": "constant", "start_ratio": 0.0})
    assert zero.lr_at(0, 100) == 0.0  # zero only when asked for


def test_warmup_shapes_match_their_formulas() -> None:
    w, r = 10, 0.02
    v = (np.arange(w) + 1) / w
    expected = {
        "linear": r + (1 - r) * v,
        "cosine": r + (1 - r) * (1 - np.cos(np.pi * v)) / 2,
        "exp": r ** (1 - v),
        "constant": np.full(w, r),
    }
    for shape, want in expected.items():
        s = Schedule("constant", lr=1.0, warmup={"frac": 0.1, "shape": shape, "start_ratio": r})
        np.testing.assert_allclose(s.curve(100)[:w], want, rtol=1e-12)


def test_decay_clock_starts_after_warmup() -> None:
    s = Schedule("linear", lr=1.0, warmup={"frac": 0.2})
    plain = Schedule("linear", lr=1.0)
    np.testing.assert_allclose(s.curve(100)[20:], plain.curve(80), rtol=1e-12)


def test_warmup_scales_to_the_family_start() -> None:
    s = Schedule("piecewise", lr=1.0, params={"phases": [{"frac": 1.0, "anneal": "linear", "start": 0.5, "end": 0.1}]},
                 warmup={"frac": 0.1})
    c = s.curve(100)
    assert c[9] == pytest.approx(0.5) and c[10] == pytest.approx(0.5)


def test_tiny_runs_stay_finite() -> None:
    for name in families():
        for total in (1, 2, 3):
            fam_rises = Schedule(name).spec_family.rises
            s = Schedule(name, lr=1.0, warmup=None if fam_rises else {"frac": 0.5})
            c = s.curve(total)
            assert np.all(np.isfinite(c)) and np.all(c >= 0) and np.all(c <= 1.0)


BAD = [
    ({"family": "cosinee"}, "family must be one of"),
    ({"family": 3}, "family must be one of"),
    ({"family": "cosine", "lr": 0.0}, "lr must be > 0 but got 0.0"),
    ({"family": "cosine", "lr": -1e-3}, "lr must be > 0"),
    ({"family": "cosine", "lr": float("nan")}, "lr must be finite but got nan"),
    ({"family": "cosine", "lr": float("inf")}, "lr must be finite"),
    ({"family": "cosine", "lr": "0.1"}, "lr must be a real number but got '0.1'"),
    ({"family": "cosine", "lr": True}, "lr must be a real number"),
    ({"family": "step", "params": {"gama": 0.1}}, "unknown parameter 'gama' for family 'step'; expected gamma, step_frac. Did you mean 'gamma'?"),
    ({"family": "step", "params": {"gamma": -0.5}}, "params.gamma must be in (0, 1] but got -0.5"),
    ({"family": "step", "params": {"gamma": 1.5}}, "params.gamma must be in (0, 1]"),
    ({"family": "step", "params": {"step_frac": 0}}, "params.step_frac must be in (0, 1]"),
    ({"family": "multistep", "params": {"milestones": [0.6, 0.3]}}, "params.milestones must be a non-empty, strictly increasing"),
    ({"family": "multistep", "params": {"milestones": [0.3, 1.2]}}, "params.milestones[1] must be in (0, 1) but got 1.2"),
    ({"family": "multistep", "params": {"milestones": []}}, "params.milestones must be a non-empty"),
    ({"family": "multistep", "params": {"milestones": "0.5"}}, "params.milestones must be"),
    ({"family": "cosine", "warmup": {"frac": 1.0}}, "warmup.frac must be in [0, 1) but got 1.0"),
    ({"family": "cosine", "warmup": {"frac": -0.1}}, "warmup.frac must be in [0, 1)"),
    ({"family": "cosine", "warmup": {"shape": "sigmoid"}}, "warmup.shape must be one of 'linear', 'cosine', 'exp', 'constant', 'exp_tau' but got 'sigmoid'"),
    ({"family": "cosine", "warmup": {"shape": "exp"}}, "warmup.start_ratio must be > 0 when warmup.shape is 'exp'"),
    ({"family": "cosine", "warmup": {"length": 3}}, "warmup has an unknown parameter 'length'"),
    ({"family": "onecycle", "warmup": {"frac": 0.1}}, "warmup.frac must be 0 for family 'onecycle', which rises on its own"),
    ({"family": "cyclic", "warmup": {"frac": 0.1}}, "warmup.frac must be 0 for family 'cyclic'"),
    ({"family": "onecycle", "params": {"pct_start": 1.0}}, "params.pct_start must be in (0, 1) but got 1.0"),
    ({"family": "onecycle", "params": {"pct_start": 0.0}}, "params.pct_start must be in (0, 1)"),
    ({"family": "onecycle", "params": {"three_phase": True, "pct_start": 0.6}}, "params.pct_start must be < 0.5 when three_phase"),
    ({"family": "onecycle", "params": {"anneal": "cosine"}}, "params.anneal must be one of 'cos', 'linear'"),
    ({"family": "onecycle", "params": {"three_phase": 1}}, "params.three_phase must be one of False, True but got 1"),
    ({"family": "onecycle", "params": {"div_factor": 0.5}}, "params.div_factor must be in [1, inf)"),
    ({"family": "onecycle", "params": {"base_momentum": 0.99}}, "params.base_momentum must be <= params.max_momentum"),
    ({"family": "cyclic", "params": {"mode": "exp"}}, "params.mode must be one of 'triangular', 'triangular2', 'exp_range'"),
    ({"family": "cosine_restarts", "params": {"cycle_mult": 0.5}}, "params.cycle_mult must be in [1, inf)"),
    ({"family": "cosine", "params": {"min_ratio": 1.0}}, "params.min_ratio must be in [0, 1)"),
    ({"family": "cosine", "params": {"k": 0}}, "params.k must be in (0, inf)"),
    ({"family": "exponential", "params": {"min_ratio": 0.0}}, "params.min_ratio must be in (0, 1]"),
    ({"family": "wsd", "params": {"decay_shape": "sqrt"}}, "params.decay_shape must be one of 'linear', 'cosine', '1-sqrt'"),
    ({"family": "plateau", "params": {"patience": -1}}, "params.patience must be >= 0 but got -1"),
    ({"family": "plateau", "params": {"patience": 2.5}}, "params.patience must be an integer but got 2.5"),
    ({"family": "plateau", "params": {"factor": 1.0}}, "params.factor must be in (0, 1)"),
    ({"family": "piecewise", "params": {"phases": [{"frac": 0.5, "anneal": "cos", "start": 1, "end": 0}]}}, "fracs summing to 0.5"),
    ({"family": "piecewise", "params": {"phases": [{"frac": 1, "anneal": "exp", "start": 1, "end": 0}]}}, "params.phases[0].start and .end must be > 0 for anneal 'exp'"),
    ({"family": "piecewise", "params": {"phases": [{"frac": 1, "anneal": "cos", "start": 2, "end": 0}]}}, "params.phases[0].start must be in [0, 1] but got 2.0"),
    ({"family": "piecewise", "params": {"phases": [{"frac": 1, "anneal": "cos", "start": 1}]}}, "params.phases[0] must have the key 'end'"),
    ({"family": "piecewise", "params": {"phases": []}}, "params.phases must be a non-empty list"),
    ({"family": "cosine", "params": [1, 2]}, "params must be a dict but got [1, 2]"),
]


@pytest.mark.parametrize("spec,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_specs_raise_value_error_naming_rule_and_value(spec: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Schedule.from_dict(spec)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "data,message",
    [
        ([1, 2], "a schedule spec must be a dict"),
        ({"lr": 0.1}, "must have the key 'family'"),
        ({"family": "cosine", "extra": 1}, "unknown key 'extra'"),
        ({"family": "cosine", "version": 2}, "version must be 1 but got 2"),
    ],
)
def test_bad_top_level_dicts(data, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule.from_dict(data)


def test_bad_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="valid JSON"):
        Schedule.from_json("{not json")


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda s: s.lr_at(0, 0), "total_steps must be >= 1 but got 0"),
        (lambda s: s.lr_at(-1, 10), "step must be >= 0 but got -1"),
        (lambda s: s.lr_at(1.5, 10), "step must be an integer but got 1.5"),
        (lambda s: s.curve(True), "total_steps must be an integer but got True"),
        (lambda s: s.multipliers([0.5], 10), "steps must be whole numbers"),
        (lambda s: s.multipliers([-2], 10), "steps must be >= 0"),
    ],
)
def test_bad_steps(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(Schedule("cosine"))


def test_replace_and_describe() -> None:
    s = Schedule("cosine", lr=0.1).replace(lr=0.2, warmup={"frac": 0.05})
    assert s.lr == 0.2 and s.warmup["frac"] == 0.05
    assert s.describe() == "cosine(lr=0.2) + 5.0% linear warmup"
    assert "min_ratio=0.1" in s.replace(params={"min_ratio": 0.1}).describe()
    assert math.isclose(s.lr_at(0, 100), 0.2 * 0.2)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: Schedule.from_json('{"family": "cosine", "lr": ' + "9" * 400 + "}"), "lr must be finite but got an integer of 400 digits"),
        (lambda: Schedule.from_dict({"family": "cosine", "lr": 10**400}), "lr must be finite but got an integer of 401 digits"),
        (lambda: Schedule.from_dict({"family": "cosine", "lr": 10**5000}), "lr must be finite but got an integer of 5001 digits"),
        (lambda: Schedule.from_json("[" * 100_000 + "]" * 100_000), "a schedule spec must be valid JSON: nested too deeply"),
        (lambda: Schedule.from_json('{"family": "cosine", "lr": ' + "9" * 5000 + "}"), "a schedule spec must be valid JSON"),
        (lambda: Schedule("cosine").curve(10**400), "total_steps must be <= 2**53"),
        (lambda: Schedule("cosine").lr_at(5, 10**400), "total_steps must be <= 2**53"),
        (lambda: Schedule("onecycle").momentum_at(5, 10**400), "total_steps must be <= 2**53"),
        (lambda: Schedule("cosine").warmup_steps(10**400), "total_steps must be <= 2**53"),
        (lambda: Schedule("cosine").multipliers([10**400], 10), "steps must be whole numbers"),
        (lambda: Schedule("cosine").lr_at(10**5000, -1), "total_steps must be >= 1"),
        (lambda: Schedule("step", params={"step_frac": "x" * 10**6}), "params.step_frac must be a real number but got 'xxxx"),
    ],
    ids=["json-int", "dict-int", "dict-int-5000", "deep-json", "json-int-5000", "curve", "lr_at", "momentum_at",
         "warmup_steps", "multipliers", "huge-step-bad-total", "long-string"],
)
def test_huge_or_deep_input_is_a_value_error(call, message: str) -> None:
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value)
    assert len(str(info.value)) < 400  # the value is shown, not dumped


def test_steps_past_the_end_hold_the_last_value_however_large() -> None:
    s = Schedule("onecycle", lr=0.1)
    assert s.lr_at(10**400, 100) == s.lr_at(99, 100)
    assert s.momentum_at(10**400, 100) == s.momentum_at(99, 100)
    assert s.lr_at(2**53, 2**53) == s.lr_at(2**53 - 1, 2**53)


def test_curve_has_a_documented_length_limit() -> None:
    from lrsearch.schedules._grid import MAX_CURVE_STEPS

    assert MAX_CURVE_STEPS == 10**7
    with pytest.raises(ValueError, match=r"curve\(total_steps\) is limited to 10\*\*7 steps .* lr_at"):
        Schedule("cosine").curve(10**8)
    with pytest.raises(ValueError, match=r"limited to 10\*\*7 steps"):
        Schedule("onecycle").momentum_curve(10**8)


def test_multipliers_of_long_step_arrays_match_lr_at() -> None:
    s = Schedule("wsd", lr=1.0, warmup={"frac": 0.01})
    total = 300_001
    steps = np.arange(0, total, 7)
    got = s.multipliers(steps, total)
    for i in (0, 1, 500, 20_000, len(steps) - 1):
        assert got[i] == s.lr_at(int(steps[i]), total)
    assert s.multipliers(np.array([[3, 5], [7, 9]]), 10).shape == (2, 2)


def _nested_product(depth: int, width: int = 1) -> dict:
    spec: dict = {"family": "cosine"}
    for _ in range(depth):
        spec = {"family": "product", "params": {"factors": [spec] + [{"family": "linear"}] * (width - 1)}}
    return spec


@pytest.mark.parametrize("depth", [9, 100, 5000])
def test_a_product_nested_past_the_bound_is_a_value_error_not_a_recursion_error(depth: int) -> None:
    with pytest.raises(ValueError, match="params must nest at most (8 schedules inside one another|64 dicts)"):
        Schedule(lr=0.1, **_nested_product(depth))


def test_a_product_at_the_bound_is_accepted_and_evaluates() -> None:
    schedule = Schedule(lr=0.1, **_nested_product(8, width=6))  # 8 deep, 48 schedules
    assert 0 < schedule.lr_at(10, 1000) <= 0.1
    assert Schedule.from_json(schedule.to_json()) == schedule


def test_a_spec_that_contains_itself_is_a_value_error() -> None:
    spec: dict = {"family": "product", "params": {"factors": [None]}}
    spec["params"]["factors"][0] = spec
    with pytest.raises(ValueError, match="params must be plain data but it contains itself"):
        Schedule(lr=0.1, **spec)
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        Schedule("cosine", lr=0.1, noise={"range": loop})


def test_a_spec_with_too_many_schedules_or_values_is_a_value_error() -> None:
    from lrsearch.schedules._specdata import MAX_SPEC_ITEMS
    from lrsearch.schedules._specdata import MAX_SPEC_SCHEDULES

    Schedule("product", lr=0.1, params={"factors": [{"family": "cosine"}] * MAX_SPEC_SCHEDULES})
    with pytest.raises(ValueError, match=f"at most {MAX_SPEC_SCHEDULES} nested schedules"):
        Schedule("product", lr=0.1, params={"factors": [{"family": "cosine"}] * (MAX_SPEC_SCHEDULES + 1)})
    with pytest.raises(ValueError, match=f"at most {MAX_SPEC_ITEMS} list elements"):
        Schedule("multistep", lr=0.1, params={"milestones": [0.5] * (MAX_SPEC_ITEMS + 1)})
