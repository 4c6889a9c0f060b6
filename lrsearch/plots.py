"""``lrsearch.plots``, kept importable for users who import it: the plots live in ``lrsearch.reports``."""

from lrsearch.reports import plot_family_gallery
from lrsearch.reports import plot_history
from lrsearch.reports import plot_range_test
from lrsearch.reports import plot_schedules


__all__ = ["plot_family_gallery", "plot_history", "plot_range_test", "plot_schedules"]
