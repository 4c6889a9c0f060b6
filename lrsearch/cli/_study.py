"""``lrsearch demo | worker | report | dashboard``: studies from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


STORAGE_ENV = "LRSEARCH_STORAGE"


def _storage_arg(value: str | None, default_study: str, suffix: str = ".db") -> str:
    """A storage from the CLI: ``--storage``, else ``$LRSEARCH_STORAGE`` (a URL with a password
    stays out of shell history and out of what we print), else ``studies/<study><suffix>``; a
    ``.db`` path becomes ``sqlite:///path`` (what optuna-dashboard reads too)."""
    import os

    from lrsearch.search.storage import sqlite_path
    from lrsearch.search.storage import check_file_name

    value = value or os.environ.get(STORAGE_ENV) or f"studies/{check_file_name(default_study, '--study')}{suffix}"
    return sqlite_path(value) if "://" not in value and value.endswith(".db") else value


def _check_outputs(storage: str | None, out: str | None = None) -> None:
    """``--storage``'s file and the ``--out`` folder, checked as ``open`` and ``mkdir`` would take them,
    without writing anything (``studies/`` is lrsearch's own: made when needed)."""
    from lrsearch._checks import check_file_path
    from lrsearch._checks import check_folder
    from lrsearch.search.storage import storage_file

    path = storage_file(storage) if storage else None
    if path is not None:
        check_file_path("--storage", path)
    if out is not None:
        check_folder("--out", out)


def _safe(storage: str) -> str:
    """The storage for printing: never a password in full."""
    from lrsearch.search.storage import masked

    return masked(storage)


def _load(storage: str, study: str | None):  # noqa: ANN202
    import optuna

    from lrsearch.search.storage import check_exists
    from lrsearch.search.storage import resolve_storage

    store = resolve_storage(check_exists(storage), study or "lrsearch", heartbeat_interval=None)
    names = optuna.get_all_study_names(store)
    if study is None:
        if len(names) != 1:
            raise ValueError(f"--study must name one of the studies in {_safe(storage)} ({', '.join(names) or 'none'}).")
        study = names[0]
    if study not in names:
        raise ValueError(f"--study must name one of the studies in {_safe(storage)} ({', '.join(names) or 'none'}) "
                         f"but got {study!r}.")
    return optuna.load_study(study_name=study, storage=store)


def _write_transfer(result, out: Path, name: str, steps: int) -> None:  # noqa: ANN001
    try:  # the rule needs one completed run; the law, four
        choice = result.choice_for(steps)
        path = result.export_best(out / f"{name}_schedule_for_{steps}.json", total_steps=steps)
    except ValueError as err:
        print(f"   no schedule or law for {steps} steps: {err}")
        return
    print(f"schedule for {steps} steps: {choice.schedule.describe()} -> {path}\n   {choice.how}")
    try:
        model = result.loss_model()
    except ValueError as err:
        print(f"   predicted final: {choice.prediction} ({err})")
        return
    if not choice.trusted:  # no bare number: the prediction says why it is not one
        print(f"   predicted final: {choice.prediction}; {model.describe()['law']} law on {model.n_curves} runs")
        return
    print(f"   predicted final {choice.prediction} "
          f"({model.describe()['law']} law on {model.n_curves} runs; its held-out error {model.holdout_error:.1%})")


def _write_report(result, out: Path, name: str, k: int, target_steps: int | None = None) -> None:  # noqa: ANN001
    from lrsearch._checks import make_folder
    from lrsearch.search.storage import file_stem

    name = file_stem(name)  # a study name never chooses a folder: "/x/y" or "../z" become plain stems
    make_folder("--out", out)
    print(result.table(k, include_pruned=True))
    print(f"\ntrials: {result.counts_text()}")
    best = result.export_best(out / f"{name}_best_schedule.json")
    result.plot_schedules(min(k, 8)).savefig(out / f"{name}_top_schedules.png", dpi=100)  # a legend of 8 at most
    result.plot_history().savefig(out / f"{name}_history.png", dpi=100)
    print(f"best schedule: {result.best_schedule.describe()} -> {best}")
    if target_steps:
        _write_transfer(result, out, name, target_steps)
    print(f"plots: {out / f'{name}_top_schedules.png'}, {out / f'{name}_history.png'}")


