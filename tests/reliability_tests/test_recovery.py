"""Every seed runs exactly once, whatever is killed when; journal files survive torn lines; one
process per SQLite file."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import lrsearch
from lrsearch.search.storage import _liveness
from lrsearch.search._recovery import recover
from lrsearch.search._seeds import seed_key
from lrsearch.search.storage._defaults import resolve_storage
from lrsearch.search.storage._defaults import single_process


optuna.logging.set_verbosity(optuna.logging.WARNING)
FAMILIES = ["constant", "cosine", "wsd", "onecycle"]
STORAGES = ["sqlite", "journal"]


def _range_test() -> lrsearch.RangeTestResult:
    lrs = np.logspace(-7, 1, 100)
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(np.log10(lrs) + 2.0) / 0.3)) + np.where(lrs > 1, 5.0, 0.0)
    return lrsearch.RangeTestResult.from_arrays(lrs, losses, start_lr=1e-7, end_lr=10.0, num_iter=100)


def _storage(kind: str, tmp_path: Path) -> str:
    return str(tmp_path / ("s.db" if kind == "sqlite" else "s.log"))


def _objective(trial: optuna.trial.Trial) -> float:
    schedule = lrsearch.suggest_schedule(trial)
    return abs(np.log10(schedule.lr) + 2.0)


def _run(storage: str, n_trials: int, seed_from=None, objective=_objective) -> lrsearch.SearchResult:  # noqa: ANN001
    return lrsearch.optimize(objective, n_trials=n_trials, study_name="r", storage=storage, seed_from=seed_from,
                             artifacts=None, heartbeat_interval=None, space=lrsearch.SearchSpace(FAMILIES))


def _runs_per_seed(study: optuna.Study) -> dict[str, int]:
    """How many times each seed's objective ran to a result."""
    out = {f: 0 for f in FAMILIES}
    for t in study.get_trials(deepcopy=False):
        key = seed_key(t)
        if key and t.state in (TrialState.COMPLETE, TrialState.PRUNED) and "duplicate_of" not in t.user_attrs:
            out[key] += 1
    return out


def _raising_on(family: str, error: BaseException):  # noqa: ANN202
    """An objective whose ``family`` trials raise ``error`` (the others return 1)."""

    def objective(trial: optuna.trial.Trial) -> float:
        if lrsearch.suggest_schedule(trial).family == family:
            raise error
        return 1.0

    return objective


