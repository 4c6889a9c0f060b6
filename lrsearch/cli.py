"""The ``lrsearch`` command line: the only place in the package that prints or exits."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lrsearch import __version__
from lrsearch.schedules import Schedule
from lrsearch.schedules import families
from lrsearch.schedules import get_family


def _key_values(pairs: list[str], option: str) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` pairs; a value is JSON when it parses as JSON, else a string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} must look like KEY=VALUE but got {pair!r}.")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _schedule_from_args(args: argparse.Namespace) -> Schedule:
    source = args.spec
    if source.endswith(".json") or Path(source).is_file():
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"spec file {source!r} does not exist.")
        base = Schedule.from_json(path.read_text())
    else:
        base = Schedule(get_family(source).name)
    changes: dict[str, Any] = {}
    if args.lr is not None:
        changes["lr"] = args.lr
    if args.param:
        changes["params"] = {**base.params, **_key_values(args.param, "--param")}
    if args.warmup:
        changes["warmup"] = {**base.warmup, **_key_values(args.warmup, "--warmup")}
    return base.replace(**changes) if changes else base


def _families_table() -> str:
    lines = []
    for name in families():
        fam = get_family(name)
        params = ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                           for k, v in Schedule(name).to_dict()["params"].items())
        lines.append(f"{name:<16} {fam.summary}\n{'':<16} {params or '(no parameters)'}")
    return "\n".join(lines)


def _cmd_families(args: argparse.Namespace) -> int:
    print(_families_table())
    return 0


def _cmd_schedule(args: argparse.Namespace) -> int:
    from lrsearch.plots import plot_schedules

    schedule = _schedule_from_args(args)
    print(json.dumps(schedule.to_dict(), indent=2))
    out = Path(args.out or f"{schedule.family}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_schedules({schedule.describe(): schedule}, args.steps, log_scale=args.log).savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


def _cmd_gallery(args: argparse.Namespace) -> int:
    from lrsearch.plots import plot_family_gallery

    print(f"lrsearch {__version__}: {len(families())} schedule families\n")
    print(_families_table())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plot_family_gallery(args.steps).savefig(out, dpi=90)
    print(f"\nwrote {out} (every family at its defaults, {args.steps} steps)")
    return 0


def _storage_arg(value: str | None, default_study: str) -> str:
    """A storage URL from the CLI: a ``.db`` path becomes ``sqlite:///path``; URLs and ``.log``
    journal paths pass through; ``None`` is the default ``studies/<study>.db``."""
    if value is None:
        return f"sqlite:///studies/{default_study}.db"
    if "://" not in value and value.endswith(".db"):
        return f"sqlite:///{value}"
    return value


def _safe(storage: str) -> str:
    """The storage for printing: never a password in full."""
    from lrsearch.search._storage import masked

    return masked(storage)


def _load(storage: str, study: str | None):  # noqa: ANN202
    import optuna

    from lrsearch.search._storage import resolve_storage

    store = resolve_storage(storage, study or "lrsearch", heartbeat_interval=None)
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
        print(f"schedule for {steps} steps: {choice.schedule.describe()} -> {path}\n   {choice.how}")
        model = result.loss_model()
    except ValueError as err:
        print(f"   no schedule or law for {steps} steps: {err}")
        return
    held = "none (one run length)" if model.holdout_error is None else f"{model.holdout_error:.1%}"
    print(f"   predicted final {choice.predicted.value:.4g} +/- {choice.predicted.std:.2g} "
          f"({model.describe()['law']} law on {model.n_curves} runs; its held-out error {held})")


def _write_report(result, out: Path, name: str, k: int, target_steps: int | None = None) -> None:  # noqa: ANN001
    out.mkdir(parents=True, exist_ok=True)
    print(result.table(k, include_pruned=True))
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    print(f"\ntrials: {counts}")
    best = result.export_best(out / f"{name}_best_schedule.json")
    result.plot_schedules(k).savefig(out / f"{name}_top_schedules.png", dpi=100)
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
    from lrsearch._demo import mnist1d_task

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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    found.plot().savefig(out / f"{args.study}_range_test.png", dpi=100)
    low, high = found.search_range()
    print(f"\n1. range test: {found.iterations} steps, search range {low:.3g} .. {high:.3g} "
          f"(midpoint {found.suggestion('midpoint'):.3g}, valley {found.suggestion('valley'):.3g}); "
          f"plot {out / f'{args.study}_range_test.png'}")
    storage = _storage_arg(args.storage, args.study)
    result = lrsearch.optimize(task=task, n_trials=args.trials, study_name=args.study, storage=storage,
                               budget=args.budget, seed_from=found, show_progress_bar=not args.quiet, seed=args.seed)
    if args.trials == 0:
        print(f"\nprepared study {args.study!r} in {_safe(storage)} with "
              f"{result.study.user_attrs.get('seeds_enqueued', 0)} seed trials; start workers with:\n"
              f"   lrsearch worker --study {args.study} --storage {_safe(storage)} --trials N")
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
          f"   (or: optuna-dashboard {_safe(storage)} --artifact-dir studies/artifacts)")
    print(f"done in {time.perf_counter() - t0:.0f}s; best validation loss {result.best_value:.4f} "
          f"({result.best_schedule.family})")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    import optuna

    import lrsearch
    from lrsearch._demo import mnist1d_task

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = args.storage or f"studies/{args.study}.log"
    task, _ = mnist1d_task(args.epochs, args.device)
    result = lrsearch.optimize(task=task, n_trials=args.trials, study_name=args.study, storage=storage,
                               show_progress_bar=not args.quiet, seed=args.seed)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    print(f"worker done: study {args.study!r} in {_safe(storage)} now has {counts}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from lrsearch.search import SearchResult

    study = _load(_storage_arg(args.storage, args.study or "demo"), args.study)
    _write_report(SearchResult(study), Path(args.out), study.study_name, args.top, args.target_steps)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from optuna_dashboard import run_server

    from lrsearch.search._dashboard import artifact_store
    from lrsearch.search._storage import resolve_storage

    storage = _storage_arg(args.storage, "demo")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host} exposes the study to the network; "
              "the dashboard has no authentication.", file=sys.stderr)
    print(f"optuna-dashboard on http://{args.host}:{args.port} for {_safe(storage)} (Ctrl-C stops it)", flush=True)
    run_server(resolve_storage(storage, "demo", heartbeat_interval=None), host=args.host, port=args.port,
               artifact_store=artifact_store(args.artifact_dir))
    return 0


def _run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of commands that train the demo task."""
    p.add_argument("--epochs", type=int, default=12, help="epochs per trial (default 12)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrsearch", description=__doc__)
    parser.add_argument("--version", action="version", version=f"lrsearch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("families", help="list schedule families and their default parameters")
    p.set_defaults(func=_cmd_families)

    p = sub.add_parser("schedule", help="draw one schedule (a family or a JSON spec) to a PNG")
    p.add_argument("spec", help="a family name or a path to a JSON spec")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="family parameter, JSON value (repeatable), e.g. milestones=[0.3,0.6]")
    p.add_argument("--warmup", action="append", default=[], metavar="KEY=VALUE",
                   help="warmup setting: frac, shape, start_ratio (repeatable)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps to draw (default 1000)")
    p.add_argument("--log", action="store_true", help="logarithmic LR axis")
    p.add_argument("--out", help="PNG path (default FAMILY.png)")
    p.set_defaults(func=_cmd_schedule)

    p = sub.add_parser("gallery", help="draw every family at its defaults to a PNG")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--out", default="studies/schedule_gallery.png")
    p.set_defaults(func=_cmd_gallery)

    p = sub.add_parser("demo", help="the main job: range test, seeded search with pruning, report (MNIST-1D)")
    p.add_argument("--budget", type=float, default=8.0,
                   help="training to spend, in full-run equivalents (default 8; the study's total)")
    p.add_argument("--trials", type=int, default=None, help="stop after this many trials (0 prepares for workers)")
    p.add_argument("--study", default="demo", help="study name (default demo)")
    p.add_argument("--storage", help="storage URL, .db or .log path (default studies/<study>.db)")
    p.add_argument("--out", default="studies", help="folder for plots and the best spec")
    p.add_argument("--target-steps", type=int, help="run length to choose a schedule for (default 10 full runs)")
    _run_flags(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("worker", help="join a demo study from another process (journal file by default)")
    p.add_argument("--study", default="demo")
    p.add_argument("--storage", help="shared storage: a .log journal path (default studies/<study>.log) or a URL")
    p.add_argument("--trials", type=int, default=10)
    _run_flags(p)
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("report", help="print a study's top schedules and write its plots")
    p.add_argument("storage", nargs="?", help="storage URL, .db or .log path (default studies/demo.db)")
    p.add_argument("--study", help="study name (needed when the storage holds several)")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--target-steps", type=int, help="also choose and export the schedule for a run this long")
    p.add_argument("--out", default="studies")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("dashboard", help="serve optuna-dashboard for a study storage")
    p.add_argument("storage", nargs="?", help="storage URL, .db or .log path (default studies/demo.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--artifact-dir", default="studies/artifacts")
    p.set_defaults(func=_cmd_dashboard)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, ImportError) as err:
        print(f"lrsearch {args.command}: error: {err}", file=sys.stderr)
        return 2
