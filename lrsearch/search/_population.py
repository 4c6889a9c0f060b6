"""The study loop of ``optimize(task=..., population=K)``: trials asked K at a time, trained together.

Each round asks up to K trials (``study.ask()``: enqueued seeds and promotions first), starts each
as the one-at-a-time path does (owner, duplicate check, fidelity and rung from the ``Budget``
keeper, its schedule from the space, its run length), trains them with ``train_population`` and
reports every member's evaluations through the same ``report`` hook, so each is pruned on its own.
A member is told (COMPLETE, PRUNED or FAIL) as soon as it leaves the population, and the same
callbacks run after each tell (recovery, the keeper's promotions and stop, the interrupt, the
progress bar, the user's). The budget is checked before each ask (waiting and running trials
count as committed), ``n_trials`` caps the trials asked, ``timeout`` is checked between rounds.
On Ctrl-C the members still training are told FAIL with the user attr ``interrupted``; the ones
already told stay.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.storages._heartbeat import get_heartbeat_thread

from lrsearch.training import Task
from lrsearch.population import population_plan
from lrsearch.population import check_population as check_population_size
from lrsearch.population import train_population
from lrsearch.search._fidelity import Budget
from lrsearch.search._fidelity import run_length
from lrsearch.search.storage import owner
from lrsearch.search.storage import set_user_attrs
from lrsearch.search.pruners import report
from lrsearch.search._seeds import duplicate_of
from lrsearch.search._space import SearchSpace
from lrsearch.search._space import _current
from lrsearch.search._optim_space import suggest_optimizer
from lrsearch.search._space import suggest_schedule
from lrsearch.search._recorder import Recorder
from lrsearch.search._settings import Callback
from lrsearch.search._settings import Settings

_State = optuna.trial.TrialState


def plan_evals(trial: optuna.trial.Trial, task: Task, steps: int) -> int:
    """How many evaluations a ``steps``-long run of ``task`` makes (``Task.eval_steps``); a task that
    evaluates every ``eval_every`` steps leaves that as the user attr ``eval_every``, so its curve
    is read at those steps (``lrsearch.search._transfer.trial_curve``)."""
    if task.eval_every is not None:
        set_user_attrs(trial, {"eval_every": task.eval_every})
    return len(task.eval_steps(steps))


def check_population(population: Any, task: Task | None, n_jobs: int) -> int | str | None:
    """``optimize``'s ``population``: ``None``, ``"auto"`` or an int >= 1, with a task, one job."""
    if check_population_size(population, none_ok=True) is None:
        return None
    if task is None:
        raise ValueError("population needs task=...: a plain objective trains its own runs "
                         "(lrsearch.train_population trains several of them at once).")
    if n_jobs != 1:
        raise ValueError(f"n_jobs must be 1 with a population (it trains its trials together) but got {n_jobs}.")
    return population


class _Round:
    """The trials of one population round and their telling."""

    def __init__(self, study: optuna.Study, callbacks: Sequence[Callback], catch: tuple[type[Exception], ...],
                 recorder: Recorder) -> None:
        self.study, self.callbacks, self.catch, self.recorder = study, callbacks, catch, recorder
        self.trials: list[optuna.trial.Trial] = []
        self.told: set[int] = set()
        self.raised: Exception | None = None

    def tell(self, trial: optuna.trial.Trial, value: float | None = None,
             state: optuna.trial.TrialState = _State.COMPLETE, error: Exception | None = None,
             callbacks: bool = True) -> None:
        if error is not None:
            trial.set_user_attr("error", f"{type(error).__name__}: {error}"[:300])
            if not isinstance(error, self.catch) and self.raised is None:
                self.raised = error  # raised once the round is over, as Study.optimize would
        self.study.tell(trial, value, state=state if value is None else None)
        self.told.add(trial.number)
        frozen = self.study._storage.get_trial(trial._trial_id)
        for callback in self.callbacks if callbacks else ():
            callback(self.study, frozen)

    def finish(self, i: int, result: Any) -> None:
        """``train_population``'s ``on_exit``: tell member ``i``'s trial how its run ended."""
        trial = self.trials[i]
        if isinstance(result.error, optuna.TrialPruned):
            self.tell(trial, state=_State.PRUNED)
        elif result.error is not None:
            self.tell(trial, state=_State.FAIL, error=result.error)
        else:
            trial.set_user_attr("device", result.device)
            self.recorder.trained(trial)
            self.tell(trial, result.final)

    def fail_rest(self, interrupted: bool) -> None:
        """Tell FAIL every trial not told yet (the round stopped); callbacks do not run, as when
        ``Study.optimize`` is interrupted."""
        for trial in self.trials:
            if trial.number not in self.told:
                if interrupted:
                    trial.set_user_attr("interrupted", True)
                self.tell(trial, state=_State.FAIL, callbacks=False)


