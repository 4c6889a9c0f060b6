"""The ``lrsearch`` command line: the only place in the package that prints or exits."""

from __future__ import annotations

import argparse
import sys

from lrsearch import __version__
from lrsearch.cli._schedules import _cmd_families
from lrsearch.cli._schedules import _cmd_gallery
from lrsearch.cli._schedules import _cmd_schedule
from lrsearch.cli._study import _cmd_dashboard
from lrsearch.cli._study import _cmd_demo
from lrsearch.cli._study import _cmd_report
from lrsearch.cli._study import _cmd_worker
from lrsearch.cli._study import _safe


__all__ = ["_safe", "build_parser", "main"]


def _count(low: int, high: int | None = None):  # noqa: ANN202
    """An argparse type: an integer in [low, high], refused with the rule before any command runs."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer but got {text!r}") from None
        if value < low or (high is not None and value > high):
            rule = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"must be {rule} but got {value}")
        return value

    return count


def _positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number but got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0 but got {text}")
    return value


DESCRIPTION = """Find the learning-rate schedule a PyTorch training job should use: an LR range test,
then a budgeted Optuna search over schedule families (cosine, wsd, onecycle, ...) with short
screening runs and pruning, and a dashboard of the result.
In Python: lrsearch.lr_find, lrsearch.optimize, lrsearch.Schedule."""

EPILOG = """examples:
  lrsearch demo                      a whole search on MNIST-1D (under a minute on a CPU)
  lrsearch dashboard                 look at it in optuna-dashboard, http://127.0.0.1:8080
  lrsearch schedule studies/demo_best_schedule.json
                                     draw the spec the search exported
  lrsearch COMMAND --help            what a command does, its options"""

COMMANDS = {
    "families": "List the schedule families the search chooses from, with their default parameters.",
    "schedule": "Draw one schedule to a PNG: a family at its defaults (changed with --lr, --param, --warmup) "
                "or a JSON spec the search exported (drawn at its chosen_for run length when it has one).",
    "gallery": "Draw every schedule family at its defaults, one panel each, to a PNG.",
    "demo": "The whole job on MNIST-1D: a range test, a budgeted search seeded from it, with pruning and "
            "short screening runs, then the table of the best schedules, the plots and the best spec.",
    "worker": "Join a study from another process or machine (a journal file or a PostgreSQL URL), to run "
              "trials in parallel; the demo's task unless --objective names your own.",
    "report": "Print a study's best schedules and write its plots and the best spec (optionally the one "
              "chosen for a longer run, --target-steps).",
    "dashboard": "Serve optuna-dashboard for a study's storage; it opens on lrsearch's note (the winner, its "
                 "trained peak LR and schedule, why every trial stopped).",
}


def _run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of commands that train the demo task."""
    p.add_argument("--epochs", type=_count(1), default=12, help="epochs per trial (default 12)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, ...")
    p.add_argument("--seed", type=_count(0, 2**32 - 1), default=0,
                   help="seeds the sampler and the training runs (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrsearch", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--steps", type=_count(1, 10**7), help="optimizer steps to draw (default: a spec's "
                   "chosen_for.total_steps, else 1000)")
    p.add_argument("--log", action="store_true", help="logarithmic LR axis")
    p.add_argument("--out", help="PNG path (default FAMILY.png)")
    p.set_defaults(func=_cmd_schedule)

    p = sub.add_parser("gallery", help="draw every family at its defaults to a PNG")
    p.add_argument("--steps", type=_count(1, 10**7), default=1000, help="optimizer steps to draw (default 1000)")
    p.add_argument("--out", default="studies/schedule_gallery.png", help="PNG path (default studies/schedule_gallery.png)")
    p.set_defaults(func=_cmd_gallery)

    p = sub.add_parser("demo", help="the main job: range test, seeded search with pruning, report (MNIST-1D)")
    p.add_argument("--budget", type=_positive, default=8.0,
                   help="training to spend, in full-run equivalents (default 8; the study's total)")
    p.add_argument("--trials", type=_count(0), default=None, help="stop after this many trials (0 prepares for workers)")
    p.add_argument("--study", default="demo", help="study name (default demo)")
    p.add_argument("--storage", help="storage URL, .db or .log path (default studies/<study>.db)")
    p.add_argument("--out", default="studies", help="folder for plots and the best spec")
    p.add_argument("--target-steps", type=_count(1), help="run length to choose a schedule for (default 10 full runs)")
    _run_flags(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("worker", help="join a study from another process (journal file by default)")
    p.add_argument("--study", default="demo", help="the study to join (default demo)")
    p.add_argument("--storage", help="shared storage: a .log journal path or a URL (default $LRSEARCH_STORAGE, "
                                     "else studies/<study>.log)")
    p.add_argument("--trials", type=_count(0), default=10, help="trials this worker runs (default 10)")
    p.add_argument("--objective", metavar="MODULE:FUNCTION",
                   help="your Optuna objective (module or FILE.py, then the function; default: the demo's MNIST-1D task)")
    _run_flags(p)
    p.set_defaults(func=_cmd_worker)

    p = sub.add_parser("report", help="print a study's top schedules and write its plots")
    p.add_argument("storage", nargs="?", help="storage URL, .db or .log path (default studies/demo.db)")
    p.add_argument("--study", help="study name (needed when the storage holds several)")
    p.add_argument("--top", type=_count(1), default=10, help="rows of the table and curves in the plot (default 10)")
    p.add_argument("--target-steps", type=_count(1), help="also choose and export the schedule for a run this long")
    p.add_argument("--out", default="studies", help="folder for the spec and the plots (default studies)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("dashboard", help="serve optuna-dashboard for a study storage")
    p.add_argument("storage", nargs="?", help="storage URL, .db or .log path (default studies/demo.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=_count(0, 65535), default=8080, help="port (default 8080)")
    p.add_argument("--artifact-dir", default="studies/artifacts",
                   help="folder of the trials' artifacts (default studies/artifacts)")
    p.set_defaults(func=_cmd_dashboard)
    for name, command in sub.choices.items():  # each command's own --help opens with what it does
        command.description = COMMANDS[name]
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, ImportError) as err:
        print(f"lrsearch {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lrsearch {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a folder or file the command could not write: no traceback
        print(f"lrsearch {args.command}: error: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return 2
