"""Reports of a study: the figures and notes optuna-dashboard shows (plotly and matplotlib are
imported only when a figure is built)."""

from lrsearch.reports._figures import best_per_family
from lrsearch.reports._figures import top_schedules
from lrsearch.reports._figures import trial_curve
from lrsearch.reports._figures import value_against_lr
from lrsearch.reports._notes import stop_reason
from lrsearch.reports._notes import trial_note


__all__ = ["best_per_family", "stop_reason", "top_schedules", "trial_curve", "trial_note", "value_against_lr"]
