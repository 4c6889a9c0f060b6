"""Pruners and the reporting hook, one module each (as ``optuna.pruners``); public as ``lrsearch.pruners``."""

from lrsearch.search.pruners._forecast import ForecastPruner
from lrsearch.search.pruners._plateau import PlateauPruner
from lrsearch.search.pruners._report import evaluation_steps
from lrsearch.search.pruners._report import report


__all__ = ["ForecastPruner", "PlateauPruner", "evaluation_steps", "report"]
