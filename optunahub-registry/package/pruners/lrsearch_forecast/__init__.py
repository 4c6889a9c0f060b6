"""OptunaHub package ``pruners/lrsearch_forecast``: lrsearch's ``ForecastPruner`` for plain Optuna studies.

``ForecastPruner`` judges a trial by where its learning curve is heading at the end of its LR
schedule, from how far its completed peers still dropped with as much LR anneal ahead of them. It
reads each trial's schedule (the user attr ``schedule``, set by ``suggest_schedule``) and its
number of evaluations (``n_evals``, set by ``report``), so an objective samples its schedule with
``suggest_schedule`` and reports with ``report``; both are re-exported here.
"""

from lrsearch.pruners import ForecastPruner
from lrsearch.pruners import report
from lrsearch.search import suggest_schedule


__all__ = ["ForecastPruner", "report", "suggest_schedule"]
