"""SearchSpace / suggest_schedule: define-by-run order, names, conditional params, seeding dicts."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

import lrsearch
from lrsearch import RangeTestResult
from lrsearch import Schedule
from lrsearch import SearchSpace
from lrsearch import suggest_schedule
from lrsearch.schedules import FAMILIES
from lrsearch.search import LRPrior
from lrsearch.search import PriorSampler
from lrsearch.search import TAIL_ABOVE
from lrsearch.search import TAIL_BELOW
from lrsearch.search import widened


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _sample(space: SearchSpace, n: int = 60, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(lambda t: suggest_schedule(t, space).lr, n_trials=n)
    return study.trials


def test_family_first_then_lr_then_only_that_familys_params() -> None:
    for t in _sample(SearchSpace("all"), 120):
        family = t.params["family"]
        names = list(t.params)
        assert names[:2] == ["family", "lr"]
        own = [n for n in names if "." in n]
        assert all(n.startswith(family + ".") for n in own)
        schedule = Schedule.from_dict(t.user_attrs["schedule"])  # every trial rebuilds
        assert schedule.family == family and schedule.lr == t.params["lr"]
        if FAMILIES[family].rises:
            assert "warmup" not in t.params
        for name, value in t.params.items():
            if name.endswith(("_count", ".patience", ".cooldown")):
                assert isinstance(value, int)


def test_milestones_are_sorted_fractions_and_gamma_follows_mode() -> None:
    for t in _sample(SearchSpace(families=["multistep", "cyclic"]), 80):
        s = Schedule.from_dict(t.user_attrs["schedule"])
        if s.family == "multistep":
            ms = s.params["milestones"]
            assert list(ms) == sorted(ms) and 1 <= len(ms) <= 3 and all(0.3 <= m <= 0.95 for m in ms)
        else:
            assert ("cyclic.gamma" in t.params) == (s.params["mode"] == "exp_range")


def test_zero_switch_and_plateau_mode() -> None:
    trials = _sample(SearchSpace(families=["cosine", "plateau"], mode="max"), 60)
    zeros = [t for t in trials if t.params.get("cosine.min_ratio_is_zero")]
    assert zeros and all(Schedule.from_dict(t.user_attrs["schedule"]).params["min_ratio"] == 0 for t in zeros)
    plateaus = [Schedule.from_dict(t.user_attrs["schedule"]) for t in trials if t.params["family"] == "plateau"]
    assert plateaus and all(s.params["mode"] == "max" for s in plateaus)


@pytest.mark.parametrize("family", SearchSpace("all").families)
def test_seed_params_rebuild_the_family_at_its_defaults(family: str) -> None:
    space = SearchSpace("all", lr=(1e-3, 1.0))
    schedule = suggest_schedule(optuna.trial.FixedTrial(space.seed_params(family, 0.05)), space)
    default = Schedule(family, lr=0.05, warmup=None if FAMILIES[family].rises else {"frac": 0.05})
    assert schedule == default.replace(params={**default.params, **({"mode": "min"} if family == "plateau" else {})})


def test_lr_range_from_a_range_test_and_clamped_seeds() -> None:
    result = RangeTestResult.from_arrays([1e-4, 1e-3, 1e-2, 1e-1, 1.0] * 1, [2.0, 1.5, 1.0, 0.9, 5.0],
                                         start_lr=1e-4, end_lr=1.0, num_iter=5)
    space = SearchSpace(lr=result)
    low, high = result.search_range()  # the core, widened by the tails within the sweep (1e-4 .. 1)
    assert space.lr == pytest.approx((max(low / 10**TAIL_BELOW, 1e-4), min(high * 10**TAIL_ABOVE, 1.0)))
    assert space.range_test is result and space.prior == LRPrior.around(low, high)
    assert space.seed_params("cosine", 100.0)["lr"] == space.lr[1]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"families": []}, "families must name at least one"),
        ({"families": ["cosinus"]}, "family must be one of"),
        ({"families": ["piecewise"]}, "families must be searchable but 'piecewise'"),
        ({"families": ["cosine", "cosine"]}, "families must not repeat"),
        ({"lr": (1.0, 0.1)}, "lr must satisfy 0 < low < high but got (1.0, 0.1)"),
        ({"lr": 0.1}, "lr must be a (low, high) pair or a RangeTestResult"),
        ({"mode": "up"}, "mode must be one of 'min', 'max'"),
    ],
)
def test_bad_spaces(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        SearchSpace(**kwargs)
    assert message in str(info.value)


def test_public_names() -> None:
    assert lrsearch.suggest_schedule is suggest_schedule and lrsearch.SearchSpace is SearchSpace


def test_opt_in_families_are_searched_only_when_named() -> None:
    from lrsearch.search._space import OPT_IN

    assert not set(OPT_IN) & set(SearchSpace().families)
    assert not set(OPT_IN) & set(SearchSpace("all").families)
    assert list(SearchSpace(["tanh", "cosine"]).families) == ["tanh", "cosine"]


def test_the_default_space_is_the_compact_one_and_all_reaches_every_searchable_family() -> None:
    from lrsearch.search import DEFAULT_FAMILIES
    from lrsearch.search._space import OPT_IN

    assert SearchSpace().families == DEFAULT_FAMILIES == ("cosine", "linear", "wsd", "onecycle")
    every = SearchSpace("all").families
    assert set(DEFAULT_FAMILIES) < set(every) and len(every) == len(FAMILIES) - 2 - len(OPT_IN)  # nor piecewise, product
    assert {t.params["family"] for t in _sample(SearchSpace(), 60)} == set(DEFAULT_FAMILIES)
    with pytest.raises(ValueError, match="families must be a list of names, None or 'all' but got 'cosine'"):
        SearchSpace("cosine")


def test_tail_is_sampled_only_when_enabled() -> None:
    for t in _sample(SearchSpace(), 40):
        assert "tail" not in t.params and "tail" not in t.user_attrs["schedule"]
    assert "tail" not in SearchSpace().describe() and SearchSpace().tail == ()
    trials = _sample(SearchSpace(families=["cosine", "wsd"], tail=True), 150)
    kinds = {t.params["tail"] for t in trials}
    assert kinds == {"none", "swa", "ema"}
    for t in trials:
        s = Schedule.from_dict(t.user_attrs["schedule"])
        names = list(t.params)
        tail_names = [n for n in names if n.startswith("tail")]
        assert names[-len(tail_names):] == tail_names and tail_names[0] == "tail"  # the tail comes last
        if t.params["tail"] == "none":
            assert s.tail is None and tail_names == ["tail"]
            continue
        assert s.tail["kind"] == t.params["tail"] and 0.5 <= s.tail["start"] <= 0.9
        assert s.tail["every"] == 0.002
        assert ("tail.one_minus_decay" in t.params) == (s.tail["kind"] == "ema")
        if s.tail["kind"] == "ema":
            assert 0.8 <= s.tail["decay"] <= 0.998
        assert (s.tail["swa_lr"] is not None) == t.params["tail.swa_lr_on"] == ("tail.anneal" in t.params)


def test_tail_kinds_describe_seed_and_survive_replace() -> None:
    space = SearchSpace(families=["cosine"], tail=("swa", "ema"))
    assert space.describe()["tail"] == ["swa", "ema"] and space.replace(mode="max").tail == ("swa", "ema")
    assert space.with_lr((1e-3, 1e-2)).tail == ("swa", "ema")
    seed = space.seed_params("cosine", 1e-3)
    assert seed["tail"] == "swa" and seed["tail.start"] == 0.75
    study = optuna.create_study()
    study.enqueue_trial(seed)
    study.optimize(lambda t: suggest_schedule(t, space).lr, n_trials=1)
    assert Schedule.from_dict(study.trials[0].user_attrs["schedule"]).tail["start"] == 0.75
    assert SearchSpace(tail=True).seed_params("cosine", 1e-3)["tail"] == "none"
    assert "tail" not in SearchSpace().seed_params("cosine", 1e-3)


@pytest.mark.parametrize("tail,message", [
    ("swa", "tail must be a bool or a collection"),
    ((), "tail must name at least one kind"),
    (("swa", "swa"), "none repeated"),
    (("swa", "avg"), "tail must be one of 'none', 'swa', 'ema' but got 'avg'"),
])
def test_bad_tail_choices(tail, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchSpace(tail=tail)


def _found() -> RangeTestResult:
    return RangeTestResult.from_arrays([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.0, 1.5, 1.0, 0.9, 5.0],
                                       start_lr=1e-4, end_lr=1.0, num_iter=5)


def test_an_explicit_lr_range_is_never_replaced_by_a_range_test(tmp_path) -> None:
    found = _found()
    wide = widened(found.search_range(), (1e-7, 10.0))
    assert SearchSpace().seeded_by(found).lr == wide  # the default range gives way
    assert SearchSpace(lr=(1e-4, 1e-1)).seeded_by(found).lr == (1e-4, 1e-1)  # an explicit one does not
    assert SearchSpace(lr=(1e-4, 1e-1)).replace(mode="max").seeded_by(found).lr == (1e-4, 1e-1)
    assert SearchSpace().replace(mode="max").seeded_by(found).lr == wide
    # combined: the explicit walls stay, the range test centres the prior inside them
    kept = SearchSpace(lr=(1e-4, 1e-1)).seeded_by(found)
    assert kept.prior is not None and 1e-4 <= kept.prior.centre <= 1e-1
    assert kept.replace(mode="max").prior == kept.prior and SearchSpace(lr=(1e-4, 1e-1)).prior is None

    def objective(trial: optuna.trial.Trial) -> float:
        return suggest_schedule(trial).lr

    for lr, expected in [((1e-4, 1e-1), (1e-4, 1e-1)), (None, wide)]:
        result = lrsearch.optimize(objective, n_trials=3, seed_from=found, space=SearchSpace(lr=lr),
                                   storage=f"sqlite:///{tmp_path}/s{lr is None}.db", artifacts=None, rungs=None)
        assert tuple(result.study.user_attrs["search_space"]["lr"]) == pytest.approx(expected)
        lrs = [t.params["lr"] for t in result.study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert lrs and all(expected[0] <= lr <= expected[1] for lr in lrs), lrs  # seeds inside


def test_the_prior_draws_startup_lrs_around_the_core_and_tpe_takes_over() -> None:
    """The startup trials' LRs follow the prior (most inside the core, some in the tails, none
    outside the walls); after ``n_startup_trials`` the base sampler decides alone."""
    prior = LRPrior.around(1e-3, 1e-1)  # centre 1e-2, sigma 1 decade
    assert prior.centre == pytest.approx(1e-2) and prior.sigma == pytest.approx(1.0)
    sampler = PriorSampler(optuna.samplers.RandomSampler(seed=1), prior, n_startup_trials=200, seed=0)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: t.suggest_float("lr", 1e-6, 1.0, log=True) + t.suggest_float("x", 0, 1), n_trials=200)
    logs = np.log10([t.params["lr"] for t in study.trials])
    inside = np.mean((logs >= -3) & (logs <= -1))
    assert 0.6 <= inside <= 0.78 and logs.min() < -3 and logs.max() > -1  # ~68% within one sigma
    assert abs(np.median(logs) + 2) < 0.25
    xs = [t.params["x"] for t in study.trials]
    assert 0.3 < np.mean(xs) < 0.7  # other parameters are the base sampler's
    # past the startup the base sampler decides: uniform in log over [1e-6, 1], median near 1e-3
    late = optuna.create_study(sampler=PriorSampler(optuna.samplers.RandomSampler(seed=1), prior,
                                                    n_startup_trials=0, seed=0))
    late.optimize(lambda t: t.suggest_float("lr", 1e-6, 1.0, log=True), n_trials=200)
    assert abs(np.median(np.log10([t.params["lr"] for t in late.trials])) + 3) < 0.5
    # truncated to the walls even when the centre sits outside them
    rng = np.random.RandomState(0)
    draws = [LRPrior(10.0, 0.5).draw(rng, 1e-4, 1e-2) for _ in range(100)]
    assert all(1e-4 <= d <= 1e-2 for d in draws)


def test_a_worker_without_the_range_test_searches_the_stored_range_and_prior(tmp_path) -> None:
    found = _found()
    storage = f"sqlite:///{tmp_path}/w.db"
    lrsearch.optimize(lambda t: suggest_schedule(t).lr, n_trials=0, seed_from=found, storage=storage,
                      study_name="w", artifacts=None, rungs=None)
    stored = optuna.load_study(study_name="w", storage=storage).user_attrs["search_space"]
    assert tuple(stored["lr"]) == widened(found.search_range(), (1e-7, 10.0)) and "prior" in stored
    space = SearchSpace().resumed(stored)
    assert space.lr == tuple(stored["lr"]) and space.prior == LRPrior.around(*found.search_range())
    assert SearchSpace(lr=(1e-3, 1e-2)).resumed(stored).lr == (1e-3, 1e-2)  # an explicit range stays
    assert SearchSpace().resumed({"lr": [1e-3, 1e-2]}).lr == SearchSpace().lr  # no prior stored: no change
    result = lrsearch.optimize(lambda t: suggest_schedule(t).lr, n_trials=4, storage=storage, study_name="w",
                               artifacts=None, rungs=None)
    assert isinstance(result.study.sampler, PriorSampler) and result.study.sampler.prior == space.prior
    assert all(stored["lr"][0] <= t.params["lr"] <= stored["lr"][1] for t in result.study.trials if t.params)


def test_a_suggestion_outside_the_range_and_its_tails_does_not_seed(monkeypatch) -> None:
    """A noisy curve's ``steep`` decades below the range (6e-7 on a regression MLP) seeded one-cycle
    and the decays there; now they fall back to the rules that remain, inside the range."""
    from lrsearch.search._seeds import seed_lr

    found = _found()
    real = RangeTestResult.suggestion
    low, high = widened(found.search_range(), (1e-4, 1.0))
    steep = math.sqrt(math.prod(found.search_range()))
    monkeypatch.setattr(RangeTestResult, "suggestion", lambda self, rule, *a, **k: steep if rule == "steep" else real(self, rule, *a, **k))
    assert seed_lr(found, "onecycle", low, high) == (steep, "steep")  # a plausible steep is used
    monkeypatch.setattr(RangeTestResult, "suggestion", lambda self, rule, *a, **k: 6e-7 if rule == "steep" else real(self, rule, *a, **k))
    for family in ("onecycle", "cosine", "constant"):
        lr, rule = seed_lr(found, family, low, high)
        assert "steep" not in rule and low <= lr <= high, (family, lr, rule)


def test_no_seed_below_the_midpoint(monkeypatch) -> None:
    from lrsearch.search._seeds import seed_lr

    found = _found()
    real = RangeTestResult.suggestion
    mid = real(found, "midpoint")
    low, high = widened(found.search_range(), (1e-4, 1.0))
    monkeypatch.setattr(RangeTestResult, "suggestion",
                        lambda self, rule, *a, **k: mid / 3 if rule == "steep" else real(self, rule, *a, **k))
    assert all(seed_lr(found, f, low, high)[0] == pytest.approx(mid) for f in ("onecycle", "cosine", "constant"))
