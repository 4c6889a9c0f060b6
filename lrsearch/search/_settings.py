"""One object for what ``optimize`` has checked and decided, handed to the loop that runs the study
(``_optimize._run``) and to the population rounds (``_population``), instead of 21 arguments."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from lrsearch.rangetest import RangeTestResult
from lrsearch.search._fidelity import Rungs
from lrsearch.search._recorder import Recorder
from lrsearch.search._space import SearchSpace
from lrsearch.training import Task


Callback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


@dataclass(frozen=True)
class Settings:
    """A checked ``optimize`` call: the objective (or task), where the study lives, what it searches,
    how long it runs and what records it."""

    objective: Callable[[optuna.trial.Trial], float] | None
    task: Task | None
    storage: Any
    study_name: str
    direction: str
    space: SearchSpace
    rungs: Rungs
    recorder: Recorder
    seed: int = 0
    seed_from: RangeTestResult | None = None
    seed_families: Sequence[str] | None = None
    budget: float | None = None
    n_trials: int | None = None
    timeout: float | None = None
    sampler: optuna.samplers.BaseSampler | None = None
    pruner: optuna.pruners.BasePruner | None = None
    n_jobs: int = 1
    callbacks: Sequence[Callback] = ()
    show_progress_bar: bool | None = None
    catch: tuple[type[Exception], ...] = ()
    population: int | str | None = None
