"""The budget and the rungs over run length: accounting, promotion, seeding's share, the default."""

from __future__ import annotations

import math
import warnings

import optuna
import pytest

import lrsearch
from lrsearch.search._fidelity import Budget
from lrsearch.search._lengths import spent
from lrsearch.search._lengths import trial_cost


optuna.logging.set_verbosity(optuna.logging.WARNING)
FULL = 90  # optimizer steps of a full run of the fake objective
EVALS = 9


def fake_objective(trial: optuna.trial.Trial) -> float:
    """A cheap 'training run': its final loss depends on lr (best near 0.01) and on the run length."""
    schedule = lrsearch.suggest_schedule(trial)
    steps = lrsearch.run_length(trial, FULL)
    base = 0.3 + 0.1 * math.log10(schedule.lr / 0.01) ** 2
    value = math.inf
    for k in range(EVALS):
        value = base + 1.0 / (1 + steps * (k + 1) / EVALS / 10)
        lrsearch.report(trial, value, k, n_evals=EVALS)
    return value


THREE = lrsearch.Rungs((1 / 9, 1 / 3, 1.0))  # a three-rung ladder: runs of 10, 30 and 90 steps


def _run(budget: float | None = 3.0, **kwargs) -> lrsearch.SearchResult:
    kwargs.setdefault("rungs", THREE)
    kwargs.setdefault("space", lrsearch.SearchSpace(families=["constant", "cosine"], lr=(1e-4, 1.0)))
    return lrsearch.optimize(fake_objective, budget=budget, storage=optuna.storages.InMemoryStorage(),
                             artifacts=None, **kwargs)


def _frozen(fraction: float, value: float | None, state=optuna.trial.TrialState.COMPLETE, evals: int = EVALS,
            **attrs) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        state=state, value=value, intermediate_values={k: 1.0 for k in range(evals)},
        params={"lr": 0.01}, distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 1.0, log=True)},
        user_attrs={"run_steps": round(FULL * fraction), "full_steps": FULL, "n_evals": EVALS, **attrs})


def test_trial_cost_counts_what_was_trained() -> None:
    assert trial_cost(_frozen(1 / 9, 1.0)) == pytest.approx(10 / 90)
    assert trial_cost(_frozen(1 / 3, None, optuna.trial.TrialState.PRUNED, evals=3)) == pytest.approx(30 / 90 * 3 / 9)
    plain = optuna.trial.create_trial(value=1.0, params={}, distributions={})  # never called run_length
    assert trial_cost(plain) == 1.0


def test_run_length_outside_a_search_is_the_full_run() -> None:
    trial = optuna.create_study().ask()
    assert lrsearch.run_length(trial, 500) == 500
    assert trial.user_attrs["run_steps"] == trial.user_attrs["full_steps"] == 500
    trial.set_user_attr("fidelity", 1 / 9)
    assert lrsearch.run_length(trial, 500) == 56
    with pytest.raises(ValueError, match="total_steps"):
        lrsearch.run_length(trial, 0)


def test_budget_is_spent_and_the_search_ends_on_full_length_runs() -> None:
    result = _run(budget=3.0)
    trials = result.study.trials
    assert 3.0 - sum(THREE.fractions) <= result.spent <= 3.0 + 1e-9
    assert result.spent == pytest.approx(sum(trial_cost(t) for t in trials))
    runs = {t.user_attrs["run_steps"] for t in trials}
    assert runs <= {10, 30, 90} and 90 in runs
    fresh = [t for t in trials if "promoted_from" not in t.user_attrs]
    assert all(t.user_attrs["run_steps"] == 10 for t in fresh)  # every new candidate starts short
    best = result.best_trial
    assert best.user_attrs["run_steps"] == 90 and result.top(1)[0]["run"] == "full"
    # the trace counts every trial once and its best is over full-length trials only
    trace = result.spent_trace()
    assert len(trace) == len(trials) and trace[-1][0] == pytest.approx(result.spent)
    assert trace[-1][1] == min(t.value for t in trials if t.state.name == "COMPLETE" and t.user_attrs["run_steps"] == 90)


