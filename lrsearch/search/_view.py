"""One read of the study per finished trial, shared by the bookkeeping that runs after it.

After every trial ``optimize`` recovers stale trials (``_recovery``), promotes and stops
(``_fidelity.Budget``) and draws the progress bar (``_session.Progress``). Each of them asked the
storage for the study's trials, and several for its user attrs, again: on SQLite or PostgreSQL
every such read is a query (and a commit), on a large study a long one. ``StudyView`` reads the
trials and the user attrs once and answers those reads from that copy; everything else (writes,
``enqueue_trial``, ``stop``) goes to the study itself, so a write through the view is a write to
the study. After its own writes a step that then reads again calls ``refresh``.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import optuna


class StudyView:
    """A study whose trials and user attrs are read once (``refresh`` reads them again)."""

    def __init__(self, study: optuna.Study) -> None:
        self.study = study
        self.reads = 0
        self.refresh()

    def refresh(self) -> None:
        self.trials = self.study.get_trials(deepcopy=False)
        self.user_attrs = self.study.user_attrs
        self.reads += 1

    def get_trials(self, deepcopy: bool = True, states: Container[optuna.trial.TrialState] | None = None
                   ) -> list[optuna.trial.FrozenTrial]:
        if deepcopy:  # nobody here writes into the trials it reads: deep copies are what the study makes
            return self.study.get_trials(deepcopy=True, states=states)
        return list(self.trials) if states is None else [t for t in self.trials if t.state in states]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.study, name)
