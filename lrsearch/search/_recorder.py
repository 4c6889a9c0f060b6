"""What a search tells the outside world as it runs, through one object handed in by the entry point.

``optimize`` calls three hooks: when the study is ready (``started``), when a trial finished
training and is about to be told (``trained``: the trial is still running, so it can still take
artifacts), and when the search returns (``finished``). The base class records nothing; the
dashboard's recorder (``lrsearch.reports.DashboardRecorder``: the metric's name, the range test,
each full run's LR curve, the notes and figures) is what ``lrsearch.optimize`` hands in. So the
search never imports the reports: output sits a floor above it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import optuna


if TYPE_CHECKING:
    from lrsearch.rangetest import RangeTestResult
    from lrsearch.search._result import SearchResult


class Recorder:
    """Records nothing: subclass it and override the hooks you need."""

    def started(self, study: optuna.Study, task: Any, range_test: RangeTestResult | None) -> None:
        """The study exists (created or resumed) and knows its space; ``task`` is ``None`` for a
        plain objective; ``range_test`` is the ``seed_from`` result, if any."""

    def trained(self, trial: optuna.trial.Trial) -> None:
        """``trial`` trained to its end (not pruned, not failed) and is about to be told its value."""

    def finished(self, result: SearchResult) -> None:
        """The search returned ``result`` (not called after a Ctrl-C)."""
