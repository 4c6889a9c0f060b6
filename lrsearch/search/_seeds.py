"""Seed trials: one per family at its range-test point, planned in the study, run exactly once.

The plan (``seed_plan``: family -> params and the rule the LR came from) is a study attr, so any
worker can see which seeds are owed (``_recovery.recover`` re-enqueues them). Each attempt carries
``seed_key`` (its family); an attempt that starts when another attempt of its seed has run, or an
earlier one is alive, is a duplicate and is pruned before it trains (``duplicate_of``).

Promotions (``_fidelity.Budget``) follow the same rules, keyed by the trial they were promoted
from (``planned_key``): ``owed`` says whether a seed or a promotion needs another attempt.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from lrsearch.rangetest import RangeTestResult
from lrsearch.search.storage import is_stale
from lrsearch.search._prior import widened
from lrsearch.search._space import SearchSpace


# Where each family's seed LR comes from (studies/bench_lr_find.py: ``midpoint`` is nearest the
# best constant LR, ``steep`` nearest the best one-cycle peak; decays sit in between).
_HOLD = ("constant", "plateau")
_RISE = ("onecycle", "cyclic")
# Which families are seeded first when the budget affords only some (the strong defaults first).
#: Attempts a seed or a promotion gets before it is given up (each one stopped by Ctrl-C or a kill).
MAX_ATTEMPTS = 3
SEED_ORDER = ("cosine", "onecycle", "wsd", "linear", "schedule_free", "constant", "multistep", "cosine_restarts",
              "flat_cos", "poly", "exponential", "step", "inverse_sqrt", "cyclic", "plateau")


def seed_lr(result: RangeTestResult, family: str, low: float, high: float) -> tuple[float, str]:
    """The seed LR for ``family`` from a range test, and the rule it came from. A suggestion
    outside the range test's range and its tails (``_prior.widened``) is not used: on a noisy
    curve ``steep`` can sit decades below every sane LR (a regression MLP: 6e-7 against a range
    of 5e-4 .. 0.36), and the seed then came out at 1e-4. Nor is a ``steep`` below ``midpoint``:
    on 7 tasks x 6 families no grid-best LR sat more than 0.14 decade under the midpoint."""
    lo, hi = widened(result.search_range(), result.sweep())

    def plausible(lr: float | None) -> float | None:
        return lr if lr is not None and lo <= lr <= hi else None

    mid, steep = plausible(result.suggestion("midpoint")), plausible(result.suggestion("steep"))
    if mid and steep and steep < mid:  # never below the midpoint: no family's grid-best LR sat more
        steep = mid                    # than 0.14 decade under it on 7 tasks (studies/bench_grid.md)
    if family in _HOLD and mid:
        return mid, "midpoint"
    if family in _RISE and steep:
        return steep, "steep"
    if mid and steep:
        return math.sqrt(mid * steep), "sqrt(midpoint*steep)"
    return math.sqrt(low * high), "range centre"


def seed_key(trial: FrozenTrial) -> str | None:
    """The seed ``trial`` is an attempt of (its family), or ``None`` for a sampled trial."""
    key = trial.user_attrs.get("seed_key")
    if key is None and "seed" in trial.user_attrs:  # studies seeded before keys existed
        key = trial.params.get("family")
    return key if isinstance(key, str) else None


def planned_key(trial: FrozenTrial) -> str | None:
    """The planned run ``trial`` is an attempt of: its seed, ``"promotion:N"`` for a promotion of trial
    ``N``, or ``None`` for a sampled trial."""
    source = trial.user_attrs.get("promoted_from")
    if isinstance(source, int) and not isinstance(source, bool):
        return f"promotion:{source}"
    return seed_key(trial)


def owed(attempts: Sequence[FrozenTrial], now: float, failed: set[int] | frozenset[int] = frozenset()) -> bool:
    """Whether a planned run (a seed or a promotion) with these ``attempts`` needs another one.

    Not when an attempt ran to a result, one waits or is alive (``failed``: numbers just marked
    FAIL here), ``MAX_ATTEMPTS`` were made, or one's objective raised an ordinary exception (it would
    raise again); an attempt stopped by Ctrl-C or a kill leaves it owed.
    """
    attempts = [t for t in attempts if "duplicate_of" not in t.user_attrs]
    if any(ran(t) for t in attempts) or len(attempts) >= MAX_ATTEMPTS or any("error" in t.user_attrs for t in attempts):
        return False
    return not any(t.number not in failed and (t.state == TrialState.WAITING or (
        t.state == TrialState.RUNNING and not is_stale(t, now))) for t in attempts)


def promotions(trials: Sequence[FrozenTrial]) -> tuple[set[int], set[int]]:
    """The trials promoted so far, split: those whose promotion is settled (an attempt ran, waits or is
    alive, raised, or used the last attempt) and those owed another attempt (each one stopped by
    Ctrl-C or a kill, ``owed``): the budget promotes these first, whatever their rank is now."""
    attempts: dict[int, list[FrozenTrial]] = {}
    for t in trials:
        key = planned_key(t)
        if key is not None and key.startswith("promotion:"):
            attempts.setdefault(t.user_attrs["promoted_from"], []).append(t)
    now = time.time()
    again = {source for source, tries in attempts.items() if owed(tries, now)}
    return set(attempts) - again, again


def ran(trial: FrozenTrial) -> bool:
    """Whether ``trial`` ran to a result (COMPLETE or PRUNED), as opposed to being a pruned duplicate."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and "duplicate_of" not in trial.user_attrs


