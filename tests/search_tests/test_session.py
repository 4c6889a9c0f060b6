"""A search's progress bar, and Ctrl-C: it stops at once, keeps what finished, returns the result so far."""

from __future__ import annotations

import gc
import logging
import os
import signal

import optuna
import pytest

import lrsearch


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _search(objective, tmp_path, **kwargs) -> lrsearch.SearchResult:  # noqa: ANN001
    return lrsearch.optimize(objective, storage=str(tmp_path / "s.log"), artifacts=None,
                             space=lrsearch.SearchSpace(["cosine", "constant"]), **kwargs)


def test_ctrl_c_returns_the_result_so_far_and_resumes(tmp_path, caplog) -> None:
    calls = []

    def objective(trial: optuna.trial.Trial) -> float:
        lr = lrsearch.suggest_schedule(trial).lr
        calls.append(trial.number)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C inside trial 3
        return lr

    before = signal.getsignal(signal.SIGINT)  # Python's handler, or SIG_IGN under a background shell
    result = _search(objective, tmp_path, n_trials=20)
    assert result.interrupted and len(calls) == 4  # stopped at once
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failed and all(r.exc_info is None for r in failed)  # Optuna's line, without a traceback
    states = [t.state for t in result.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] * 3 + [optuna.trial.TrialState.FAIL]
    assert result.study.trials[3].user_attrs["interrupted"] is True
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    again = _search(objective, tmp_path, n_trials=2)
    assert not again.interrupted and len(again.study.trials) == 6


class _Finalizer:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C lands in a __del__: Python only prints it


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_swallowed_ctrl_c_still_stops_the_search_after_the_trial(tmp_path) -> None:
    calls = []

    def objective(trial: optuna.trial.Trial) -> float:
        calls.append(trial.number)
        if len(calls) == 2:
            _Finalizer()
            gc.collect()
        return lrsearch.suggest_schedule(trial).lr

    result = _search(objective, tmp_path, n_trials=20)
    assert result.interrupted and len(calls) <= 3


def test_the_progress_bar_shows_trials_budget_and_the_best_family(tmp_path, capsys) -> None:
    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        lrsearch.run_length(trial, 90)
        return schedule.lr

    _search(objective, tmp_path, budget=2.0, show_progress_bar=True)
    err = capsys.readouterr().err
    assert "full runs" in err and "trials, best" in err and ("(cosine)" in err or "(constant)" in err)
    _search(objective, tmp_path, n_trials=1)  # stderr is not a terminal here: no bar by default
    assert capsys.readouterr().err == ""


def test_with_the_bar_optuna_logs_no_info_lines_and_its_verbosity_is_restored(tmp_path) -> None:
    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        lrsearch.run_length(trial, 90)
        return schedule.lr

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("optuna").addHandler(handler)
    optuna.logging.set_verbosity(optuna.logging.INFO)  # Optuna's default
    try:
        _search(objective, tmp_path, budget=2.0, show_progress_bar=True)
        assert [r.getMessage() for r in records if r.levelno <= logging.INFO] == []
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
        # without the bar Optuna's lines come back, without its "Best is trial N" (it ranks short runs too)
        _search(objective, tmp_path, n_trials=2, show_progress_bar=False)
        finished = [r.getMessage() for r in records if "finished with value" in r.getMessage()]
        assert len(finished) == 2 and not any("Best is" in m for m in finished)
        records.clear()
        optuna.logging.set_verbosity(optuna.logging.DEBUG)  # asked for explicitly: kept, even with the bar
        _search(objective, tmp_path, n_trials=1, show_progress_bar=True)
        assert any("finished with value" in r.getMessage() for r in records)
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        logging.getLogger("optuna").removeHandler(handler)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
