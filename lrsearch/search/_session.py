"""What a user sees while a search runs, and what a Ctrl-C does.

- ``Progress``: a bar on stderr (tqdm, as Optuna's): trials finished, the budget spent in full-run
  equivalents, the best full-length value and its family. Shown by default only when stderr is a
  terminal.
- ``Interrupt``: while ``optimize`` runs in the main thread, SIGINT raises ``KeyboardInterrupt`` at
  once, as usual, and is also *recorded*: an interrupt that lands where Python swallows it (in a
  weakref or ``__del__`` callback it only prints "Exception ignored") still stops the study after
  the running trial, and ``optimize`` returns the result so far with ``interrupted=True``; the
  interrupted trial is FAIL with the user attr ``interrupted`` and is rerun on the next start if
  it was a seed or a promotion.
- ``QuietOptuna``: while the bar shows, Optuna's per-trial INFO lines are off (restored after).
"""

from __future__ import annotations

import logging
import math
import re
import signal
import sys
import threading
from types import FrameType
from typing import Any

import optuna

from lrsearch.search._lengths import spent


_TRIAL_LOGGER = "optuna.study._optimize"  # the logger whose records say "Trial N failed ..."


class _NoInterruptTraceback(logging.Filter):
    """Optuna logs a trial failed by Ctrl-C with the traceback of wherever the signal landed
    (matplotlib, torch): keep its one-line message, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is KeyboardInterrupt:
            record.exc_info = None
            record.exc_text = None
        return True


class Interrupt:
    """Record SIGINT while a search runs (main thread only; elsewhere a no-op)."""

    def __init__(self) -> None:
        self.hit = False
        self._previous: Any = None
        self._filter = _NoInterruptTraceback()

    def __enter__(self) -> Interrupt:
        logging.getLogger(_TRIAL_LOGGER).addFilter(self._filter)
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.hit:  # an interrupt Python swallowed: stop after this trial
            study.stop()

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(_TRIAL_LOGGER).removeFilter(self._filter)
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class Progress:
    """An Optuna callback drawing the search's progress on stderr."""

    def __init__(self, budget: float | None, n_trials: int | None, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else bool(enabled)
        self._bar: Any = None
        self._budget, self._n_trials = budget, n_trials

    def __enter__(self) -> Progress:
        if self.enabled:
            from tqdm.auto import tqdm

            total = self._budget if self._budget is not None else self._n_trials
            unit = "full runs" if self._budget is not None else "trials"
            self._bar = tqdm(total=total, unit=f" {unit}", file=sys.stderr, dynamic_ncols=True,
                             bar_format="{l_bar}{bar}| {n:.2f}/{total_fmt}{unit} [{elapsed}<{remaining}{postfix}]"
                             if self._budget is not None else None)
        return self

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self._bar is None:
            return
        trials = study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state.is_finished()]
        self._bar.n = spent(study, trials) if self._budget is not None else len(finished)
        self._bar.set_postfix_str(f"{len(finished)} trials, best {describe_best(study, trials)}", refresh=False)
        self._bar.refresh()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def describe_best(study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> str:
    """``"0.4312 (cosine)"``: the best full-length value and its family, or ``"-"``."""
    from lrsearch.search._lengths import _better
    from lrsearch.search._lengths import trial_fraction

    full = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
            and math.isfinite(t.value) and trial_fraction(t) >= 1]
    if not full:
        return "- (no full-length run yet)"
    best = min(full, key=_better(study))
    family = (best.user_attrs.get("schedule") or {}).get("family") or best.params.get("family", "?")
    return f"{best.value:.4g} ({family})"


_STUDY_LOGGER = "optuna.study.study"  # the logger whose records say "Trial N finished ... Best is trial M"
_OPTUNA_BEST = re.compile(r" Best is trial \d+ with value: .*$", re.DOTALL)


class _NoOptunaBest(logging.Filter):
    """Optuna's "Best is trial M" ranks every completed trial, short screening runs included: it
    can name a trial that is not lrsearch's best full-length run, so the sentence is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and " Best is trial " in record.msg:
            record.msg = _OPTUNA_BEST.sub("", record.msg)
        return True


class QuietOptuna:
    """Optuna's per-trial INFO lines while a search runs.

    With the progress bar shown (``show_progress_bar``; ``None``: stderr is a terminal) and Optuna's
    verbosity at its default (INFO), Optuna logs only warnings and errors until the search returns,
    then its verbosity is restored: the bar is the one line that moves. A verbosity the user set to
    something else (DEBUG, WARNING) is left alone; ``show_progress_bar=False`` brings Optuna's lines
    back. Whenever they print, their "Best is trial M" sentence is dropped (see ``_NoOptunaBest``).
    """

    def __init__(self, show_progress_bar: bool | None) -> None:
        self.quiet = sys.stderr.isatty() if show_progress_bar is None else bool(show_progress_bar)
        self._previous: int | None = None
        self._filter = _NoOptunaBest()

    def __enter__(self) -> QuietOptuna:
        logging.getLogger(_STUDY_LOGGER).addFilter(self._filter)
        if self.quiet and optuna.logging.get_verbosity() == optuna.logging.INFO:
            self._previous = optuna.logging.INFO
            optuna.logging.set_verbosity(optuna.logging.WARNING)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger(_STUDY_LOGGER).removeFilter(self._filter)
        if self._previous is not None:
            optuna.logging.set_verbosity(self._previous)
