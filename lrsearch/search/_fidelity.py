"""The budget and the rungs over run length: one place decides how long a trial trains and counts
what the search spent.

A schedule is a function of the *fraction* of the run, so the same spec trained for 1/9 or 1/3 of
the full number of steps is a complete, fair short run (its warmup and its decay both happen).
``Rungs`` makes a successive-halving search of that: fresh candidates train at the shortest
length; whenever a candidate is in the best ``1/reduction`` of the completed runs at its length
and has not been promoted yet, it is queued again at the next length with the same parameters and
its peak LR moved by ``(length ratio) ** -lr_shift`` (the best peak LR falls as runs get longer;
the exponent is measured in ``studies/bench_lr_shift.py``); the full length comes last. A promotion
stopped by Ctrl-C or a kill is made again, like a seed (``_seeds.promotions``). The shift
is the user attr ``lr_scale``, applied by ``suggest_schedule``: the ``lr`` parameter the sampler
sees stays the one it chose, so a promoted run's better value credits the point it came from.

The budget is counted in *full-run equivalents* of optimizer steps: a trial trained at 1/9 of the
run costs 1/9, a trial pruned halfway through its run half of that, and the range test its own
steps. Every trial records what it trained in its user attrs (``fidelity``, ``run_steps``,
``full_steps``, ``n_evals``), so the count is rebuilt from the storage and survives restarts.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch.search._lengths import _EPS
from lrsearch.search._lengths import _better
from lrsearch.search._lengths import full_steps_of
from lrsearch.search._lengths import rung_of
from lrsearch.search._lengths import spent
from lrsearch.search._lengths import trial_fraction
from lrsearch.search._seeds import promotions
from lrsearch.search._transfer import sign_of
from lrsearch.search._transfer import study_model
from lrsearch.search._transfer import trial_curve
from lrsearch.search._view import Finished
from lrsearch.search.storage import set_user_attrs


#: Full runs ``optimize`` spends given no ``budget``, ``n_trials`` or ``timeout``: the largest budget
#: bench_anytime measured, as from 8 to 16 its regret still fell beyond the grid's noise on 4 of 7 tasks.
DEFAULT_BUDGET = 16.0
#: Share of the budget the range-test seeds may spend (at the shortest rung).
SEED_SHARE = 0.1
#: Default exponent of the peak-LR shift with run length, lr ∝ length ** -LR_SHIFT, measured over
#: five tasks x three families x lengths 1/9, 1/3, 1 in ``studies/bench_lr_shift.py``: 0.16 is the
#: median of the grid-best LRs' fitted slopes, 0.17 that of the parabola-refined ones (quartiles
#: -0.03 and +0.32; 0.01 is a 1% LR difference per 3x in length). Cosine shifts most (median 0.29),
#: constant (0.13) and wsd (0.08) less: a per-family rule is the next refinement.
LR_SHIFT = 0.16

_states = optuna.trial.TrialState


@dataclass(frozen=True)
class Rungs:
    """Run lengths for a successive-halving search over run length.

    The default, one short rung at 1/3 of the run, won over (1/9, 1/3, 1) and (1/4, 1/2, 1) on four
    tasks x three seeds (``studies/bench_rungs.py``): at 1/9 of a few-hundred-step run the losses
    are still near chance, so that rung ranks candidates almost at random.

    Example:
        >>> lrsearch.optimize(task=task, budget=20, rungs=lrsearch.Rungs((1/9, 1/3, 1), reduction=3))

    Args:
        fractions: Increasing fractions of the full run, the last one 1.0.
        reduction: A run is promoted to the next length when it is in the best ``1/reduction`` of
            the completed runs at its own length.
        lr_shift: A promoted run's peak LR is multiplied by ``(new length / old length) **
            -lr_shift`` (0 keeps it).
    """

    fractions: tuple[float, ...] = (1 / 3, 1.0)
    reduction: float = 3.0
    lr_shift: float = LR_SHIFT

    def __post_init__(self) -> None:
        if not isinstance(self.fractions, Sequence) or not self.fractions:
            raise ValueError(f"fractions must be a non-empty sequence but got {self.fractions!r}.")
        fracs = tuple(check_float(f"fractions[{i}]", f) for i, f in enumerate(self.fractions))
        if any(not 0 < f <= 1 for f in fracs) or any(b <= a for a, b in zip(fracs, fracs[1:])) or fracs[-1] != 1:
            raise ValueError(f"fractions must increase within (0, 1] and end at 1.0 but got {list(fracs)!r}.")
        object.__setattr__(self, "fractions", fracs)
        if check_float("reduction", self.reduction) <= 1:
            raise ValueError(f"reduction must be > 1 but got {self.reduction!r}.")
        if not 0 <= check_float("lr_shift", self.lr_shift) <= 2:
            raise ValueError(f"lr_shift must be in [0, 2] but got {self.lr_shift!r}.")

    def describe(self) -> dict[str, Any]:
        return {"fractions": list(self.fractions), "reduction": self.reduction, "lr_shift": self.lr_shift}


FULL_ONLY = Rungs((1.0,))


def run_length(trial: optuna.trial.BaseTrial, total_steps: int | None = None, *, epochs: int | None = None,
               steps_per_epoch: int | None = None) -> int:
    """How long ``trial`` trains, in the unit the training loop counts: optimizer steps for a full
    run of ``total_steps``, or epochs for a full run of ``epochs`` epochs.

    Inside ``lrsearch.optimize`` a trial may be a short run of a multi-fidelity search: train
    exactly the returned length and build the schedule for it (``schedule.build(optimizer,
    steps)``, or ``epochs * steps_per_epoch`` steps for an epoch loop), so its warmup and decay
    both happen. Outside a search it returns the full length. A short epoch run trains at least
    one epoch. The numbers are kept as the trial's user attrs ``run_steps`` and ``full_steps``
    (in optimizer steps: epochs times ``steps_per_epoch``, so the budget also counts the range
    test's steps right); a trial that never calls this counts as a full-length run.

    Example:
        >>> steps = lrsearch.run_length(trial, epochs * steps_per_epoch)
        >>> scheduler = schedule.build(optimizer, total_steps=steps)
        >>> epochs = lrsearch.run_length(trial, epochs=10, steps_per_epoch=len(loader))
        >>> scheduler = schedule.build(optimizer, total_steps=epochs * len(loader))

    Args:
        trial: The running trial.
        total_steps: Optimizer steps of a full run (give this or ``epochs``).
        epochs: Epochs of a full run: the return value is then epochs too.
        steps_per_epoch: Optimizer steps per epoch (``len(loader)``), with ``epochs``; ``None``
            counts an epoch as one step (the range test's steps are then not comparable).
    """
    fraction = trial.user_attrs.get("fidelity", 1.0)
    if epochs is None:
        if total_steps is None:
            raise ValueError("run_length needs total_steps or epochs but got neither.")
        if steps_per_epoch is not None:
            raise ValueError(f"steps_per_epoch goes with epochs, not total_steps, but got {steps_per_epoch!r}.")
        total_steps, per = check_int("total_steps", total_steps, low=1), 1
    else:
        if total_steps is not None:
            raise ValueError(f"run_length takes total_steps or epochs, not both, but got total_steps={total_steps!r}.")
        per = 1 if steps_per_epoch is None else check_int("steps_per_epoch", steps_per_epoch, low=1)
        total_steps = check_int("epochs", epochs, low=1) * per
    runs = max(1, round(fraction * (total_steps // per)))  # whole epochs in an epoch loop
    set_user_attrs(trial, {"full_steps": total_steps, "run_steps": runs * per})  # one storage write
    return runs


class Budget:
    """The callback ``optimize`` runs after every trial: promotes runs between rungs, stops the
    study when the budget is spent. Thread-safe for ``n_jobs > 1``.
    """

    def __init__(self, rungs: Rungs, budget: float | None, n_trials: int | None = None,
                 use_model: bool = True) -> None:
        self.rungs, self.budget, self.use_model = rungs, budget, use_model
        self.trials_left = n_trials  # this call's n_trials: the last one leaves no promotion behind
        self._lock = threading.Lock()
        self._ranks: dict[int, float] = {}  # a finished run's predicted full-length value, per trial
        self._ranked_by: tuple[Any, int] | None = None  # the law and full length they came from
        self._key_of: Any = None  # what ranks the runs now: None (their values) or (law, full length)
        self._ranked_with: Any = None
        # the rungs' tables, brought up to date from the trials finished since (``_absorb``)
        self._finished = Finished()
        self._runs = [0] * len(rungs.fractions)
        self._complete: list[tuple[int, optuna.trial.FrozenTrial]] = []
        self._ranked: list[list[tuple[float, int, optuna.trial.FrozenTrial]]] = [[] for _ in rungs.fractions]
        self._promoted: set[int] = set()
        self._attempt_failed = False  # a promotion attempt ended FAIL (Ctrl-C, a kill): look for owed ones
        self._looked = Finished()  # what multi_fidelity and step have seen
        self._any_finished = self._any_run_steps = False

    def fresh_fraction(self) -> float:
        return self.rungs.fractions[0]

    def multi_fidelity(self, trials: Sequence[optuna.trial.FrozenTrial]) -> bool:
        """Rungs are in use: more than one, and the objective sets its run length (``run_length``)
        or has not finished a trial yet. An objective that ignores it trains full length."""
        if len(self.rungs.fractions) < 2:
            return False
        start_over, finished, _ = self._looked.new(trials)
        if start_over:
            self._any_finished = self._any_run_steps = False
        self._any_finished = self._any_finished or bool(finished)
        self._any_run_steps = self._any_run_steps or any("run_steps" in t.user_attrs for t in finished)
        return not self._any_finished or self._any_run_steps

    def endgame(self, left: float) -> bool:
        """Too little budget left to carry a fresh run through every rung to the full length."""
        return left < sum(self.rungs.fractions) - _EPS

    def left(self, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> float:
        """Budget not yet spent or committed to waiting and running trials."""
        if self.budget is None:
            return math.inf
        return self.budget - spent(study, trials, committed=True)

    def promotion(self, study: optuna.Study, left: float,
                  trials: Sequence[optuna.trial.FrozenTrial] | None = None) -> tuple[optuna.trial.FrozenTrial, int] | None:
        """The next run to promote and the rung it goes to, or ``None``.

        Normally the best not-yet-promoted run in the top ``1/reduction`` of its rung (completed
        and pruned runs counted, pruned ones ranked last), from the highest rung down. When the
        budget left could no longer carry a fresh run to the full length (the endgame), the best
        not-yet-promoted run of the highest rung that has one is promoted whatever its share, so
        the search ends on full-length runs; a promotion that would itself bring the endgame waits
        for it, so the screening uses the budget first (at B=2: 9 fresh 1/9 runs, not 3). A
        promotion stopped by Ctrl-C or a kill comes first.
        """
        fracs = self.rungs.fractions
        trials = study.get_trials(deepcopy=False) if trials is None else trials
        key = self._rank_key(study, trials)
        self._absorb(trials, key)
        again = self._owed(trials)
        endgame = self.endgame(left)
        for r in range(len(fracs) - 2, -1, -1):
            if fracs[r + 1] > left + _EPS:
                continue
            ranked = self._ranked[r]
            owed = [t for _, number, t in ranked if number in again]
            if owed:  # a promotion stopped by Ctrl-C or a kill runs again first, whatever its rank now
                return owed[0], r + 1
            if not endgame and self.endgame(left - fracs[r + 1]):
                continue  # it would end the screening (no fresh run fits after it): the endgame promotes the best
            quota = len(ranked) if endgame else int(self._runs[r] / self.rungs.reduction + _EPS)
            for _, number, t in ranked[:quota]:  # best first
                if number not in self._promoted:
                    return t, r + 1
        return None

    def _owed(self, trials: Sequence[optuna.trial.FrozenTrial]) -> set[int]:
        """The promotions stopped by Ctrl-C or a kill and owed another attempt (``_seeds.promotions``).
        The study is scanned for them only after a promotion attempt ended FAIL, until none is owed:
        a search that was never interrupted pays nothing for it after each trial."""
        if not self._attempt_failed:
            return set()
        again = promotions(trials)[1]
        self._attempt_failed = bool(again)
        return again

    def _absorb(self, trials: Sequence[optuna.trial.FrozenTrial], key: Any) -> None:
        """Bring the rungs' tables up to ``trials``, looking only at what is new (``Finished``):
        each rung's completed and pruned runs counted (a pruned run ranks below every completed
        one), its completed runs ranked by ``key`` (ties in trial order), the runs promoted."""
        start_over, finished, added = self._finished.new(trials)
        if start_over:
            self._runs, self._complete, self._promoted = [0] * len(self.rungs.fractions), [], set()
            self._ranked = [[] for _ in self.rungs.fractions]
        self._attempt_failed = self._attempt_failed or start_over or any(
            t.state == _states.FAIL and "promoted_from" in t.user_attrs for t in finished)
        self._promoted.update(t.user_attrs["promoted_from"] for t in added if "promoted_from" in t.user_attrs)
        if self._key_of != self._ranked_with:  # a refitted law (or its first fit) ranks anew
            self._ranked_with = self._key_of
            self._ranked = [sorted((key(t), t.number, t) for rung, t in self._complete if rung == r)
                            for r in range(len(self.rungs.fractions))]
        for t in finished:
            if t.state not in (_states.COMPLETE, _states.PRUNED) or "run_steps" not in t.user_attrs:
                continue
            r = rung_of(t, self.rungs.fractions)
            if r is None:
                continue
            self._runs[r] += 1
            if t.state == _states.COMPLETE and t.value is not None and math.isfinite(t.value):
                self._complete.append((r, t))
                bisect.insort(self._ranked[r], (key(t), t.number, t))

    def _rank_key(self, study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial]) -> Any:
        """Rank a rung's runs by their loss-law prediction at the full length once the study's
        law is fitted (a short run's value favours fast-converging schedules), else by value."""
        model = study_model(study, trials) if self.use_model else None
        full = full_steps_of(study, trials)
        plain = _better(study)
        self._key_of = None if model is None or full is None else (model, full)
        if self._key_of is None:
            return plain
        sign = sign_of(study)
        if self._ranked_by is None or self._ranked_by[0] is not model or self._ranked_by[1] != full:
            self._ranks, self._ranked_by = {}, (model, full)  # a refitted law predicts anew

        def key(t: optuna.trial.FrozenTrial) -> float:  # finished runs do not change: once per law
            if t.number not in self._ranks:
                curve = trial_curve(t, sign)
                self._ranks[t.number] = plain(t) if curve is None else model.predict(curve.schedule, full).value
            return self._ranks[t.number]

        return key

    def step(self, study: optuna.Study) -> bool:
        """Enqueue the next promotion if one is due; return whether the study should stop."""
        with self._lock:
            trials = study.get_trials(deepcopy=False)
            left = self.left(study, trials)
            multi = self.multi_fidelity(trials)
            if multi:
                picked = self.promotion(study, left, trials)
                if picked is not None:
                    self._enqueue(study, *picked)
                    return False
            if len(self.rungs.fractions) < 2:
                self._looked.new(trials)
            if any(t.state == _states.WAITING for t in self._looked.still_open(trials)):
                return False
            if multi and self.endgame(left) and any(t.state == _states.COMPLETE for t in trials):
                return True  # nothing left to promote, and a fresh run could not reach the full length
            return left < (self.fresh_fraction() if multi else 1.0) - _EPS

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.trials_left is not None:
            with self._lock:
                self.trials_left -= 1
            if self.trials_left <= 0:
                return  # Optuna stops after this trial: a promotion now would be left waiting
        if self.step(study):
            study.stop()

    def _enqueue(self, study: optuna.Study, source: optuna.trial.FrozenTrial, rung: int) -> None:
        fracs = self.rungs.fractions
        scale = source.user_attrs.get("lr_scale", 1.0) * (fracs[rung] / trial_fraction(source)) ** -self.rungs.lr_shift
        attrs = {"fidelity": fracs[rung], "rung": rung, "promoted_from": source.number, "lr_scale": scale}
        study.enqueue_trial(dict(source.params), user_attrs=attrs)