def _cmd_demo(args: argparse.Namespace) -> int:
    import time
    import warnings

    import optuna
    import torch

    import lrsearch
    from lrsearch.cli._demo import mnist1d_task

    from lrsearch._checks import make_folder
    from lrsearch.reports import artifact_dir_for
    from lrsearch.search.storage import check_file_name

    check_file_name(args.study, "--study")  # before anything is written under its name
    storage = _storage_arg(args.storage, args.study)
    _check_outputs(storage, args.out)  # every flag is checked before the range test writes its plot
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    task, _ = mnist1d_task(args.epochs, args.device)
    size = f"{args.trials} trials" if args.trials is not None else f"a budget of {args.budget:g} full runs"
    print(f"lrsearch demo: MLP on MNIST-1D (generated offline), {size} of {args.epochs} epochs, "
          f"device {task.resolve_device()}")
    torch.manual_seed(0)
    model = task.model_fn().to(task.resolve_device())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lrsearch.RangeTestWarning)
        x, y = task.train_data
        batches = lrsearch.TensorBatches(x, y, batch_size=task.batch_size, device=task.resolve_device())
        found = lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, batches)
    for w in caught:
        print(f"range test warning: {w.message}")
    out = Path(make_folder("--out", args.out))
    found.plot().savefig(out / f"{args.study}_range_test.png", dpi=100)
    low, high = found.search_range()
    print(f"\n1. range test: {found.iterations} steps, search range {low:.3g} .. {high:.3g} "
          f"(midpoint {found.suggestion('midpoint'):.3g}, valley {found.suggestion('valley'):.3g}); "
          f"plot {out / f'{args.study}_range_test.png'}")
    result = lrsearch.optimize(task=task, n_trials=args.trials, study_name=args.study, storage=storage,
                               budget=args.budget, seed_from=found, show_progress_bar=not args.quiet, seed=args.seed)
    if result.interrupted:
        return _interrupted(result, f"lrsearch demo --study {args.study}" + (
            f" --storage {_safe(storage)}" if args.storage else ""))
    if args.trials == 0:
        print(f"\nprepared study {args.study!r} in {_safe(storage)} with "
              f"{result.study.user_attrs.get('seeds_enqueued', 0)} seed trials; start workers with:\n"
              f"   {_worker_line(args.study, storage)}")
        return 0
    print(f"\n2. search: study {args.study!r} in {_safe(storage)} "
          f"({result.study.user_attrs.get('seeds_enqueued', 0)} seed trials from the range test; "
          f"{result.spent:.2f} full runs of training spent, range test included)\n")
    _write_report(result, out, args.study, 10, target := args.target_steps or 10 * task.full_steps())
    spec = out / f"{args.study}_schedule_for_{target}.json"
    print(f"\n3. use the schedule chosen for a run of {target} steps (peak LR moved for that length):\n"
          f"   schedule = lrsearch.Schedule.from_json(open('{spec}').read())\n"
          f"   scheduler = schedule.build(optimizer, total_steps={target})")
    print(f"\nopen it in the dashboard:  lrsearch dashboard {_safe(storage)}\n"
          f"   (or: optuna-dashboard {_safe(storage)} --artifact-dir {artifact_dir_for(result.study)})")
    print(f"done in {time.perf_counter() - t0:.0f}s; best validation loss {result.best_value:.4f} "
          f"({result.best_schedule.family})")
    return 0


def _worker_line(study: str, storage: str) -> str:
    """The command that joins ``study``: one to copy as it is, so never a masked password in it."""
    if _safe(storage) == storage:
        return f"lrsearch worker --study {study} --storage {storage} --trials N"
    return (f"export {STORAGE_ENV}='<the storage URL, password included>'   # {_safe(storage)}\n"
            f"   lrsearch worker --study {study} --trials N   # reads ${STORAGE_ENV}")


