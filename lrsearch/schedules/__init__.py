"""Learning-rate schedules as plain data with closed-form math (stdlib and numpy only).

Importing this package loads neither torch nor optuna.
"""

# Family modules register themselves on import; this order is the order of ``families()``.
from lrsearch.schedules import _decay  # noqa: F401, I001
from lrsearch.schedules import _steps  # noqa: F401
from lrsearch.schedules import _cycles  # noqa: F401
from lrsearch.schedules import _onecycle  # noqa: F401
from lrsearch.schedules import _piecewise  # noqa: F401
from lrsearch.schedules import _product  # noqa: F401
from lrsearch.schedules._anneal import anneal_const
from lrsearch.schedules._anneal import anneal_cos
from lrsearch.schedules._anneal import anneal_exp
from lrsearch.schedules._anneal import anneal_linear
from lrsearch.schedules._anneal import anneal_poly
from lrsearch.schedules._anneal import combine
from lrsearch.schedules._anneal import combined_cos
from lrsearch.schedules._params import Categorical
from lrsearch.schedules._params import FloatRange
from lrsearch.schedules._params import IntRange
from lrsearch.schedules._params import SortedFractions
from lrsearch.schedules._registry import FAMILIES
from lrsearch.schedules._registry import Family
from lrsearch.schedules._registry import families
from lrsearch.schedules._registry import get_family
from lrsearch.schedules._spec import Schedule
from lrsearch.schedules._specdata import plain
from lrsearch.schedules._tail import is_update_step
from lrsearch.schedules._tail import tail_every
from lrsearch.schedules._tail import tail_start
from lrsearch.schedules._warmup import WARMUP_PARAMS


__all__ = [
    "FAMILIES",
    "WARMUP_PARAMS",
    "Categorical",
    "Family",
    "FloatRange",
    "IntRange",
    "Schedule",
    "SortedFractions",
    "anneal_const",
    "anneal_cos",
    "anneal_exp",
    "anneal_linear",
    "anneal_poly",
    "combine",
    "combined_cos",
    "families",
    "get_family",
]
