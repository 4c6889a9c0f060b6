"""SIGKILL study workers at random moments, on each storage, and count what was lost.

    python tests/reliability_tests/kill_campaign.py [--kills 12] [--seed 0] [--pg URL]
    # writes studies/results/kill_campaign.{md,json}

Each round starts a worker (it seeds the study from a range test, then runs short trials: a sampled
schedule "trains" for three evaluations of a few ms at a third of the run or, promoted, the whole
run), kills it with SIGKILL at a random moment aimed in turn at the study's creation and seeding, at
any time from Python's imports on, at the worker's trials (inside one or between two), and at its
promoted runs, and checks that every trial that had finished before the kill is still there
unchanged. Every ``per_study`` kills one more run (in this process, as a user's next start; trials
that died before recording their owner count as dead at once here, after ``ORPHAN_AGE`` in real use)
finishes the study; on journals, with ``stale_lock``, it first finds the lock a writer killed inside
an append leaves (a fresh link, relative for a relative path) and must take it over. Storages: SQLite,
a journal at an absolute and at a relative path, PostgreSQL with ``--pg``. Counted: completed trials
lost (must be 0), trials left RUNNING (0), studies where a seed did not run to a result exactly once
(0), promotions run twice (0) or owed and never queued (0), and the longest final run (< 60 s).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

import lrsearch


FAMILIES = ["constant", "cosine", "wsd", "onecycle"]
RESULTS = Path(__file__).resolve().parents[2] / "studies" / "results"


def objective(trial: optuna.trial.Trial, pause: float = 0.01, promote: bool = True) -> float:
    schedule = lrsearch.suggest_schedule(trial)
    if promote:
        lrsearch.run_length(trial, 90)  # a multi-fidelity objective: the best short runs are promoted
    value = abs(math.log10(schedule.lr) + 2.0) + 0.01 * len(schedule.family)
    for step in range(3):
        time.sleep(pause)
        lrsearch.report(trial, value + 0.1 * (3 - step), step, n_evals=3)
    return value


def range_test() -> lrsearch.RangeTestResult:
    lrs = np.logspace(-7, 1, 100)
    losses = 2.0 - 1.0 / (1.0 + np.exp(-(np.log10(lrs) + 2.0) / 0.3)) + np.where(lrs > 1, 5.0, 0.0)
    return lrsearch.RangeTestResult.from_arrays(lrs, losses, start_lr=1e-7, end_lr=10.0, num_iter=100)


def run(storage: str, study: str, n_trials: int) -> lrsearch.SearchResult:
    return lrsearch.optimize(objective, n_trials=n_trials, study_name=study, storage=storage, seed_from=range_test(),
                             heartbeat_interval=1, artifacts=None, space=lrsearch.SearchSpace(FAMILIES))


def _state(storage: str, study: str) -> tuple[dict[int, tuple], str]:
    """The finished trials, and what the study was doing: ``starting``, ``seeding`` or ``trials``."""
    from lrsearch.search._seeds import ran
    from lrsearch.search._seeds import seed_key
    from lrsearch.search.storage._defaults import resolve_storage

    try:
        s = optuna.load_study(study_name=study, storage=resolve_storage(storage, study, heartbeat_interval=None))
    except KeyError:  # not created yet
        return {}, "starting"
    trials = s.get_trials(deepcopy=False)
    done = {t.number: (t.state.name, t.value, json.dumps(t.params, sort_keys=True)) for t in trials
            if t.state.is_finished()}
    seeds_ran = {seed_key(t) for t in trials if ran(t)}
    return done, "trials" if set(FAMILIES) <= seeds_ran else "seeding"


def _wait(ready, limit: float = 20.0) -> None:  # noqa: ANN001
    end = time.perf_counter() + limit
    while time.perf_counter() < end and not ready():
        time.sleep(0.05)


def _runs_a_trial(storage: str, study: str, pid: int, promoted: bool = False) -> bool:
    from lrsearch.search.storage._defaults import resolve_storage

    try:
        s = optuna.load_study(study_name=study, storage=resolve_storage(storage, study, heartbeat_interval=None))
    except KeyError:
        return False
    return any(t.user_attrs.get("owner", {}).get("pid") == pid and (not promoted or "promoted_from" in t.user_attrs)
               for t in s.get_trials(deepcopy=False))


def _promotions(trials: list) -> tuple[int, int]:
    """Promotions that ran twice, and promotions owed an attempt with none queued (both must be 0)."""
    import time as clock

    from lrsearch.search._seeds import owed
    from lrsearch.search._seeds import ran

    attempts: dict[int, list] = {}
    for t in trials:
        if "promoted_from" in t.user_attrs:
            attempts.setdefault(t.user_attrs["promoted_from"], []).append(t)
    twice = sum(sum(map(ran, tries)) > 1 for tries in attempts.values())
    return twice, sum(owed(tries, clock.time()) for tries in attempts.values())


def _plant_stale_lock(storage: str) -> None:
    """The lock a writer SIGKILLed inside an append leaves: ``<file>.lock`` linking to the path as given."""
    if storage.endswith(".log") and not os.path.lexists(storage + ".lock"):
        os.symlink(storage, storage + ".lock")


def campaign(storage: str, study: str, kills: int, rng: random.Random, per_study: int = 3,
             stale_lock: bool = False) -> dict:
    """``kills`` SIGKILLs of workers on ``storage``, ``per_study`` on each of several studies, each study
    then finished by one more run (after a stale journal lock, with ``stale_lock``); the counts
    (module docstring)."""
    from lrsearch.search.storage import _liveness
    from lrsearch.search._seeds import ran
    from lrsearch.search._seeds import seed_key

    lost, moments, phases, running, not_once, runs_seen = 0, [], {}, 0, 0, []
    twice = owed = 0
    promoted_kills, final_s = 0, []
    for i in range(kills):
        name = f"{study}-{i // per_study}"
        proc = subprocess.Popen([sys.executable, __file__, "--worker", storage, name], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
        t0, aim = time.perf_counter(), i % 4
        if aim == 0:  # once the study exists: while it is created or seeded
            _wait(lambda: _state(storage, name)[1] != "starting")
            time.sleep(rng.uniform(0.0, 0.6))
        elif aim == 1:  # anywhere from Python's imports to the first trials
            time.sleep(rng.uniform(0.3, 4.0))
        elif aim == 2:  # once this worker runs a trial of its own: inside a trial or between two
            _wait(lambda: _runs_a_trial(storage, name, proc.pid))
            time.sleep(rng.uniform(0.0, 0.5))
        else:  # once this worker runs a promoted run: inside it (its evaluations take 30 ms) or just after
            _wait(lambda: _runs_a_trial(storage, name, proc.pid, promoted=True))
            promoted_kills += _runs_a_trial(storage, name, proc.pid, promoted=True)
            time.sleep(rng.uniform(0.0, 0.03))
        delay = time.perf_counter() - t0
        before, phase = _state(storage, name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after, _ = _state(storage, name)
        lost += sum(after.get(n) != v for n, v in before.items())
        moments.append(round(delay, 2))
        phases[phase] = phases.get(phase, 0) + 1
        if i % per_study == per_study - 1 or i == kills - 1:  # the user's next start finishes this study
            age, _liveness.ORPHAN_AGE = _liveness.ORPHAN_AGE, 0.0
            if stale_lock:
                _plant_stale_lock(storage)
            start = time.perf_counter()
            try:
                trials = run(storage, name, 4).study.get_trials(deepcopy=False)
            finally:
                _liveness.ORPHAN_AGE = age
            final_s.append(round(time.perf_counter() - start, 1))
            running += sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
            again, left = _promotions(trials)
            twice, owed = twice + again, owed + left
            runs = {f: sum(1 for t in trials if seed_key(t) == f and ran(t)) for f in FAMILIES}
            runs_seen.append(runs)
            not_once += any(v != 1 for v in runs.values())
    return {"kills": kills, "studies": len(runs_seen), "moments_s": moments, "killed_while": phases,
            "completed_lost": lost, "left_running": running, "studies_with_a_seed_not_run_once": not_once,
            "seed_runs": runs_seen, "kills_in_promoted_runs": promoted_kills, "promotions_run_twice": twice,
            "promotions_owed_not_queued": owed, "final_run_s": final_s}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kills", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pg", default=os.environ.get("LRSEARCH_PG_URL"), help="PostgreSQL URL (default $LRSEARCH_PG_URL)")
    p.add_argument("--worker", nargs=2, metavar=("STORAGE", "STUDY"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.worker:
        run(*args.worker, n_trials=1000)
        return {}
    rng = random.Random(args.seed)
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        stores = {"sqlite": f"{tmp}/k.db", "journal": f"{tmp}/k.log", "journal-relative": "studies/k.log"}
        if args.pg:
            stores["postgresql"] = args.pg
        for kind, storage in stores.items():
            t0 = time.perf_counter()
            out[kind] = campaign(storage, f"kills-{args.seed}-{int(time.time())}", args.kills, rng,
                                 stale_lock=kind.startswith("journal"))
            out[kind]["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"{kind}: {json.dumps(out[kind])}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "kill_campaign.json").write_text(json.dumps(out, indent=1) + "\n")
    lines = ["| storage | SIGKILLs (studies) | killed while starting / seeding / in trials | of them in promoted runs "
             "| completed trials lost | left RUNNING | studies with a seed not run exactly once "
             "| promotions run twice / owed, not queued | longest final run (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, r in out.items():
        ph = r["killed_while"]
        lines.append(f"| {kind} | {r['kills']} ({r['studies']}) | {ph.get('starting', 0)} / {ph.get('seeding', 0)} / "
                     f"{ph.get('trials', 0)} | {r['kills_in_promoted_runs']} | {r['completed_lost']} | "
                     f"{r['left_running']} | {r['studies_with_a_seed_not_run_once']} | {r['promotions_run_twice']} / "
                     f"{r['promotions_owed_not_queued']} | {max(r['final_run_s'], default=0)} |")
    (RESULTS / "kill_campaign.md").write_text(
        f"`python tests/reliability_tests/kill_campaign.py --kills {args.kills} --seed {args.seed}`: SIGKILL at random moments "
        "(aimed in turn at: 0-0.6 s after the study appears, while it is created and seeded; 0.3-4 s after the "
        "worker starts; 0-0.5 s after the worker's first trial starts; 0-30 ms after its first promoted run "
        "starts), then one more run finishes each study, on journals after a stale lock left as by a writer "
        "killed inside an append (a relative link for the relative path)."
        "\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


if __name__ == "__main__":
    main()
