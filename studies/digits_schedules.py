"""Digits MLP with Adam: a smoke test (every sane schedule reaches about 97%).

    python studies/digits_schedules.py [--trials 30] [--epochs N] [--storage URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tasks import digits_mlp  # noqa: E402
from tasks import run_study  # noqa: E402
from tasks import study_main  # noqa: E402


def run(trials: int = 30, epochs: int | None = None, storage: str | None = None, quiet: bool = False):
    return run_study(digits_mlp(), "digits_schedules", trials=trials, epochs=epochs, optimizer="adam", num_iter=100,
                     storage=storage, quiet=quiet)


if __name__ == "__main__":
    study_main(run, __doc__)
