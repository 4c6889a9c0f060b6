"""A trial's user attrs in one storage call (``lrsearch.search.storage._attrs``, issue 25): read back
identical to Optuna's per-key writes on memory, SQLite and journal storages, on the fast paths and on
the public per-key path taken when Optuna's internals are missing, and counted per trial of a search."""

from __future__ import annotations

import json
import os
import time

import optuna
import pytest
from sqlalchemy import event

import lrsearch
from lrsearch.search.storage import _attrs
from lrsearch.search.storage import deferred
from lrsearch.search.storage import flush
from lrsearch.search.storage import resolve_storage
from lrsearch.search.storage import set_user_attrs
from tests.search_tests.test_overhead import _objective  # suggest, run_length, 3 reports: what a search writes


optuna.logging.set_verbosity(optuna.logging.WARNING)
ATTRS = {"owner": {"host": "h", "pid": 7, "start": None, "trial": 0}, "fidelity": 1 / 3, "rung": 0,
         "schedule": {"family": "cosine", "lr": 0.01, "params": {}, "warmup": {}}, "flag": True,
         "nothing": None, "list": [1, 2.5, "x"], "text": "é\n\"quoted\""}
KINDS = ("memory", "sqlite", "journal")


def _storage(kind: str, folder: str):  # noqa: ANN202
    if kind == "memory":
        return optuna.storages.InMemoryStorage()
    return resolve_storage(os.path.join(folder, "s.db" if kind == "sqlite" else "s.log"), "s",
                           heartbeat_interval=None)


def _reopened(kind: str, folder: str, storage):  # noqa: ANN001, ANN202
    """The study as a fresh process sees it (plain Optuna, its own replay of a journal)."""
    if kind == "memory":
        return optuna.load_study(study_name="s", storage=storage)
    if kind == "journal":
        backend = optuna.storages.journal.JournalFileBackend(os.path.join(folder, "s.log"))
        return optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))
    return optuna.load_study(study_name="s", storage=f"sqlite:///{os.path.join(folder, 's.db')}")


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per-key"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_attrs_read_back_as_per_key_writes_leave_them(kind: str, fast: bool, tmp_path, monkeypatch) -> None:
    if not fast:  # an Optuna without the internals the fast paths use
        monkeypatch.setattr(_attrs, "RDB_NEEDS", (*_attrs.RDB_NEEDS, "_gone_in_a_newer_optuna"))
        monkeypatch.setattr(_attrs, "JOURNAL_NEEDS", (*_attrs.JOURNAL_NEEDS, "_gone_in_a_newer_optuna"))
    storage = _storage(kind, str(tmp_path))
    study = optuna.create_study(study_name="s", storage=storage)
    batched, per_key = study.ask(), study.ask()
    batched.set_user_attr("before", 1)
    set_user_attrs(batched, ATTRS)
    set_user_attrs(batched, {"rung": 1})  # a key written again: the later value wins
    per_key.set_user_attr("before", 1)
    for key, value in {**ATTRS, "rung": 1}.items():
        per_key.set_user_attr(key, value)
    assert batched.user_attrs == per_key.user_attrs == {"before": 1, **ATTRS, "rung": 1}
    for seen in (study, _reopened(kind, str(tmp_path), storage)):
        first, second = seen.get_trials(deepcopy=False)
        assert first.user_attrs == second.user_attrs == {"before": 1, **ATTRS, "rung": 1}


def test_a_journal_holds_one_key_a_line_so_every_reader_replays_it(tmp_path) -> None:
    path = str(tmp_path / "s.log")
    study = optuna.create_study(study_name="s", storage=resolve_storage(path, "s"))
    set_user_attrs(study.ask(), {"a": 1, "b": [2], "c": "3"})
    lines = [json.loads(line) for line in (tmp_path / "s.log").read_text().splitlines()]
    attr_lines = [line for line in lines if "user_attr" in line and "trial_id" in line]
    assert [line["user_attr"] for line in attr_lines] == [{"a": 1}, {"b": [2]}, {"c": "3"}]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "per-key"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_finished_trial_refuses_them_as_set_user_attr_does(kind: str, fast: bool, tmp_path, monkeypatch) -> None:
    if not fast:
        monkeypatch.setattr(_attrs, "JOURNAL_NEEDS", ("_gone_in_a_newer_optuna",))
        monkeypatch.setattr(_attrs, "RDB_NEEDS", ("_gone_in_a_newer_optuna",))
    study = optuna.create_study(study_name="s", storage=_storage(kind, str(tmp_path)))
    trial = study.ask()
    study.tell(trial, 1.0)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(trial, {"a": 1, "b": 2})
    study.tell(study.ask(), 2.0)  # the storage goes on: no line of the refused write is left to replay
    assert [t.user_attrs for t in study.get_trials()] == [{}, {}]


