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
from collections.abc import Sequence
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


class Finished:
    """The trials of a study's trial list that finished since the last look, found without
    scanning the whole list: trial ``i`` of the list is trial number ``i`` (as ``get_trials``
    returns them), so only the new ones and those still open last time are looked at. A finished
    trial does not change, so what a caller worked out from it can be kept."""

    def __init__(self) -> None:
        self._seen = 0  # trials[:_seen] were looked at
        self._open: list[int] = []  # of those, the ones not finished then

    def new(self, trials: Sequence[optuna.trial.FrozenTrial]
            ) -> tuple[bool, list[optuna.trial.FrozenTrial], Sequence[optuna.trial.FrozenTrial]]:
        """``(start_over, finished, added)``: whether this is not the list seen before (the caller
        drops what it kept; everything is new again), the trials finished since the last call,
        and the trials added to the list since then (whatever their state)."""
        n = len(trials)
        start_over = n < self._seen or any(trials[i].number != i for i in {self._seen - 1, n - 1} if 0 <= i < n)
        if start_over:
            self._seen, self._open = 0, []
        look = [*self._open, *range(self._seen, n)]
        added = trials[self._seen:]
        self._open = [i for i in look if not trials[i].state.is_finished()]
        self._seen = n
        return start_over, [trials[i] for i in look if trials[i].state.is_finished()], added

    def still_open(self, trials: Sequence[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
        """The trials not finished at the last ``new(trials)`` (waiting and running ones)."""
        return [trials[i] for i in self._open if i < len(trials)]