def test_promotion_reruns_the_best_third_with_the_lr_shifted_by_the_rule() -> None:
    rungs = lrsearch.Rungs(THREE.fractions, lr_shift=0.25)
    result = _run(budget=4.0, rungs=rungs)
    trials = result.study.trials
    promoted = [t for t in trials if "promoted_from" in t.user_attrs]
    assert promoted
    for t in promoted:
        source = trials[t.user_attrs["promoted_from"]]
        ratio = t.user_attrs["run_steps"] / source.user_attrs["run_steps"]
        assert ratio == 3
        assert t.params == source.params  # the sampler's point is the same; the LR moves with the length
        lr, source_lr = t.user_attrs["schedule"]["lr"], source.user_attrs["schedule"]["lr"]
        assert lr == pytest.approx(source_lr * 3 ** -0.25)
    assert len({t.user_attrs["promoted_from"] for t in promoted}) == len(promoted)  # never twice


def test_promotion_rule_on_a_constructed_rung() -> None:
    keeper = Budget(THREE, 100.0)
    study = optuna.create_study()
    for value in (0.5, 0.4):
        study.add_trial(_frozen(1 / 9, value))
    assert keeper.promotion(study, keeper.left(study)) is None  # 2 runs: the best third is empty
    study.add_trial(_frozen(1 / 9, None, optuna.trial.TrialState.PRUNED, evals=3))  # a pruned run counts
    trial, rung = keeper.promotion(study, keeper.left(study))
    assert (trial.value, rung) == (0.4, 1)
    # the endgame: too little left to carry a fresh run to the full length, so the best promotes
    small = Budget(THREE, 1.5)
    late = optuna.create_study()
    for value in (0.5, 0.4):
        late.add_trial(_frozen(1 / 9, value))
    trial, rung = small.promotion(late, small.left(late))
    assert (trial.value, rung) == (0.4, 1)


def test_seeds_run_at_the_shortest_rung_and_spend_a_small_share(range_test_result) -> None:
    result = _run(budget=5.0, space=lrsearch.SearchSpace(lr=(1e-4, 1.0)), seed_from=range_test_result)
    seeds = [t for t in result.study.trials if "seed" in t.user_attrs]
    assert len(seeds) == result.study.user_attrs["seeds_enqueued"] == int(0.1 * 5.0 * 9)
    assert {t.params["family"] for t in seeds} == {"cosine", "onecycle", "wsd", "linear"}  # strong ones first
    assert all(t.user_attrs["run_steps"] == 10 for t in seeds)
    assert sum(trial_cost(t) for t in seeds) <= 0.1 * 5.0 + 1e-9
    # the range test's steps are charged too
    assert spent(result.study) == pytest.approx(
        range_test_result.iterations / FULL + sum(trial_cost(t) for t in result.study.trials))


def test_default_budget_terminates_and_a_spent_budget_runs_nothing() -> None:
    storage = optuna.storages.InMemoryStorage()  # the default SQLite file works the same, slower
    result = lrsearch.optimize(fake_objective, storage=storage, artifacts=None)  # no budget, n_trials, timeout
    assert {t.user_attrs["run_steps"] for t in result.study.trials} == {30, 90}  # the default Rungs: 1/3, full
    budget = lrsearch.search.DEFAULT_BUDGET
    assert budget - sum(lrsearch.Rungs().fractions) <= result.spent <= budget + 1e-9
    n = len(result.study.trials)
    again = lrsearch.optimize(fake_objective, storage=storage, artifacts=None)  # resumed: budget spent
    assert len(again.study.trials) == n
    more = lrsearch.optimize(fake_objective, storage=storage, artifacts=None, budget=21.0)  # a larger one continues
    assert len(more.study.trials) > n and more.spent <= 21.0 + 1e-9


