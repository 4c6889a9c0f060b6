"""Reports of a study: plots (matplotlib), the figures and notes optuna-dashboard shows, and the
dashboard's artifacts (plotly and matplotlib are imported only when a figure is built)."""

from lrsearch.reports._artifacts import artifact_dir_for
from lrsearch.reports._artifacts import dashboard_artifact_store
from lrsearch.reports._dashboard import DashboardRecorder
from lrsearch.reports._figures import best_per_family
from lrsearch.reports._figures import top_schedules
from lrsearch.reports._figures import trial_curve
from lrsearch.reports._figures import value_against_lr
from lrsearch.reports._notes import stop_reason
from lrsearch.reports._notes import trial_note
from lrsearch.reports._plots import plot_family_gallery
from lrsearch.reports._plots import plot_history
from lrsearch.reports._plots import plot_range_test
from lrsearch.reports._plots import plot_runs
from lrsearch.reports._plots import plot_schedules
from lrsearch.reports._serve import note_path
from lrsearch.reports._serve import serve as serve_dashboard


__all__ = ["DashboardRecorder", "artifact_dir_for", "best_per_family", "dashboard_artifact_store", "plot_family_gallery", "plot_history", "plot_range_test", "plot_runs", "plot_schedules",
           "note_path", "serve_dashboard", "stop_reason", "top_schedules", "trial_curve", "trial_note", "value_against_lr"]