def _start(study: optuna.Study, task: Task, space: SearchSpace, keeper: Budget, rnd: _Round) -> Any:
    """Ask one trial and sample its run: ``(trial, schedule, steps, optimizer)``, or ``None`` when
    the trial ended at once (a duplicate seed, or its sampling raised)."""
    trial = study.ask()
    fresh = {} if "fidelity" in trial.user_attrs else {"fidelity": keeper.fresh_fraction(), "rung": 0}
    set_user_attrs(trial, {"owner": {**owner(), "trial": trial.number}, **fresh})  # one storage write
    twin = duplicate_of(study, trial)
    if twin is not None:  # two processes re-enqueued one seed: it runs once
        trial.set_user_attr("duplicate_of", twin)
        rnd.tell(trial, state=_State.PRUNED)
        return None
    token = _current.set(space)
    try:
        schedule = suggest_schedule(trial)
        steps = run_length(trial, task.full_steps())
        optimizer = suggest_optimizer(trial)
    except Exception as err:
        rnd.tell(trial, state=_State.FAIL, error=err)
        return None
    finally:
        _current.reset(token)
    return trial, schedule, steps, optimizer


def optimize_population(study: optuna.Study, settings: Settings, keeper: Budget,
                        callbacks: Sequence[Callback]) -> None:
    """Run the study in rounds of up to ``settings.population`` trials trained together (see the module)."""
    task, space, seed = settings.task, settings.space, settings.seed  # a task: optimize checked it
    n_trials, timeout = settings.n_trials, settings.timeout
    start, asked = time.monotonic(), 0
    size, _ = population_plan(task, settings.population, seed=seed)  # 1 when it cannot batch (train_population warns)
    study._stop_flag = False
    study._thread_local.in_optimize_loop = True  # callbacks may call study.stop()
    try:
        while not study._stop_flag:
            if timeout is not None and time.monotonic() - start >= timeout:
                return
            room = size if n_trials is None else min(size, n_trials - asked)
            rnd = _Round(study, callbacks, settings.catch, settings.recorder)
            runs = []
            while len(rnd.trials) + len(rnd.told) < room and not study._stop_flag:
                if (runs or rnd.told) and keeper.step(study):
                    break  # the budget holds no further trial (running ones count as committed)
                started = _start(study, task, space, keeper, rnd)
                asked += 1
                if started is not None:
                    rnd.trials.append(started[0])
                    runs.append(started)
                if rnd.raised is not None:
                    rnd.fail_rest(interrupted=False)
                    raise rnd.raised
            if not runs and not rnd.told:
                return
            _train_round(study, task, seed, size, rnd, runs)
            if rnd.raised is not None:
                raise rnd.raised
    finally:
        study._thread_local.in_optimize_loop = False


def _train_round(study: optuna.Study, task: Task, seed: int, population: int, rnd: _Round,
                 runs: list[Any]) -> None:
    if not runs:
        return
    on_eval = [lambda i, v, t=trial, n=plan_evals(trial, task, steps): report(t, v, i, n_evals=n)
               for trial, _, steps, _ in runs]
    try:
        with contextlib.ExitStack() as beats:
            for trial, *_ in runs:
                beats.enter_context(get_heartbeat_thread(trial._trial_id, study._storage))
            optimizers = [opt for *_, opt in runs]
            train_population(task, [s for _, s, _, _ in runs], seed, on_eval=on_eval,
                             total_steps=[n for _, _, n, _ in runs], population=population,
                             on_exit=rnd.finish, **({"optimizers": optimizers} if any(optimizers) else {}))
    except KeyboardInterrupt:
        rnd.fail_rest(interrupted=True)
        raise
    except Exception as err:
        rnd.fail_rest(interrupted=False)
        if rnd.raised is None and not isinstance(err, rnd.catch):
            raise
