"""The peer arms of studies/peer_arms.py (NePS PriorBand, Ray Tune PBT) keep the arms' contract on a
tiny budget: skipped unless the ``peers`` extra is installed (``make peers VENV=.venv-peers``)."""

import itertools
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("neps")
pytest.importorskip("ray.tune")

STUDIES = Path(__file__).resolve().parents[1] / "studies"


@pytest.fixture(scope="module")
def setup():
    sys.path.insert(0, str(STUDIES))
    import harness
    import search_arms

    harness.quiet()
    epochs, opt, _ = search_arms.SETUP["regression-mlp"]
    data = harness.load("regression-mlp")
    task = harness.task_of(data, epochs, opt)
    return task, data, harness.range_test(task, 0)


def check(out: dict, budget: float, task, data) -> None:
    import peer_arms

    trace = out["trace"]
    assert trace and out["spent"] <= budget + 1e-9
    assert all(s <= budget + 1e-9 for s, _ in trace)
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(trace))  # spent never decreases
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(trace))  # best never worsens
    assert math.isclose(trace[-1][0], out["spent"])
    again = peer_arms.retrain(task, out["best"], seed=1, data=data)
    assert math.isfinite(again["val"]) and math.isfinite(again["test_loss"])


@pytest.mark.filterwarnings("ignore")
def test_priorband_keeps_the_budget(setup):
    import peer_arms

    task, data, rt = setup
    budget = rt.iterations / task.full_steps() + 1.0  # the range test, then one full run's worth of steps
    out = peer_arms.run_priorband(task, budget, seed=0, rt=rt)
    assert out["trials"] >= 9  # the first bracket's lowest rung (1/9 of a run each)
    check(out, budget, task, data)


@pytest.mark.filterwarnings("ignore")
def test_pbt_keeps_the_budget(setup):
    import peer_pbt

    task, data, rt = setup
    out = peer_pbt.run_pbt(task, 2.0, seed=0, rt=rt)
    assert out["population"] == 2 and out["spent"] == 2.0
    assert out["data_orders"] == [2] * len(out["data_orders"])  # each member its own data order
    fracs = [f for f, _ in out["best"]["trajectory"]]
    assert fracs[0] == 0.0 and fracs == sorted(fracs) and fracs[-1] < 1.0
    check(out, 2.0, task, data)
