"""The spec keys around a family: warmup.overlay, product, noise, floor, stairs, groups.

Each is plain data, round-trips through to_dict/from_dict/JSON, keeps ``Schedule`` hashable and
appears in ``to_dict`` only when set, so every older spec keeps its JSON (and its hash).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from lrsearch.schedules import Schedule


OLD_SPEC = ('{"family": "cosine", "lr": 0.003, "params": {"cycles": 0.5, "k": 1.0, "min_ratio": 0.01}, '
            '"version": 1, "warmup": {"frac": 0.05, "shape": "linear", "start_ratio": 0.0}}')

NEW = {
    "overlay": Schedule("cosine", 0.1, warmup={"frac": 0.1, "shape": "exp_tau", "overlay": True}),
    "product": Schedule("product", 0.1, {"factors": [{"family": "step", "params": {"gamma": 0.5}},
                                                      {"family": "cosine", "warmup": {"frac": 0.1}}]}),
    "noise": Schedule("cosine", 0.1, noise={"range": [0.25, None], "type": "uniform"}),
    "floor": Schedule("cosine", 0.1, floor=0.05),
    "stairs": Schedule("cosine", 0.1, stairs=12),
    "groups": Schedule("cosine", 0.1, groups=[None, {"family": "linear", "floor": 0.1}]),
    "all": Schedule("wsd", 0.1, warmup={"frac": 0.05, "overlay": True}, noise={"range": [0.1, 0.5]},
                    floor=0.01, stairs=50, groups={"2": {"family": "constant", "stairs": 5}}),
}


def test_older_specs_keep_their_json_and_hash() -> None:
    s = Schedule("cosine", 0.003, {"min_ratio": 0.01}, warmup={"frac": 0.05})
    assert s.to_json() == OLD_SPEC
    assert Schedule.from_json(OLD_SPEC) == s and hash(Schedule.from_json(OLD_SPEC)) == hash(s)
    assert s.noise is None and s.floor is None and s.stairs is None and s.groups is None
    assert s.warmup["overlay"] is False


@pytest.mark.parametrize("name", list(NEW))
def test_new_keys_round_trip_and_hash(name: str) -> None:
    s = NEW[name]
    spec = s.to_dict()
    assert Schedule.from_dict(spec) == s
    assert Schedule.from_json(json.dumps(spec)) == s
    assert Schedule.from_dict(json.loads(s.to_json())).to_json() == s.to_json()
    assert hash(Schedule.from_json(s.to_json())) == hash(s) and {s: 1}[Schedule.from_dict(spec)] == 1
    assert s.replace(lr=0.2).replace(lr=0.1) == s
    c = s.curve(300)
    assert np.all(np.isfinite(c)) and np.all(c >= 0)


def test_set_keys_only() -> None:
    assert set(NEW["noise"].to_dict()) == {"version", "family", "lr", "params", "warmup", "noise"}
    assert NEW["noise"].to_dict()["noise"] == {"range": [0.25, 1.0], "pct": 0.67, "std": 1.0, "seed": 42,
                                               "type": "uniform"}
    assert NEW["overlay"].to_dict()["warmup"]["overlay"] is True
    assert NEW["stairs"].to_dict()["stairs"] == 12 and NEW["floor"].to_dict()["floor"] == 0.05


def test_groups_list_and_mapping_are_one_spec() -> None:
    by_list = Schedule("cosine", groups=[None, {"family": "linear"}])
    by_map = Schedule("cosine", groups={1: {"family": "linear"}})
    assert by_list == by_map == Schedule("cosine", groups={"1": {"family": "linear"}})
    assert list(by_list.to_dict()["groups"]) == ["1"]
    assert Schedule("cosine", groups=[]) == Schedule("cosine")
    assert by_list.for_group(0) == Schedule("cosine") and by_list.for_group(7) == Schedule("cosine")
    assert by_list.for_group(1) == Schedule("linear")
    tailed = Schedule("cosine", tail={"kind": "ema", "start": 0.8}, groups={1: {"family": "linear"}})
    assert tailed.for_group(1).tail == tailed.tail  # the averaging tail is the whole model's


BAD = [
    ({"noise": {"range": [0.5, 0.2]}}, "noise.range must be a list [a, b] of fractions of the run with 0 <= a < b <= 1"),
    ({"noise": {"pct": 1.5}}, "noise.pct must be in (0, 1] but got 1.5"),
    ({"noise": {"type": "pink"}}, "noise.type must be one of 'normal', 'uniform' but got 'pink'"),
    ({"noise": {"pct": 0.001, "std": 1.0}}, "noise.pct must be >= 0.01 * noise.std for normal noise"),
    ({"noise": {"sed": 1}}, "noise has an unknown parameter 'sed'; expected range, pct, std, seed, type. Did you mean 'seed'?"),
    ({"noise": {"seed": 2**70}}, "noise.seed must be <= 2**62"),
    ({"floor": 1.0}, "floor must be None or a ratio of the peak in [0, 1) but got 1.0"),
    ({"floor": "high"}, "floor must be a real number but got 'high'"),
    ({"stairs": 0}, "stairs must be >= 1 but got 0"),
    ({"stairs": 2.5}, "stairs must be an integer but got 2.5"),
    ({"groups": 3}, "groups must be a list (by param-group index) or a dict {index: spec} but got 3"),
    ({"groups": {"x": {"family": "linear"}}}, "groups key must be an integer but got 'x'"),
    ({"groups": [None, {"family": "linear", "params": {"min_ratio": 2}}]},
     "groups[1].params.min_ratio must be in [0, 1) but got 2.0"),
    ({"groups": [{"family": "linear", "lr": 1.0}]}, "groups[0] has an unknown key 'lr'"),
    ({"groups": [{"family": "linear", "groups": []}]}, "groups[0] has an unknown key 'groups'"),
    ({"groups": [{"params": {}}]}, "groups[0] must have the key 'family'"),
    ({"groups": [{"family": "plateau"}]}, "groups[0].family must not be 'plateau'"),
    ({"warmup": {"frac": 0.1, "shape": "exp_tau"}}, "warmup.shape 'exp_tau' never reaches the peak, so it needs warmup.overlay true"),
    ({"warmup": {"overlay": 1}}, "warmup.overlay must be one of False, True but got 1"),
]


@pytest.mark.parametrize("extra,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_values_name_the_key_the_rule_and_the_value(extra: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        Schedule.from_dict({"family": "cosine", **extra})
    assert message in str(info.value)


def test_describe_names_each_key() -> None:
    assert NEW["overlay"].describe() == "cosine(lr=0.1) + 10.0% exp_tau warmup overlay"
    assert NEW["product"].describe() == "product(lr=0.1, step(gamma=0.5) × (cosine + 10.0% linear warmup))"
    assert NEW["noise"].describe() == "cosine(lr=0.1) + uniform LR noise ±0.67 over 25%-100% (seed 42)"
    assert NEW["floor"].describe() == "cosine(lr=0.1) + floor 0.05"
    assert NEW["stairs"].describe() == "cosine(lr=0.1) + 12 stairs"
    assert NEW["groups"].describe() == "cosine(lr=0.1) + groups {1: linear + floor 0.1}"


def test_stairs_floor_and_noise_compose_in_order() -> None:
    # stairs pick the 4-step run's values; the floor lifts them after warmup; noise multiplies last
    s = Schedule("linear", 1.0, stairs=4, floor=0.6)
    np.testing.assert_allclose(s.curve(8), [1, 1, 0.75, 0.75, 0.6, 0.6, 0.6, 0.6])
    noisy = s.replace(noise={"range": [0.5], "type": "uniform", "pct": 0.5}).curve(8)
    assert np.all(noisy[:4] == s.curve(8)[:4]) and np.all(noisy[4:] != 0.6)
    assert noisy[4] == noisy[5] and noisy[6] == noisy[7]  # one draw per stair


def test_noise_loads_torch_only_when_evaluated() -> None:
    code = ("import sys; from lrsearch.schedules import Schedule; "
            "s = Schedule('cosine', noise={'range': [0.5]}); s.to_json(); s.describe(); "
            "assert 'torch' not in sys.modules; s.curve(10); assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_lists_the_spec_keys_and_describes_a_spec(tmp_path, capsys) -> None:
    from lrsearch.cli import main

    assert main(["families"]) == 0
    listing = capsys.readouterr().out
    for key in ("noise", "floor", "stairs", "groups", "exp_tau"):
        assert key in listing.split("spec keys beside family")[1]
    assert "k=1.0" in listing.split("\npoly")[1].split("\n")[1]  # shown though to_dict leaves it out
    spec = tmp_path / "s.json"
    spec.write_text(NEW["all"].to_json())
    assert main(["schedule", str(spec), "--steps", "100", "--out", str(tmp_path / "s.png")]) == 0
    out = capsys.readouterr().out
    assert NEW["all"].describe() in out and (tmp_path / "s.png").is_file()