def seeded(trials: Sequence[FrozenTrial]) -> set[str]:
    """The seeds (families) with at least one attempt among ``trials``."""
    return {k for k in map(seed_key, trials) if k is not None}


def enqueue_seeds(study: optuna.Study, space: SearchSpace, result: RangeTestResult,
                  families: Sequence[str] | None = None) -> int:
    """Plan one seed per family at its range-test point and enqueue those not yet enqueued.

    Idempotent: a seed with an attempt in the study (whatever its state) is not enqueued again
    here; ``_recovery.recover`` re-enqueues the ones that ended without a result. Returns how many
    were newly enqueued.
    """
    plan = dict(study.user_attrs.get("seed_plan") or {})
    for family in space.families if families is None else families:
        if family not in plan:
            lr, rule = seed_lr(result, family, *space.lr)
            plan[family] = {"params": space.seed_params(family, lr), "rule": f"range_test:{rule}"}
    study.set_user_attr("seed_plan", plan)  # first, so a kill in the loop below leaves the rest owed
    done = seeded(study.get_trials(deepcopy=False))
    todo = [f for f in plan if f not in done and (families is None or f in families)]
    for family in todo:
        enqueue_seed(study, family, plan[family])
    return len(todo)


def enqueue_seed(study: optuna.Study, key: str, entry: dict[str, Any], attempt: int = 1) -> None:
    """Enqueue one attempt of seed ``key`` (``entry``: its ``params`` and ``rule``)."""
    attrs = {"seed": entry["rule"], "seed_key": key, "seed_attempt": attempt}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Optuna warns about fixed params it re-checks
        study.enqueue_trial(dict(entry["params"]), user_attrs=attrs)


def duplicate_of(study: optuna.Study, trial: optuna.trial.Trial) -> int | None:
    """The attempt that makes ``trial`` (a seed or promotion attempt just started) redundant, if any."""
    key = planned_key(trial)  # type: ignore[arg-type]  # a live trial has the same attrs
    if key is None:
        return None
    now = time.time()
    for t in study.get_trials(deepcopy=False):
        if t.number == trial.number or planned_key(t) != key or "duplicate_of" in t.user_attrs:
            continue
        if ran(t) or (t.state == TrialState.RUNNING and t.number < trial.number and not is_stale(t, now)):
            return t.number
    return None