def _cmd_worker(args: argparse.Namespace) -> int:
    import optuna

    import lrsearch
    from lrsearch.cli._demo import mnist1d_task

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage_arg(args.storage, args.study, suffix=".log")
    _check_outputs(storage)
    objective = _objective(args.objective) if args.objective else None
    task = None if objective else mnist1d_task(args.epochs, args.device)[0]
    result = lrsearch.optimize(objective, task=task, n_trials=args.trials, study_name=args.study, storage=storage,
                               show_progress_bar=not args.quiet, seed=args.seed)
    if result.interrupted:
        return _interrupted(result, " ".join(["lrsearch worker", f"--study {args.study}", f"--trials {args.trials}"]
                                             + ([f"--objective {args.objective}"] if args.objective else [])))
    print(f"worker done: study {args.study!r} in {_safe(storage)} now has {result.counts_text()}")
    return 0


def _interrupted(result, again: str) -> int:  # noqa: ANN001
    """After a Ctrl-C: what is kept and how to go on; the exit status of an interrupted command."""
    best = ""
    try:
        best = f"; best so far {result.best_value:.4g} ({result.best_schedule.family}, {_run_of(result.best_trial)} run)"
    except ValueError:
        pass
    print(f"\ninterrupted: study {result.study.study_name!r} keeps {result.counts_text()}{best}.\n"
          f"resume with:  {again}", file=sys.stderr)
    return 130


def _run_of(trial) -> str:  # noqa: ANN001
    """``full`` or ``1/3``: a best named before any full-length run finished says it was a short one."""
    from lrsearch.search import trial_fraction
    from lrsearch.search import run_label

    return run_label(trial_fraction(trial))


def _objective(spec: str):  # noqa: ANN202
    """``module:function`` or ``path/to/file.py:function``: the user's Optuna objective for a worker."""
    import importlib
    import importlib.util

    module_name, sep, name = spec.rpartition(":")
    if not sep or not module_name or not name.isidentifier():
        raise ValueError(f"--objective must look like MODULE:FUNCTION or FILE.py:FUNCTION but got {spec!r}.")
    try:
        if module_name.endswith(".py"):
            if not Path(module_name).is_file():
                raise ValueError(f"--objective file {module_name!r} not found.")
            folder = str(Path(module_name).resolve().parent)
            if folder not in sys.path:  # its neighbours import as they do under `python FILE.py`
                sys.path.insert(0, folder)
            found = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            module = importlib.util.module_from_spec(found)  # type: ignore[arg-type]
            found.loader.exec_module(module)  # type: ignore[union-attr]  # the user's own code, as pytest runs it
        else:
            module = importlib.import_module(module_name)
    except ValueError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever the user's module raised: name the flag
        raise ValueError(f"--objective {spec!r} could not be imported: {type(err).__name__}: {err}") from None
    objective = getattr(module, name, None)
    if not callable(objective):
        raise ValueError(f"--objective {spec!r} names no function in {module_name!r}.")
    return objective


def _cmd_report(args: argparse.Namespace) -> int:
    from lrsearch.search import SearchResult

    _check_outputs(None, args.out)
    study = _load(_storage_arg(args.storage, args.study or "demo"), args.study)
    _write_report(SearchResult(study), Path(args.out), study.study_name, args.top, args.target_steps)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from lrsearch import reports
    from lrsearch._checks import check_folder
    from lrsearch.reports import dashboard_artifact_store
    from lrsearch.search.storage import check_exists
    from lrsearch.search.storage import resolve_storage

    check_folder("--artifact-dir", args.artifact_dir)  # as mkdir: a missing parent is an error, not made
    storage = check_exists(_storage_arg(args.storage, "demo"))
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} exposes the study to the network; "
              "the dashboard has no authentication.", file=sys.stderr)
    resolved = resolve_storage(storage, "demo", heartbeat_interval=None)
    print(f"optuna-dashboard on http://{args.host}:{args.port} for {_safe(storage)} (Ctrl-C stops it); it opens on "
          f"lrsearch's note: {reports.note_path(resolved)}", flush=True)
    reports.serve_dashboard(resolved, host=args.host, port=args.port,
                 artifact_store=dashboard_artifact_store(storage, args.artifact_dir))
    return 0
