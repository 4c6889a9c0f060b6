"""``optimize``: a budgeted, multi-fidelity Optuna study over LR schedules, seeded from a range test.

Trials train at the rungs' run lengths (``_fidelity``): fresh candidates short, the best promoted
to longer runs, the full length last; the ``ForecastPruner`` stops runs forecast to end worse than
their peers; the search stops when its budget of full-run equivalents is spent.

Storage: a SQLite file ``studies/<study_name>.db`` by default (the folder is created; the study is
resumed with ``load_if_exists``). SQLite is for one worker: with parallel workers Optuna 5 runs
enqueued seed trials twice on SQLite (optuna#4002, reproduced on 5.0), so ``n_jobs > 1`` on SQLite
is refused, and so is a second process on the same file while one runs; use a journal file (a
path ending in ``.log``) on one machine, or a PostgreSQL URL across machines.

Nothing is lost and every seed runs exactly once, whatever is killed when (``_recovery``): each
start fails and retries the trials whose process died, and re-enqueues the seeds owed a run.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import optuna

from lrsearch._checks import check_choice
from lrsearch._checks import check_int
from lrsearch._checks import show
from lrsearch.rangetest import RangeTestResult
from lrsearch.search._arguments import check_objective
from lrsearch.search._arguments import check_options
from lrsearch.search._arguments import resolve_rungs
from lrsearch.training import Task
from lrsearch.training import train
from lrsearch.search._fidelity import DEFAULT_BUDGET
from lrsearch.search._fidelity import SEED_SHARE
from lrsearch.search._fidelity import Budget
from lrsearch.search._fidelity import Rungs
from lrsearch.search._fidelity import run_length
from lrsearch.search.pruners import ForecastPruner
from lrsearch.search._population import check_population
from lrsearch.search._population import plan_evals
from lrsearch.search._population import optimize_population
from lrsearch.search._recorder import Recorder
from lrsearch.search.pruners import report
from lrsearch.search._result import SearchResult
from lrsearch.search._space import SearchSpace
from lrsearch.search._space import _current
from lrsearch.search._optim_space import suggest_optimizer
from lrsearch.search._space import suggest_schedule
from lrsearch.search._optim_space import check_groups_cover
from lrsearch.search.storage import deferred
from lrsearch.search.storage import owner
from lrsearch.search.storage import set_user_attrs
from lrsearch.search._recovery import recover
from lrsearch.search._seeds import SEED_ORDER
from lrsearch.search._seeds import duplicate_of
from lrsearch.search._seeds import enqueue_seeds
from lrsearch.search._seeds import seeded
from lrsearch.search._settings import Settings
from lrsearch.search._session import Interrupt
from lrsearch.search._prior import default_sampler
from lrsearch.search._session import Progress
from lrsearch.search._session import QuietOptuna
from lrsearch.search.storage import HEARTBEAT_INTERVAL
from lrsearch.search.storage import is_sqlite
from lrsearch.search.storage import resolve_storage
from lrsearch.search.storage import single_process
from lrsearch.search.storage import is_stale
from lrsearch.search._view import Finished
from lrsearch.search._view import StudyView


def task_objective(task: Task, seed: int = 0) -> Callable[[optuna.trial.Trial], float]:
    """The objective the reference path runs: sample a schedule (and an optimizer, when the space
    searches them), train, report every evaluation (``Task.eval_steps`` of the trial's run length)."""

    def objective(trial: optuna.trial.Trial) -> float:
        schedule = suggest_schedule(trial)
        steps = run_length(trial, task.full_steps())
        n_evals = plan_evals(trial, task, steps)
        result = train(task, schedule, seed=seed, total_steps=steps, optimizer=suggest_optimizer(trial),
                       on_eval=lambda step, value: report(trial, value, step, n_evals=n_evals))
        set_user_attrs(trial, {"device": result.device})
        return result.final

    return objective


def optimize(
    objective: Callable[[optuna.trial.Trial], float] | None = None,
    *,
    task: Task | None = None,
    budget: float | None = None,
    rungs: Rungs | str | None = "auto",
    n_trials: int | None = None,
    timeout: float | None = None,
    study_name: str = "lrsearch",
    storage: Any = None,
    direction: str | None = None,
    space: SearchSpace | None = None,
    seed_from: RangeTestResult | None = None,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
    n_jobs: int = 1,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] | None = None,
    show_progress_bar: bool | None = None,
    catch: tuple[type[Exception], ...] = (),
    seed: int = 0,
    recorder: Recorder | None = None,
    heartbeat_interval: int | None = HEARTBEAT_INTERVAL,
    seed_families: Sequence[str] | None = None,
    population: int | str | None = None,
) -> SearchResult:
    """Search LR schedules for ``objective`` (or for a ``Task``), in a resumable Optuna study.

    Example:
        >>> def objective(trial):
        ...     schedule = lrsearch.suggest_schedule(trial)
        ...     ...  # train with schedule.build(optimizer, total_steps), call lrsearch.report(...)
        ...     return val_loss
        >>> result = lrsearch.optimize(objective, n_trials=30, seed_from=lrsearch.lr_find(...))
        >>> result.best_schedule.to_json()

    Args:
        objective: A plain Optuna objective that calls ``lrsearch.suggest_schedule(trial)``.
        task: Instead of an objective, a ``Task`` trained by the reference loop.
        budget: The training the whole study may spend, in full-run equivalents of optimizer
            steps (20: the steps of 20 full-length runs), counted from what trials trained (a run
            at 1/3 of the length, the default short rung, costs 1/3; a pruned run what it ran) plus
            the range test. No new trial starts that would not fit. Default: ``DEFAULT_BUDGET``
            (16) when neither ``n_trials`` nor ``timeout`` is given, else unlimited. It is the
            study's total: a resumed study counts what it spent before.
        rungs: The run lengths of the multi-fidelity search: ``"auto"`` (default) is ``Rungs()``
            (1/3 and the full run), or 1/9 and the full run under a budget of ``SMALL_BUDGET`` (4)
            full runs; ``Rungs((1/9, 1/3, 1))`` for a deeper ladder; ``None`` trains every trial at full
            length. A plain objective learns its run length from ``lrsearch.run_length(trial,
            total_steps)`` (an epoch loop: ``run_length(trial, epochs=E, steps_per_epoch=S)`` returns
            epochs); one that never calls it runs full length and is never promoted.
        n_trials, timeout: As ``Study.optimize`` (per call; a resumed study keeps its trials). The
            timeout is checked between trials, as Optuna does: a trial that has started runs to its
            end (or its pruning), so a call may return a trial's length after ``timeout``.
        study_name: The study; also names the default SQLite file ``studies/<study_name>.db``, so
            then it must be a file-safe name (letters, digits, ``_ . -``; at most 100).
        storage: ``None`` (that file), an Optuna storage URL or object, or a journal-file path
            ending in ``.log`` (for parallel workers on one machine).
        direction: ``"minimize"`` (default) or ``"maximize"``; a task brings its own.
        space: The ``SearchSpace`` (default: every searchable family).
        seed_from: A ``RangeTestResult``: its ``search_range()`` becomes the LR range and one trial
            per family is enqueued at its suggested point at the shortest rung. Each seed runs
            exactly once: re-runs skip seeds that ran; one interrupted (Ctrl-C) or killed is run
            again when the study next starts (up to 3 attempts; one whose objective raised is
            not retried). With a budget, at most ``SEED_SHARE`` (10%) of it goes to seeds (the
            families in ``SEED_ORDER`` first). Its steps count against the budget.
        sampler, pruner: Any Optuna sampler and pruner; defaults: grouped multivariate TPE seeded
            with ``seed``, and the ``ForecastPruner``.
        n_jobs: Threads, as ``Study.optimize``; refused (> 1) on SQLite, see the module docstring.
        callbacks, catch: As ``Study.optimize``.
        show_progress_bar: A bar on stderr (trials, budget spent, best value and family);
            ``None`` (default): shown when stderr is a terminal. While it shows, Optuna's per-trial
            INFO lines are off (its verbosity is restored after; one set to other than INFO is
            kept); ``False`` brings them back. Their "Best is trial N" is dropped: it ranks short
            screening runs with full ones, the bar's best is the best full-length run.
        seed: Seeds the default sampler and the reference loop.
        recorder: What records the study as it runs (a ``Recorder``: the metric's name, the range
            test, each trained trial, the end); ``None`` records nothing. ``lrsearch.optimize``,
            the entry point, hands in the dashboard's (``lrsearch.reports.DashboardRecorder``)
            writing to its ``artifacts`` folder.
        seed_families: Which families get a seed trial (default: every family in the space).
        heartbeat_interval: Seconds between heartbeats of a running trial on an RDB storage (URL or
            ``.db``); a trial silent for 3 intervals (a killed process) is marked FAIL and retried
            once with the same parameters when the study next runs. ``None`` turns this off.
        population: With a ``task``, train up to this many trials at once in one batched
            computation (``lrsearch.train_population``; ``"auto"``: what fits in memory, at most 32),
            each reported and pruned on its own; ``None`` (default) trains them one by one.

    With ``n_trials=0`` the study is only prepared (created, seeded): start parallel workers after
    that, each calling ``optimize`` on the same storage without ``seed_from``.
    """
    check_objective(objective, task)
    if task is not None and direction is not None and direction != task.direction:
        raise ValueError(f"direction must match task.direction ({task.direction!r}) but got {direction!r}.")
    direction = check_choice("direction", direction or (task.direction if task else "minimize"),
                             ("minimize", "maximize"))
    if not isinstance(study_name, str) or not study_name or any(c in study_name for c in "/\\"):
        raise ValueError(f"study_name must be a non-empty name without slashes but got {show(study_name)}.")
    n_jobs = check_int("n_jobs", n_jobs, low=-1)
    population = check_population(population, task, n_jobs)
    if n_trials is not None:
        check_int("n_trials", n_trials, low=0)
    check_options(budget=budget, timeout=timeout, space=space, sampler=sampler, pruner=pruner, callbacks=callbacks,
                  catch=catch, seed=seed, show_progress_bar=show_progress_bar, seed_from=seed_from,
                  seed_families=seed_families, heartbeat_interval=heartbeat_interval)
    if budget is None and n_trials is None and timeout is None:
        budget = DEFAULT_BUDGET
    rungs = resolve_rungs(rungs, budget)
    if recorder is not None and not isinstance(recorder, Recorder):
        raise ValueError(f"recorder must be a lrsearch.search.Recorder or None but got {type(recorder).__name__}.")
    if seed_from is not None and not isinstance(seed_from, RangeTestResult):
        raise ValueError(f"seed_from must be a RangeTestResult but got {type(seed_from).__name__}.")
    storage = resolve_storage(storage, study_name, heartbeat_interval=heartbeat_interval,
                              grace_period=None if heartbeat_interval is None else 3 * heartbeat_interval)
    if n_jobs != 1 and is_sqlite(storage):
        raise ValueError(
            "n_jobs must be 1 on SQLite: parallel workers there run enqueued seed trials twice "
            "(optuna#4002). Use storage='studies/<name>.log' (a journal file) or a PostgreSQL URL."
        )
    mode = "max" if direction == "maximize" else "min"
    space = SearchSpace(mode=mode) if space is None else space.replace(mode=mode)  # keeps the rest (tail)
    if task is not None:
        check_groups_cover(space.optimizer, task.groups)
    if seed_from is not None:
        space = space.seeded_by(seed_from)  # an explicit SearchSpace(lr=...) is kept
        if seed_families is not None and not set(seed_families) <= set(space.families):
            raise ValueError(f"seed_families must be families of the space ({', '.join(space.families)}) "
                             f"but got {list(seed_families)!r}.")
    settings = Settings(objective, task, storage, study_name, direction, space, rungs, recorder or Recorder(),
                        seed=seed, seed_from=seed_from, seed_families=seed_families, budget=budget,
                        n_trials=n_trials, timeout=timeout, sampler=sampler, pruner=pruner, n_jobs=n_jobs,
                        callbacks=tuple(callbacks or ()), show_progress_bar=show_progress_bar, catch=catch,
                        population=population)
    with single_process(storage), QuietOptuna(show_progress_bar):  # the bar, not Optuna's INFO lines
        return _run(settings)


