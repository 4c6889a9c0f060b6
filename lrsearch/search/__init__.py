"""The search: a schedule search space, seeding from a range test, rungs over run length, pruning,
``optimize`` and its ``SearchResult``; pruners in ``search/pruners/``, storages in ``search/storage/``."""

from lrsearch.search._distributed import DistributedTrial
from lrsearch.search._distributed import optimize_distributed
from lrsearch.search._fidelity import DEFAULT_BUDGET
from lrsearch.search._fidelity import Rungs
from lrsearch.search._fidelity import run_length
from lrsearch.search._optim_space import OptimizerSpace
from lrsearch.search._optimize import optimize
from lrsearch.search._prior import STARTUP_TRIALS
from lrsearch.search._prior import TAIL_ABOVE
from lrsearch.search._prior import TAIL_BELOW
from lrsearch.search._prior import LRPrior
from lrsearch.search._prior import PriorSampler
from lrsearch.search._prior import default_sampler
from lrsearch.search._prior import widened
from lrsearch.search._recorder import Recorder
from lrsearch.search._result import SearchResult
from lrsearch.search._lengths import trial_fraction
from lrsearch.search._result import run_label
from lrsearch.search._space import DEFAULT_FAMILIES
from lrsearch.search._space import SearchSpace
from lrsearch.search._optim_space import suggest_optimizer
from lrsearch.search._space import suggest_schedule
from lrsearch.search.pruners import ForecastPruner
from lrsearch.search.pruners import PlateauPruner
from lrsearch.search.pruners import evaluation_steps
from lrsearch.search.pruners import report


__all__ = ["DEFAULT_BUDGET", "DEFAULT_FAMILIES", "DistributedTrial", "ForecastPruner", "LRPrior", "OptimizerSpace",
           "PlateauPruner", "PriorSampler", "Recorder", "Rungs", "STARTUP_TRIALS", "SearchResult", "SearchSpace",
           "TAIL_ABOVE", "TAIL_BELOW", "default_sampler", "evaluation_steps", "optimize", "optimize_distributed",
           "report", "run_length", "suggest_optimizer", "suggest_schedule", "widened"]
