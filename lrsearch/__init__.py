"""lrsearch: find the learning-rate schedule a PyTorch training job should use, with Optuna.

The public face. ``import lrsearch`` loads neither matplotlib nor, until a torch-level name is
used, torch: ``ScheduleLR`` is imported on first access, so ``import lrsearch.schedules`` stays
stdlib + numpy. It is also the entry point that hands the search its dashboard recorder:
``lrsearch.optimize`` is ``lrsearch.search.optimize`` with ``recorder=DashboardRecorder(artifacts)``
(see ``_entry_point``), so the search itself never imports the reports above it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import TYPE_CHECKING
from typing import Any

from lrsearch import lossmodel
from lrsearch import schedules
from lrsearch._plateau import PlateauMonitor
from lrsearch.lossmodel import LossModel
from lrsearch.lossmodel import Prediction
from lrsearch.rangetest import RangeTestResult
from lrsearch.schedules import Schedule
from lrsearch.schedules import families


__version__ = "0.1.0"

if TYPE_CHECKING:  # lets type checkers and IDEs follow the lazy names
    from lrsearch.training import ScheduleLR
    from lrsearch.training import Task
    from lrsearch.training import TensorBatches
    from lrsearch.training import train
    from lrsearch.population import PopulationWarning
    from lrsearch.population import train_population
    from lrsearch.optim import OptimizerSpec
    from lrsearch.optim import param_groups
    from lrsearch.search import DistributedTrial
    from lrsearch.search import ForecastPruner
    from lrsearch.search import OptimizerSpace
    from lrsearch.search import PlateauPruner
    from lrsearch.search import Rungs
    from lrsearch.search import run_length
    from lrsearch.search import SearchResult
    from lrsearch.search import SearchSpace
    from lrsearch.search import evaluation_steps
    from lrsearch.search import optimize
    from lrsearch.search import optimize_distributed
    from lrsearch.search import report
    from lrsearch.search import suggest_optimizer
    from lrsearch.search import suggest_schedule
    from lrsearch.rangetest import RangeTestWarning
    from lrsearch.rangetest import lr_find

_LAZY = {
    "ScheduleLR": "lrsearch.training",
    "TensorBatches": "lrsearch.training",
    "RangeTestWarning": "lrsearch.rangetest",
    "lr_find": "lrsearch.rangetest",
    "Task": "lrsearch.training",
    "train": "lrsearch.training",
    "PopulationWarning": "lrsearch.population",
    "train_population": "lrsearch.population",
    "DistributedTrial": "lrsearch.search",
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
    "optimize_distributed": "lrsearch.search",
    "evaluation_steps": "lrsearch.search",
    "report": "lrsearch.search",
    "suggest_schedule": "lrsearch.search",
}


def _entry_point() -> Any:
    """``lrsearch.optimize``: the search, handed the dashboard's recorder writing to ``artifacts``.

    Its signature and docstring are the search's, with ``artifacts`` beside ``recorder``.
    """
    from lrsearch.reports import DashboardRecorder
    from lrsearch.search import optimize as search

    @functools.wraps(search)
    def optimize(objective: Any = None, *, artifacts: str | None = "studies/artifacts", recorder: Any = None,
                 **options: Any) -> Any:
        return search(objective, recorder=recorder if recorder is not None else DashboardRecorder(artifacts),
                      **options)

    signature = inspect.signature(search)
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("recorder")
    artifacts = inspect.Parameter("artifacts", inspect.Parameter.KEYWORD_ONLY, default="studies/artifacts",
                                  annotation="str | None")
    optimize.__signature__ = signature.replace(parameters=[*params[:at], artifacts, *params[at:]])  # type: ignore[attr-defined]
    optimize.__doc__ = (search.__doc__ or "").replace("        recorder:", _ARTIFACTS + "        recorder:", 1)
    return optimize


_ARTIFACTS = """        artifacts: Folder for optuna-dashboard artifacts (the LR curve of each trial that completes
            a full-length run, the range-test plot); ``None`` to skip them (the study still gets
            its metric's name and the range test's data). Used when ``recorder`` is not given.
"""


def __getattr__(name: str) -> Any:
    if name == "optimize":
        globals()["optimize"] = _entry_point()  # built once, on first use (it imports the search)
        return globals()["optimize"]
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrsearch' has no attribute {name!r}")


__all__ = [
    "DistributedTrial",
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
    "evaluation_steps",
    "families",
    "lossmodel",
    "lr_find",
    "optimize",
    "optimize_distributed",
    "param_groups",
    "report",
    "run_length",
    "schedules",
    "suggest_optimizer",
    "suggest_schedule",
    "train",
    "train_population",
]
