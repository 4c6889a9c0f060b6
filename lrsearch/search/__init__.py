"""The search: a schedule search space, seeding from a range test, plateau-wired pruning."""

from lrsearch.search._fidelity import DEFAULT_BUDGET
from lrsearch.search._fidelity import Rungs
from lrsearch.search._fidelity import run_length
from lrsearch.search.pruners._forecast import ForecastPruner
from lrsearch.search._optimize import optimize
from lrsearch.search.pruners._plateau import PlateauPruner
from lrsearch.search.pruners._report import report
from lrsearch.search._result import SearchResult
from lrsearch.search._optim_space import OptimizerSpace
from lrsearch.search._space import SearchSpace
from lrsearch.search._space import suggest_optimizer
from lrsearch.search._space import suggest_schedule


__all__ = ["DEFAULT_BUDGET", "ForecastPruner", "OptimizerSpace", "PlateauPruner", "Rungs", "run_length", "SearchResult",
           "SearchSpace", "optimize", "report", "suggest_optimizer", "suggest_schedule"]