def test_without_rungs_every_trial_is_full_length_and_pruned_trials_cost_less() -> None:
    def curve(trial: optuna.trial.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
        steps = lrsearch.run_length(trial, FULL)
        for k in range(EVALS):
            lrsearch.report(trial, 1 + abs(math.log10(lr / 0.01)) + 1 / (k + 1), k, n_evals=EVALS)
        return 1 + abs(math.log10(lr / 0.01)) + 1 / EVALS + 0 * steps

    result = lrsearch.optimize(curve, budget=6.0, rungs=None, storage=optuna.storages.InMemoryStorage(),
                               artifacts=None, pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    trials = result.study.trials
    assert all(t.user_attrs["run_steps"] == FULL for t in trials)
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert pruned and all(trial_cost(t) < 1 for t in pruned)
    assert len(trials) > 6 and 5.0 <= result.spent <= 6.0 + 1e-9


def test_an_objective_that_ignores_run_length_counts_as_full_length() -> None:
    def ignores(trial: optuna.trial.Trial) -> float:
        return trial.suggest_float("lr", 1e-4, 1.0, log=True)

    result = lrsearch.optimize(ignores, budget=3.0, storage=optuna.storages.InMemoryStorage(), artifacts=None)
    assert len(result.study.trials) == 3 and result.spent == pytest.approx(3.0)
    assert not any("promoted_from" in t.user_attrs for t in result.study.trials)


@pytest.mark.parametrize("kwargs,word", [({"budget": 0}, "budget"), ({"budget": float("nan")}, "budget"),
                                         ({"budget": True}, "budget"), ({"rungs": (1 / 3, 1)}, "rungs")])
def test_bad_budget_and_rungs(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        lrsearch.optimize(fake_objective, storage=optuna.storages.InMemoryStorage(), artifacts=None, **kwargs)


@pytest.mark.parametrize("kwargs,word", [({"fractions": (0.5,)}, "fractions"), ({"fractions": (1 / 3, 1 / 9, 1)}, "fractions"),
                                         ({"fractions": ()}, "fractions"), ({"reduction": 1}, "reduction"),
                                         ({"lr_shift": -0.1}, "lr_shift")])
def test_bad_rungs(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        lrsearch.Rungs(**kwargs)


@pytest.fixture()
def range_test_result() -> lrsearch.RangeTestResult:
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        return lrsearch.lr_find(model, torch.optim.SGD(model.parameters(), lr=0.1), F.cross_entropy,
                                lrsearch.TensorBatches(x, y, batch_size=32), num_iter=30, verbose=False)


def test_n_trials_leaves_no_promotion_waiting() -> None:
    storage = optuna.storages.InMemoryStorage()
    for _ in range(2):  # a resumed call runs exactly n_trials more
        result = lrsearch.optimize(fake_objective, n_trials=13, storage=storage, artifacts=None,
                                   space=lrsearch.SearchSpace(families=["constant", "cosine"], lr=(1e-4, 1.0)))
        assert result.counts().get("waiting", 0) == 0
    assert len(result.study.trials) == 26
    assert any("promoted_from" in t.user_attrs for t in result.study.trials)


def test_print_of_a_search_result_names_its_best_full_run_trials_and_budget() -> None:
    result = _run(budget=3.0)
    text, best = repr(result), result.best_trial
    assert f"best={result.best_schedule.family} {result.best_value:.4g}" in text
    assert f"peak LR {result.best_schedule.lr:.3g} (trial {best.number}, full run)" in text
    assert f"trials: {result.counts_text()}" in text and f"spent {result.spent:.2f} of 3 full runs" in text
    assert "best=none yet" in repr(lrsearch.SearchResult(optuna.create_study()))


def test_auto_rungs_screen_shorter_under_a_small_budget() -> None:
    """``rungs="auto"`` (the default): 1/9 and full under ``SMALL_BUDGET`` full runs, so B=2 screens
    several candidates before its full run instead of one; ``Rungs()`` from there on."""
    from lrsearch.search._arguments import SMALL_BUDGET
    from lrsearch.search._arguments import SMALL_RUNGS
    from lrsearch.search._arguments import resolve_rungs

    assert resolve_rungs("auto", 2.0) == SMALL_RUNGS and resolve_rungs("auto", SMALL_BUDGET) == lrsearch.Rungs()
    assert resolve_rungs("auto", None) == lrsearch.Rungs() and resolve_rungs(None, 2.0).fractions == (1.0,)
    assert resolve_rungs(lrsearch.Rungs((0.5, 1.0)), 2.0).fractions == (0.5, 1.0)  # one you give is kept
    with pytest.raises(ValueError, match="rungs must be a lrsearch.Rungs, 'auto' or None but got 'short'"):
        resolve_rungs("short", 2.0)
    small = lrsearch.optimize(fake_objective, storage=optuna.storages.InMemoryStorage(), artifacts=None, budget=2.0)
    assert small.study.user_attrs["rungs"]["fractions"] == pytest.approx([1 / 9, 1.0])
    fresh = [t for t in small.study.trials if "promoted_from" not in t.user_attrs]
    assert len(fresh) >= 4 and {t.user_attrs["run_steps"] for t in fresh} == {10}  # 1/9 of 90 steps
    assert any(t.user_attrs["run_steps"] == 90 for t in small.study.trials) and small.spent <= 2.0 + 1e-9