@pytest.mark.parametrize("kind", STORAGES)
def test_a_seed_interrupted_by_ctrl_c_runs_on_the_next_start(kind: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    interrupted = _raising_on("cosine", KeyboardInterrupt())
    assert _run(storage, 10, _range_test(), interrupted).interrupted  # optimize returns the result so far
    study = _run(storage, 8).study
    assert _runs_per_seed(study) == {f: 1 for f in FAMILIES}
    cosine = [t for t in study.trials if seed_key(t) == "cosine"]
    assert [t.state for t in cosine] == [TrialState.FAIL, TrialState.COMPLETE]
    assert study.user_attrs["seeds_enqueued"] == 4


@pytest.mark.parametrize("kind", STORAGES)
def test_a_seed_whose_objective_raises_is_not_retried(kind: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    with pytest.raises(RuntimeError):
        _run(storage, 6, _range_test(), _raising_on("wsd", RuntimeError("a bug in the objective")))
    study = _run(storage, 4).study
    wsd = [t for t in study.trials if seed_key(t) == "wsd"]
    assert len(wsd) == 1 and wsd[0].state == TrialState.FAIL and "a bug" in wsd[0].user_attrs["error"]


def _dead_owner() -> dict:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return {"host": _liveness._HOST, "pid": int(proc.stdout), "start": "0"}


def _add_running(study: optuna.Study, params: dict, user_attrs: dict, owner: dict | None, age: float = 0.0) -> int:
    """A RUNNING trial as a killed process leaves it (optionally with an owner)."""
    space = lrsearch.SearchSpace(FAMILIES)
    probe = optuna.create_study()
    probe.enqueue_trial(params)
    t = probe.ask()
    space.suggest(t)
    frozen = probe.trials[0]
    number = len(study.trials)
    trial_id = study._storage.create_new_trial(study._study_id, template_trial=optuna.trial.FrozenTrial(
        number=number, state=TrialState.RUNNING, value=None,
        datetime_start=datetime.datetime.now() - datetime.timedelta(seconds=age), datetime_complete=None,
        params=frozen.params, distributions=frozen.distributions,
        user_attrs={**user_attrs, **({"owner": {**owner, "trial": number}} if owner else {})},
        system_attrs={}, intermediate_values={}, trial_id=0))
    return study._storage.get_trial_number_from_id(trial_id)


@pytest.mark.parametrize("kind", STORAGES)
@pytest.mark.parametrize("how", ["owner died", "died before its owner was written"])
def test_a_stale_running_seed_is_failed_and_run_once(kind: str, how: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    study = _run(storage, 0, _range_test()).study  # prepared: 4 seeds waiting
    waiting = [t for t in study.trials if seed_key(t) == "cosine"][0]
    # the cosine seed was popped by a process that was then SIGKILLed
    study._storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)
    if how == "owner died":
        study._storage.set_trial_user_attr(waiting._trial_id, "owner", {**_dead_owner(), "trial": waiting.number})
    else:
        monkeypatch.setattr(_liveness, "ORPHAN_AGE", 0.0)
    study = _run(storage, 6).study
    assert study.trials[waiting.number].state == TrialState.FAIL
    assert _runs_per_seed(study) == {f: 1 for f in FAMILIES}


@pytest.mark.parametrize("kind", STORAGES)
def test_a_stale_sampled_trial_is_retried_once_with_its_parameters(kind: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    study = _run(storage, 2).study
    dead = _add_running(study, {"family": "cosine", "lr": 0.01}, {"fidelity": 1.0, "rung": 0}, _dead_owner())
    alive = _add_running(study, {"family": "wsd", "lr": 0.02}, {}, {**_liveness.owner()})  # this process
    study = _run(storage, 3).study
    assert study.trials[dead].state == TrialState.FAIL and study.trials[alive].state == TrialState.RUNNING
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == dead]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == study.trials[dead].params and "owner" in retries[0].user_attrs


def _prepared_with_a_failed_seed(storage: str, family: str) -> optuna.Study:
    study = _run(storage, 0, _range_test()).study
    seed = [t for t in study.trials if seed_key(t) == family][0]
    study._storage.set_trial_state_values(seed._trial_id, TrialState.RUNNING)
    study._storage.set_trial_state_values(seed._trial_id, TrialState.FAIL)
    return study


@pytest.mark.parametrize("kind", STORAGES)
def test_a_failed_seed_left_without_its_retry_is_enqueued_again(kind: str, tmp_path, monkeypatch) -> None:
    """SIGKILL inside Optuna's retry callback: the seed is FAIL and nothing waits for it."""
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    study = _prepared_with_a_failed_seed(storage, "onecycle")
    study = _run(storage, 5).study
    assert _runs_per_seed(study) == {f: 1 for f in FAMILIES}


@pytest.mark.parametrize("kind", STORAGES)
def test_two_processes_enqueueing_one_seed_run_it_once(kind: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    study = _prepared_with_a_failed_seed(storage, "wsd")
    assert recover(study) == 1 and recover(study) == 0  # one process repairs once...
    from lrsearch.search._seeds import enqueue_seed

    enqueue_seed(study, "wsd", study.user_attrs["seed_plan"]["wsd"], attempt=2)  # ...and a second one raced it
    study = _run(storage, 8).study
    assert _runs_per_seed(study) == {f: 1 for f in FAMILIES}
    twins = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert len(twins) == 1 and twins[0].state == TrialState.PRUNED and not twins[0].intermediate_values
    from lrsearch.search._lengths import trial_cost

    assert trial_cost(twins[0]) == 0.0  # it trained nothing
    assert lrsearch.SearchResult(study).counts()["duplicate"] == 1


def test_seeds_enqueued_counts_what_the_study_holds_after_a_kill_while_seeding(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage("journal", tmp_path)
    from lrsearch.search import _seeds

    real, calls = _seeds.enqueue_seed, []

    def dies_on_the_third(*args, **kwargs):  # noqa: ANN002,ANN003,ANN202
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped while it seeds
        return real(*args, **kwargs)

    monkeypatch.setattr(_seeds, "enqueue_seed", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        _run(storage, 0, _range_test())
    monkeypatch.setattr(_seeds, "enqueue_seed", real)
    study = _run(storage, 0).study  # a worker without the range test: the plan in the study says what is owed
    assert study.user_attrs["seeds_enqueued"] == 4
    study = _run(storage, 6).study
    assert _runs_per_seed(study) == {f: 1 for f in FAMILIES}


def test_a_torn_last_journal_line_is_cut_and_the_study_goes_on(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "torn.log"
    _run(str(path), 3, _range_test())
    data = path.read_bytes()
    path.write_bytes(data + data.splitlines(keepends=True)[-1][:-7])  # a writer killed mid-line
    study = optuna.load_study(study_name="r", storage=resolve_storage(str(path), "r"))
    before = [(t.number, t.state, t.value) for t in study.trials if t.state.is_finished()]
    _run(str(path), 2)  # appends: before the fix these glued onto the torn line
    again = optuna.load_study(study_name="r", storage=resolve_storage(str(path), "r")).trials
    assert [(t.number, t.state, t.value) for t in again if t.number < len(before)] == before
    assert sum(t.state.is_finished() for t in again) == len(before) + 2
    assert Path(str(path) + ".torn").exists() and path.read_bytes().endswith(b"\n")


def test_a_journal_line_optuna_cannot_replay_is_a_value_error(tmp_path) -> None:
    path = tmp_path / "odd.log"
    _run(str(path), 1)
    with path.open("a") as f:
        f.write(json.dumps({"op_code": 99, "worker_id": "x"}) + "\n")
    with pytest.raises(ValueError, match="cannot replay"):
        resolve_storage(str(path), "r")


def test_a_second_process_on_one_sqlite_file_is_refused_until_the_first_dies(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "one.db"
    holder = subprocess.Popen(  # another process running a study on the file holds its lock
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1] + '.lock', 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)", str(db)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match="in use by another process"):
            lrsearch.optimize(lambda t: 0.0, n_trials=1, study_name="r", storage=str(db), artifacts=None)
    finally:
        holder.kill()
        holder.communicate()
    result = lrsearch.optimize(lambda t: lrsearch.suggest_schedule(t).lr, n_trials=1, study_name="r",
                               storage=str(db), artifacts=None)  # the lock died with its holder
    assert result.counts() == {"complete": 1}
    with single_process(resolve_storage(str(db), "r", heartbeat_interval=None)):
        pass  # and this process let go of it when optimize returned


@pytest.mark.parametrize("kind", ["sqlite", "journal at a relative path"])  # the absolute journal: kill_campaign.py
def test_sigkill_at_random_moments_loses_nothing_and_runs_each_seed_once(kind: str, tmp_path, monkeypatch) -> None:
    """The kill campaign (kill_campaign.py) at a small size: real SIGKILLs of real workers, the fourth
    one aimed at a promoted run."""
    import random

    from tests.reliability_tests import kill_campaign

    monkeypatch.chdir(tmp_path)
    storage = "studies/k.log" if kind.endswith("relative path") else _storage(kind, tmp_path)
    out = kill_campaign.campaign(storage, "kills", 4, random.Random(1), per_study=2)
    assert out["completed_lost"] == 0 and out["left_running"] == 0 and out["studies"] == 2
    assert out["studies_with_a_seed_not_run_once"] == 0 and len(out["seed_runs"]) == 2
    assert out["promotions_run_twice"] == 0 and out["promotions_owed_not_queued"] == 0


def _promoting(interrupt_first: bool):  # noqa: ANN202
    """A multi-fidelity objective (it asks its run length); with ``interrupt_first`` the first promoted
    run is stopped by Ctrl-C."""
    hits = []

    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)
        lrsearch.run_length(trial, 90)
        if interrupt_first and "promoted_from" in trial.user_attrs and not hits:
            hits.append(trial.number)
            raise KeyboardInterrupt
        return abs(np.log10(schedule.lr) + 2.0) + 0.01 * len(schedule.family)

    return objective


def _promotion_runs(study: optuna.Study) -> dict[int, int]:
    """How many times each promotion (by the trial it came from) ran to a result."""
    out: dict[int, int] = {}
    for t in study.get_trials(deepcopy=False):
        if "promoted_from" in t.user_attrs:
            out.setdefault(t.user_attrs["promoted_from"], 0)
            out[t.user_attrs["promoted_from"]] += t.state in (TrialState.COMPLETE, TrialState.PRUNED) and \
                "duplicate_of" not in t.user_attrs
    return out


@pytest.mark.parametrize("kind", STORAGES)
def test_a_promotion_interrupted_by_ctrl_c_runs_on_the_next_start(kind: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    assert _run(storage, 12, objective=_promoting(True)).interrupted
    study = optuna.load_study(study_name="r", storage=resolve_storage(storage, "r", heartbeat_interval=None))
    stopped = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(stopped) == 1 and stopped[0].state == TrialState.FAIL and "promoted_from" in stopped[0].user_attrs
    source = stopped[0].user_attrs["promoted_from"]
    study = _run(storage, 6, objective=_promoting(False)).study
    runs = _promotion_runs(study)
    assert runs[source] == 1 and set(runs.values()) == {1}
    again = [t for t in study.trials if t.user_attrs.get("promoted_from") == source and t.state == TrialState.COMPLETE]
    assert again[0].params == stopped[0].params and again[0].user_attrs["fidelity"] == 1.0


@pytest.mark.parametrize("kind", STORAGES)
def test_a_stale_running_promotion_is_failed_and_promoted_again_once(kind: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = _storage(kind, tmp_path)
    study = _run(storage, 6, objective=_promoting(False)).study
    done = _promotion_runs(study)
    source = min(t.number for t in study.trials if "promoted_from" not in t.user_attrs
                 and t.state == TrialState.COMPLETE and t.number not in done)
    attrs = {"fidelity": 1.0, "rung": 1, "promoted_from": source, "lr_scale": 1.0}
    dead = _add_running(study, study.trials[source].params, attrs, _dead_owner())  # its worker was SIGKILLed
    study = _run(storage, 4, objective=_promoting(False)).study
    assert study.trials[dead].state == TrialState.FAIL
    runs = _promotion_runs(study)
    assert set(runs.values()) == {1} and source in runs
    assert not [t for t in study.trials if t.system_attrs.get("failed_trial") == dead]  # not retried twice


def test_a_journal_lock_at_a_relative_path_points_at_the_journal(tmp_path, monkeypatch) -> None:
    from lrsearch.search.storage._journal import SafeJournalFileBackend

    monkeypatch.chdir(tmp_path)
    Path("studies").mkdir()
    backend = SafeJournalFileBackend("studies/j.log")
    assert backend._lock.acquire()
    try:  # Optuna wrote "studies/j.log" as the link, which resolves inside studies/ to nothing
        assert Path("studies/j.log.lock").resolve() == (tmp_path / "studies" / "j.log").resolve()
    finally:
        backend._lock.release()


def test_a_stale_dangling_lock_of_a_relative_journal_is_taken_over(tmp_path, monkeypatch) -> None:
    """A writer killed inside an append left ``studies/j.log.lock -> studies/j.log`` (a link that points
    nowhere): the next worker takes it over once it is older than the grace period, not never."""
    import os
    import time

    monkeypatch.chdir(tmp_path)
    _run("studies/j.log", 1)
    lock = Path("studies/j.log.lock")
    os.symlink("studies/j.log", lock)
    old = time.time() - 120  # older than the grace period (30 s)
    os.utime(lock, (old, old), follow_symlinks=False)
    code = ("import lrsearch; r = lrsearch.optimize(lambda t: lrsearch.suggest_schedule(t).lr, n_trials=1, "
            "study_name='r', storage='studies/j.log', artifacts=None, space=lrsearch.SearchSpace(%r)); "
            "print(r.counts())" % FAMILIES)
    try:  # before the fix this spun at 100% CPU for ever; the limit only keeps a regression from hanging the suite
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("a worker waited more than 90 s on a stale journal lock")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'complete': 2" in done.stdout and not lock.is_symlink()
