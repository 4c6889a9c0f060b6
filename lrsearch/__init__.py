"""lrsearch: find the learning-rate schedule a PyTorch training job should use, with Optuna.

The public face. ``import lrsearch`` loads neither matplotlib nor, until a torch-level name is
used, torch: ``ScheduleLR`` is imported on first access, so ``import lrsearch.schedules`` stays
stdlib + numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

from lrsearch import lossmodel
from lrsearch import schedules
from lrsearch._plateau import PlateauMonitor
from lrsearch.rangetest._result import RangeTestResult
from lrsearch._version import __version__
from lrsearch.lossmodel import LossModel
from lrsearch.lossmodel import Prediction
from lrsearch.schedules import Schedule
from lrsearch.schedules import families


if TYPE_CHECKING:  # lets type checkers and IDEs follow the lazy names
    from lrsearch.training._data import TensorBatches
    from lrsearch.training._loop import Task
    from lrsearch.training._loop import train
    from lrsearch.population import PopulationWarning
    from lrsearch.population import train_population
    from lrsearch.optim import OptimizerSpec
    from lrsearch.optim import param_groups
    from lrsearch.search import ForecastPruner
    from lrsearch.search import OptimizerSpace
    from lrsearch.search import PlateauPruner
    from lrsearch.search import Rungs
    from lrsearch.search import run_length
    from lrsearch.search import SearchResult
    from lrsearch.search import SearchSpace
    from lrsearch.search import optimize
    from lrsearch.search import report
    from lrsearch.search import suggest_optimizer
    from lrsearch.search import suggest_schedule
    from lrsearch.rangetest._lr_find import RangeTestWarning
    from lrsearch.rangetest._lr_find import lr_find
    from lrsearch.training._scheduler import ScheduleLR

_LAZY = {
    "ScheduleLR": "lrsearch.training._scheduler",
    "TensorBatches": "lrsearch.training._data",
    "RangeTestWarning": "lrsearch.rangetest._lr_find",
    "lr_find": "lrsearch.rangetest._lr_find",
    "Task": "lrsearch.training._loop",
    "train": "lrsearch.training._loop",
    "PopulationWarning": "lrsearch.population",
    "train_population": "lrsearch.population",
    "ForecastPruner": "lrsearch.search",
    "OptimizerSpace": "lrsearch.search",
    "OptimizerSpec": "lrsearch.optim",
    "param_groups": "lrsearch.optim",
    "suggest_optimizer": "lrsearch.search",
    "PlateauPruner": "lrsearch.search",
    "Rungs": "lrsearch.search",
    "run_length": "lrsearch.search",
    "SearchResult": "lrsearch.search",
    "SearchSpace": "lrsearch.search",
    "optimize": "lrsearch.search",
    "report": "lrsearch.search",
    "suggest_schedule": "lrsearch.search",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrsearch' has no attribute {name!r}")


__all__ = [
    "ForecastPruner",
    "LossModel",
    "OptimizerSpace",
    "OptimizerSpec",
    "PlateauMonitor",
    "PlateauPruner",
    "PopulationWarning",
    "Prediction",
    "RangeTestResult",
    "RangeTestWarning",
    "Rungs",
    "Schedule",
    "ScheduleLR",
    "SearchResult",
    "SearchSpace",
    "Task",
    "TensorBatches",
    "__version__",
    "families",
    "lossmodel",
    "lr_find",
    "optimize",
    "param_groups",
    "report",
    "run_length",
    "schedules",
    "suggest_optimizer",
    "suggest_schedule",
    "train",
    "train_population",
]