def _run(s: Settings) -> SearchResult:
    task, space, rungs, budget, seed_from, recorder = s.task, s.space, s.rungs, s.budget, s.seed_from, s.recorder
    study = optuna.create_study(storage=s.storage, sampler=s.sampler, pruner=s.pruner or ForecastPruner(),
                                study_name=s.study_name, direction=s.direction, load_if_exists=True)
    if seed_from is None:  # a worker joining a seeded study searches its range, around its prior
        space = space.resumed(study.user_attrs.get("search_space"))
    if s.sampler is None:
        study.sampler = default_sampler(s.seed, space.prior)
    if study.direction.name.lower() != s.direction:
        raise ValueError(f"direction must match the stored study's ({study.direction.name.lower()}) "
                         f"but got {s.direction!r}.")
    study.set_user_attr("search_space", space.describe())
    study.set_user_attr("rungs", rungs.describe())
    if budget is not None and study.user_attrs.get("budget") != budget:
        study.set_user_attr("budget", budget)  # the study's total: what SearchResult and the dashboard quote
    if task is not None:
        study.set_user_attr("full_steps", task.full_steps())
    recorder.started(study, task, seed_from)  # the dashboard: the metric's name, the range test
    if seed_from is not None:
        families = list(s.seed_families) if s.seed_families is not None else sorted(
            space.families, key=lambda f: SEED_ORDER.index(f) if f in SEED_ORDER else len(SEED_ORDER))
        if budget is not None:
            families = families[:max(1, int(SEED_SHARE * budget / rungs.fractions[0] + 1e-9))]
        if "range_test_steps" not in study.user_attrs:
            study.set_user_attr("range_test_steps", int(seed_from.iterations))
        enqueue_seeds(study, space, seed_from, families)
    recover(study)  # stale RUNNING trials of killed processes, seeds owed an attempt
    if "seed_plan" in study.user_attrs:
        study.set_user_attr("seeds_enqueued", len(seeded(study.get_trials(deepcopy=False))))
    run = s.objective if s.objective is not None else task_objective(task, s.seed)  # type: ignore[arg-type]
    keeper = Budget(rungs, budget, s.n_trials)

    def wrapped(trial: optuna.trial.Trial) -> float:
        fresh = {} if "fidelity" in trial.user_attrs else {"fidelity": keeper.fresh_fraction(), "rung": 0}
        set_user_attrs(trial, {"owner": {**owner(), "trial": trial.number}, **fresh})  # one write; fresh: shortest rung
        twin = duplicate_of(study, trial)
        if twin is not None:  # two processes re-enqueued one seed: it runs once
            trial.set_user_attr("duplicate_of", twin)
            raise optuna.TrialPruned(f"a duplicate of seed trial {twin}")
        token = _current.set(space)  # set in the worker's own context: threads do not inherit it
        try:
            with deferred(trial):  # the attrs set while it runs: written at its first report and at its end
                value = run(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except Exception as err:  # recorded: a seed whose objective raises is not retried
            trial.set_user_attr("error", f"{type(err).__name__}: {err}"[:300])
            raise
        finally:
            _current.reset(token)
        recorder.trained(trial)  # while the trial still runs: finished ones take no artifacts
        return value

    if s.n_trials == 0:  # prepare only: the study exists, seeds are enqueued, workers may join
        return SearchResult(study, space)
    if keeper.step(study):  # a resumed study: promotions still owed; a spent budget runs nothing
        return SearchResult(study, space)
    with Interrupt() as interrupt, Progress(keeper.budget, s.n_trials, s.show_progress_bar) as progress:
        every = [_bookkeeping(keeper, progress), interrupt, *s.callbacks]
        try:
            if s.population is not None:  # trials trained together (lrsearch.search._population)
                optimize_population(study, s, keeper, every)
            else:
                study.optimize(wrapped, n_trials=s.n_trials, timeout=s.timeout, n_jobs=s.n_jobs, catch=s.catch,
                               callbacks=every)
        except KeyboardInterrupt:
            interrupt.hit = True
    result = SearchResult(study, space, interrupted=interrupt.hit)
    if not interrupt.hit:
        recorder.finished(result)
    return result


def _bookkeeping(keeper: Budget, progress: Progress) -> Callable[[optuna.Study, optuna.trial.FrozenTrial], None]:
    """The callback after each trial: recovery, the keeper's promotion and stop, the progress bar,
    on one read of the study (``StudyView``), read again only when recovery changed a trial."""

    looked = Finished()

    def after(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        view = StudyView(study)
        looked.new(view.trials)
        stale = any(is_stale(t) for t in looked.still_open(view.trials))
        if recover(view, view.trials) or stale:  # type: ignore[arg-type]
            view.refresh()
        keeper(view, trial)  # type: ignore[arg-type]
        progress(view, trial)  # type: ignore[arg-type]

    return after