def test_deferred_attrs_show_on_the_trial_and_reach_the_storage_at_flush(tmp_path) -> None:
    study = optuna.create_study(study_name="s", storage=_storage("journal", str(tmp_path)))
    trial = study.ask()
    with deferred(trial):
        set_user_attrs(trial, {"a": 1})
        set_user_attrs(trial, {"b": 2})
        assert trial.user_attrs == {"a": 1, "b": 2}
        assert study.get_trials()[0].user_attrs == {}
        flush(trial)
        assert study.get_trials()[0].user_attrs == {"a": 1, "b": 2}
        set_user_attrs(trial, {"c": 3})
    assert study.get_trials()[0].user_attrs == {"a": 1, "b": 2, "c": 3}
    with deferred(optuna.trial.FixedTrial({})):  # a trial with no view of its own: written at once
        fixed = optuna.trial.FixedTrial({})
        set_user_attrs(fixed, {"d": 4})
        assert fixed.user_attrs == {"d": 4}


def _search(storage) -> list[optuna.trial.FrozenTrial]:  # noqa: ANN001
    result = lrsearch.search.optimize(_objective, storage=storage, study_name="s", n_trials=8, rungs=None,
                                      sampler=optuna.samplers.RandomSampler(seed=0), show_progress_bar=False)
    return result.study.get_trials(deepcopy=False)


def test_a_search_writes_a_trials_attrs_in_at_most_three_sqlite_transactions(tmp_path) -> None:
    """Was 8 a trial (owner, fidelity, rung, trained_lr, schedule, full_steps, run_steps, n_evals), 9 when pruned."""
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    touched, per_trial = [False], []

    @event.listens_for(storage.engine, "before_cursor_execute")
    def _statement(conn, cursor, statement, *args) -> None:  # noqa: ANN001, ANN002
        touched[0] = touched[0] or statement.lstrip().upper().startswith("INSERT INTO TRIAL_USER_ATTRIBUTES")

    @event.listens_for(storage.engine, "commit")
    def _commit(conn) -> None:  # noqa: ANN001
        if touched[0]:
            per_trial.append(1)
        touched[0] = False

    trials = _search(storage)
    assert len(trials) == 8 and all("schedule" in t.user_attrs and "n_evals" in t.user_attrs for t in trials)
    assert len(per_trial) <= 3 * len(trials)
    assert len(per_trial) <= 2 * len(trials) + sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)


def test_a_search_appends_a_trials_attrs_to_a_journal_at_most_three_times(tmp_path) -> None:
    storage = resolve_storage(str(tmp_path / "s.log"), "s")
    appends: list[int] = []
    append = storage._backend.append_logs

    def counted(logs):  # noqa: ANN001, ANN202
        if any("user_attr" in log and "trial_id" in log for log in logs):
            appends.append(len(logs))
        return append(logs)

    storage._backend.append_logs = counted
    trials = _search(storage)
    assert len(trials) == 8 and all("run_steps" in t.user_attrs and "trained_lr" in t.user_attrs for t in trials)
    assert len(appends) <= 2 * len(trials) + sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)
    assert sum(appends) >= 8 * len(trials)  # every key still written


@pytest.mark.skipif(not os.environ.get("LRSEARCH_PG_URL"),
                    reason="no PostgreSQL: .ci/run starts one on loopback and sets LRSEARCH_PG_URL")
def test_the_attrs_read_back_as_per_key_writes_leave_them_on_postgresql() -> None:
    name = f"attrs-{os.getpid()}-{time.time_ns()}"
    storage = resolve_storage(os.environ["LRSEARCH_PG_URL"], name, heartbeat_interval=None)
    study = optuna.create_study(study_name=name, storage=storage)
    batched, per_key = study.ask(), study.ask()
    set_user_attrs(batched, ATTRS)
    set_user_attrs(batched, {"rung": 1})
    for key, value in {**ATTRS, "rung": 1}.items():
        per_key.set_user_attr(key, value)
    fresh = optuna.load_study(study_name=name, storage=os.environ["LRSEARCH_PG_URL"])
    assert [t.user_attrs for t in fresh.get_trials()] == [{**ATTRS, "rung": 1}] * 2
