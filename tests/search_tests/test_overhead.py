"""What the search costs per trial beyond Optuna (issue 25), counted rather than timed: the storage
reads of the bookkeeping after each trial, the loss-law fits of a growing study, the promotion
ranking's predictions. Timings are in studies/bench_overhead.py."""

from __future__ import annotations

import math

import optuna
import pytest

import lrsearch
from lrsearch.schedules import Schedule
from lrsearch.search import _transfer
from lrsearch.search._fidelity import Budget
from lrsearch.search._fidelity import Rungs
from lrsearch.search._optimize import optimize


optuna.logging.set_verbosity(optuna.logging.WARNING)


class CountingStorage(optuna.storages.InMemoryStorage):
    """An in-memory storage counting its reads of the trial list and the study's user attrs, and
    marking where each trial was told (the callbacks run between that and the next ask)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = self.attr_reads = 0
        self.told_at = (0, 0)

    def get_all_trials(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self.reads += 1
        return super().get_all_trials(*args, **kwargs)

    def get_study_user_attrs(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        self.attr_reads += 1
        return super().get_study_user_attrs(*args, **kwargs)

    def set_trial_state_values(self, trial_id, state, values=None) -> bool:  # noqa: ANN001
        done = super().set_trial_state_values(trial_id, state, values)
        if state.is_finished():
            self.told_at = (self.reads, self.attr_reads)
        return done


def _objective(trial: optuna.trial.Trial) -> float:
    schedule = lrsearch.suggest_schedule(trial)
    lrsearch.run_length(trial, 90)
    value = 1.0 + abs(math.log10(schedule.lr) + 2.0)
    for k in range(3):
        lrsearch.report(trial, value + 1.0 / (k + 1), k, n_evals=3)
    return value + 1.0 / 3


def test_the_bookkeeping_after_a_trial_reads_the_study_once(capsys) -> None:
    storage = CountingStorage()
    seen: list[tuple[int, int]] = []

    def after_ours(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:  # runs after lrsearch's
        seen.append((storage.reads - storage.told_at[0], storage.attr_reads - storage.told_at[1]))

    result = optimize(_objective, storage=storage, n_trials=24, sampler=optuna.samplers.RandomSampler(0),
                      show_progress_bar=True, callbacks=[after_ours])  # the bar reads the study too
    assert len(seen) == 24 and len(result.study.trials) == 24
    assert any("promoted_from" in t.user_attrs for t in result.study.trials)  # the keeper had work to do
    assert {reads for reads, _ in seen} == {1}  # recovery, promotion, budget and the bar: one read
    assert {attrs for _, attrs in seen} == {1}
    assert "24 trials" in capsys.readouterr().err


class _FakeModel:
    """Stands in for LossModel in StudyModel: records what each fit was given."""

    fits: list[int] = []

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        self.holdout_error = 0.0

    def fit(self, curves: list) -> _FakeModel:
        _FakeModel.fits.append(len(curves))
        return self


def _finished(number: int, full: int = 90) -> optuna.trial.FrozenTrial:
    spec = Schedule("cosine", lr=0.01 * (1 + number % 7)).to_dict()
    trial = optuna.trial.create_trial(value=1.0 + number % 5, intermediate_values={0: 2.0, 1: 1.5, 2: 1.0},
                                      user_attrs={"schedule": spec, "run_steps": full, "full_steps": full,
                                                  "n_evals": 3})
    trial.number = number
    return trial


def test_the_law_is_refitted_when_the_study_doubled_from_a_bounded_sample(monkeypatch) -> None:
    monkeypatch.setattr(_transfer, "LossModel", _FakeModel)
    monkeypatch.setattr(_FakeModel, "fits", [])
    study = optuna.create_study()
    holder = _transfer.StudyModel()
    trials = [_finished(i) for i in range(1000)]
    for n in range(1, 1001):
        holder.get(study, trials[:n])  # as after each finished trial
    # a fit at 8 completed runs, then each time they doubled, from at most 256 of them: 7 fits for
    # 1,000 trials (24 before), the last two of a bounded size
    assert _FakeModel.fits == [8, 16, 32, 64, 128, 256, 256]
    assert len(_FakeModel.fits) <= math.log2(1000 / _transfer.MIN_CURVES) + 1


def test_promotion_predicts_each_finished_run_once_per_law(monkeypatch) -> None:
    calls: list[int] = []

    class Law:
        def predict(self, schedule: Schedule, total_steps: int) -> lrsearch.Prediction:
            calls.append(total_steps)
            return lrsearch.Prediction(schedule.lr, 0.0)

    law = Law()
    monkeypatch.setattr("lrsearch.search._fidelity.study_model", lambda study, trials=None: law)
    study = optuna.create_study()
    keeper = Budget(Rungs((1 / 3, 1.0)), budget=None)
    trials = [_finished(i, full=90) for i in range(30)]
    for t in trials:
        t.user_attrs["run_steps"] = 30
    for n in range(10, 31):
        keeper.promotion(study, math.inf, trials[:n])
    assert len(calls) == 30  # not once per run per finished trial (420 before)
    monkeypatch.setattr("lrsearch.search._fidelity.study_model", lambda study, trials=None: Law())
    keeper.promotion(study, math.inf, trials)
    assert len(calls) == 60  # a refitted law predicts every run anew


@pytest.mark.parametrize("n_curves", [8, 300])
def test_a_bounded_sample_keeps_the_first_and_last_runs(monkeypatch, n_curves: int) -> None:
    monkeypatch.setattr(_transfer, "LossModel", _FakeModel)
    monkeypatch.setattr(_FakeModel, "fits", [])
    picked: list[list[int]] = []
    monkeypatch.setattr(_FakeModel, "fit", lambda self, curves: picked.append([c.total_steps for c in curves])
                        or self)
    study = optuna.create_study()
    trials = [_finished(i, full=90 + i) for i in range(n_curves)]
    _transfer.StudyModel().get(study, trials)
    expect = min(len(trials), _transfer.MAX_FIT_CURVES)
    assert len(picked[0]) == expect and picked[0][0] == 90 and picked[0][-1] == 90 + len(trials) - 1


def test_promotion_looks_at_each_finished_run_once(monkeypatch) -> None:
    import lrsearch.search._fidelity as fidelity

    seen: list[int] = []
    real = fidelity.rung_of
    monkeypatch.setattr(fidelity, "rung_of", lambda trial, fractions: seen.append(trial.number) or real(trial, fractions))
    keeper = Budget(Rungs((1 / 3, 1.0)), budget=None)
    study = optuna.create_study()
    trials = [_finished(i, full=90) for i in range(60)]
    for t in trials:
        t.user_attrs["run_steps"] = 30  # a third of the run: rung 0
    picks = [keeper.promotion(study, math.inf, trials[:n]) for n in range(1, 61)]
    assert sorted(seen) == list(range(60))  # once each, not once per later trial (1,830 before)
    assert picks[-1] is not None and picks[-1][1] == 1  # and it still promotes


class _Walked(list):
    """A trial list that counts the times it is walked through."""

    walks = 0

    def __iter__(self):  # noqa: ANN204
        _Walked.walks += 1
        return super().__iter__()


def test_a_report_does_not_walk_the_study(monkeypatch) -> None:
    study = optuna.create_study()
    peers = [_finished(i) for i in range(40)]
    for t in peers:
        t.intermediate_values = {0: 2.0 + (t.number % 5) / 10, 1: 1.6, 2: 1.0 + t.number % 5}
    running = optuna.trial.create_trial(state=optuna.trial.TrialState.RUNNING, intermediate_values={1: 9.0},
                                        user_attrs=dict(peers[0].user_attrs))
    running.number = 40
    cached = _Walked([*peers, running])
    monkeypatch.setattr(study, "_get_trials", lambda **kwargs: cached)
    monkeypatch.setattr(_Walked, "walks", 0)
    pruner = lrsearch.ForecastPruner(use_model=False, min_fraction=0.0)
    decisions = [pruner.prune(study, running) for _ in range(10)]
    assert decisions == [True] * 10  # far worse than its 40 peers' finals
    assert _Walked.walks == 0  # its peers were indexed once, by position, not rescanned per report


def test_owed_promotions_are_looked_for_only_after_a_promotion_attempt_failed(monkeypatch) -> None:
    from lrsearch.search import _fidelity

    scans = []
    real = _fidelity.promotions
    monkeypatch.setattr(_fidelity, "promotions", lambda trials: scans.append(len(trials)) or real(trials))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    keeper = Budget(Rungs((1 / 3, 1)), budget=None, n_trials=None, use_model=False)
    for value in (3.0, 2.0, 1.0):  # three short runs: the best (trial 2) is promoted, nothing fails
        trial = study.ask()
        for key, attr in (("fidelity", 1 / 3), ("full_steps", 90), ("run_steps", 30)):
            trial.set_user_attr(key, attr)
        study.tell(trial, value)
        keeper.step(study)
    waiting = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["promoted_from"] for t in waiting] == [2] and scans == []
    attempt = study.ask()  # the promotion's attempt starts ...
    assert attempt.number == waiting[0].number
    study.tell(attempt, state=optuna.trial.TrialState.FAIL)  # ... and is stopped (Ctrl-C)
    keeper.step(study)
    assert len(scans) == 1  # now the study is looked at for owed promotions, and the promotion made again
    again = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [t.user_attrs["promoted_from"] for t in again] == [2]
    keeper.step(study)  # its new attempt waits: nothing owed, and the next look is free again
    keeper.step(study)
    assert len(scans) == 2
