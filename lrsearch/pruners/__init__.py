"""``lrsearch.pruners``: the pruners and ``report``, as Optuna users look for them (``optuna.pruners``).

They live in ``lrsearch/search/pruners/``, one module each; this package only re-exports them.
"""

from lrsearch.search.pruners import ForecastPruner
from lrsearch.search.pruners import PlateauPruner
from lrsearch.search.pruners import report


__all__ = ["ForecastPruner", "PlateauPruner", "report"]
