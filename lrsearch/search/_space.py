"""``SearchSpace`` and ``suggest_schedule``: schedule families and their parameters, define-by-run.

The order of suggestions is fixed: ``family`` (categorical), ``lr`` (log), the warmup
(``warmup`` = "none" or a shape, then ``warmup_frac`` and, for ``exp``, ``warmup_start_ratio``),
then only the chosen family's parameters, named ``<family>.<param>`` so that each keeps one
distribution across trials and reads well in optuna-dashboard. Every range is read from the
parameter specs the schedule library keeps beside each family; ratios that may be exactly 0 get a
``<family>.<param>_is_zero`` switch; milestones are a count and sorted fractions. With
``tail`` on, an averaging tail comes last: ``tail`` (none, swa or ema), then ``tail.start``,
``tail.one_minus_decay`` (ema) and ``tail.swa_lr_on`` / ``tail.swa_lr`` / ``tail.anneal``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any

import optuna

from lrsearch._checks import check_bool
from lrsearch._checks import check_choice
from lrsearch._checks import check_names
from lrsearch._checks import check_range
from lrsearch.rangetest import RangeTestResult
from lrsearch.schedules import FAMILIES
from lrsearch.schedules import Categorical
from lrsearch.schedules import FloatRange
from lrsearch.schedules import IntRange
from lrsearch.schedules import Schedule
from lrsearch.schedules import SortedFractions
from lrsearch.schedules import get_family
from lrsearch.search._optim_space import OptimizerSpace
from lrsearch.search._prior import LRPrior
from lrsearch.search._prior import widened
from lrsearch.search.storage import set_user_attrs


WARMUP_SHAPES = ("none", "linear", "cosine", "exp")
WARMUP_FRAC = FloatRange(0.005, 0.1, log=True)
WARMUP_START = FloatRange(1e-3, 0.1, log=True)
TAIL_KINDS = ("none", "swa", "ema")
# The averaging tail, as sampled: updates every 0.2% of the run (at most 500 per run), so an EMA's
# per-update decay spans a fixed fraction of the run at any run length (1 / (1 - decay) updates:
# 1% to 100% of the run); the LR in the tail is the schedule's or, half the time, an SWALR anneal.
TAIL_EVERY = 0.002
TAIL_START = FloatRange(0.5, 0.9)
TAIL_ONE_MINUS_DECAY = FloatRange(2e-3, 0.2, log=True)
TAIL_SWA_LR = FloatRange(0.01, 1.0, log=True)
TAIL_ANNEAL = FloatRange(0.005, 0.2, log=True)
_current: contextvars.ContextVar[SearchSpace | None] = contextvars.ContextVar("lrsearch_space", default=None)


# Searchable when named, but not in the default space: peers' schedules added for parity (timm's tanh),
# and Schedule-Free training (it swaps the optimizer, so it needs the Task loop or the user's own),
# until a benchmark shows they earn a place there (the default space is what the benchmarks measured).
OPT_IN = ("tanh", "schedule_free")
#: The families a search explores by default: wsd, one-cycle and linear decay are the grid's best on all
#: 7 benchmark tasks (studies/results/bench_grid.md), cosine the usual baseline; at 2-8 full runs of budget
#: these 4 beat the 14 of ``families="all"`` (studies/results/bench_anytime.md: trials spread thin).
DEFAULT_FAMILIES = ("cosine", "linear", "wsd", "onecycle")
#: The peak-LR range a space searches when given neither a range nor a range test.
DEFAULT_LR = (1e-5, 1.0)


def _searchable(name: str) -> bool:
    return any(spec.search is not None for spec in FAMILIES[name].params.values()) or not FAMILIES[name].params


class SearchSpace:
    """Which schedules a search explores.

    Example:
        >>> space = SearchSpace(families=["cosine", "onecycle", "wsd"], lr=(1e-4, 1e-1))
        >>> space = SearchSpace(lr=lrsearch.lr_find(model, opt, loss_fn, batches))  # seeded range

    Args:
        families: Family names to choose from; ``None``: ``DEFAULT_FAMILIES`` (cosine, linear, wsd,
            onecycle); ``"all"``: every family with search ranges (all but ``piecewise``) except the
            opt-in ones (``OPT_IN``: ``tanh``, ``schedule_free``), which are searched when named.
        lr: ``(low, high)`` for the peak LR (sampled on a log scale), or a ``RangeTestResult``:
            then its ``search_range()`` is a prior, not a wall (``lrsearch.search._prior``): the
            range searched reaches ``TAIL_BELOW`` / ``TAIL_ABOVE`` decades past it and the first
            sampled trials draw their LR around it. ``None`` (default): ``DEFAULT_LR``, or that
            when ``optimize`` is given ``seed_from``. A range given here is never replaced: with
            ``seed_from`` too, its bounds stay the walls and the range test only centres the prior
            and places the seeds inside them.
        warmup: Search a warmup (none or a shape, its length and start) for families without a
            rise of their own.
        mode: ``"min"`` or ``"max"``: the direction of the metric, given to the plateau family.
        tail: Search an averaging tail (``Schedule(tail=...)``, SWA or EMA of the weights over the
            last part of the run): ``False`` (default: the space the benchmarks measured), ``True``
            for none, swa and ema, or the kinds to choose from (a subset of ``TAIL_KINDS``).
        optimizer: An ``OptimizerSpace`` to search the optimizer family, weight decay and layer-group
            LR ratios too (sampled last; see ``suggest_optimizer``); ``None`` (default) trains with
            the task's or the objective's own optimizer.
    """

    def __init__(
        self,
        families: Iterable[str] | None = None,
        lr: tuple[float, float] | RangeTestResult | None = None,
        warmup: bool = True,
        mode: str = "min",
        tail: bool | Iterable[str] = False,
        optimizer: OptimizerSpace | None = None,
    ) -> None:
        if isinstance(families, str) and families != "all":
            raise ValueError(f"families must be a list of names, None or 'all' but got {families!r}.")
        every = [n for n in FAMILIES if _searchable(n) and n not in OPT_IN]
        names = list(DEFAULT_FAMILIES if families is None else every if families == "all"
                     else check_names("families", families))
        if not names:
            raise ValueError("families must name at least one schedule family.")
        for name in names:
            get_family(name)
            if not _searchable(name):
                raise ValueError(f"families must be searchable but {name!r} has no search ranges.")
        if len(set(names)) != len(names):
            raise ValueError(f"families must not repeat a name but got {names!r}.")
        self.families = tuple(names)
        self.range_test = lr if isinstance(lr, RangeTestResult) else None
        self.lr_given = lr is not None  # an explicit range: a seed_from never replaces it
        #: The belief the sampler's first trials draw the LR from (a range test's core), or None.
        self.prior: LRPrior | None = None
        if isinstance(lr, RangeTestResult):
            core = lr.search_range()
            self.lr, self.prior = widened(core, lr.sweep()), LRPrior.around(*core)
        else:
            self.lr = check_range("lr", DEFAULT_LR if lr is None else lr, alternative=" or a RangeTestResult")
        self.warmup = check_bool("warmup", warmup)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.tail = _tail_kinds(tail)
        if optimizer is not None and not isinstance(optimizer, OptimizerSpace):
            raise ValueError(f"optimizer must be a lrsearch.OptimizerSpace or None but got {type(optimizer).__name__}.")
        self.optimizer = optimizer

    def with_lr(self, lr: tuple[float, float] | RangeTestResult) -> SearchSpace:
        """The same space with another LR range (from a pair or a range test)."""
        return self.replace(lr=lr)

    def seeded_by(self, found: RangeTestResult) -> SearchSpace:
        """The space ``optimize(seed_from=found)`` searches: the range test's widened range and
        prior, unless this space's range was given explicitly: its bounds are kept and the range
        test's prior is centred inside them (the seeds sit inside them too)."""
        if not self.lr_given:
            return self.with_lr(found)
        return self.with_prior(LRPrior.around(*found.search_range()).within(*self.lr))

    def with_prior(self, prior: LRPrior | None) -> SearchSpace:
        """The same space drawing its startup LRs from ``prior``."""
        out = self.replace()
        out.prior = prior
        return out

    def resumed(self, stored: Any) -> SearchSpace:
        """This space, or, when its range was not given, the range and prior a study stored
        (``describe()``, by the run that seeded it): what a worker without ``seed_from`` searches."""
        if self.lr_given or not isinstance(stored, dict) or "prior" not in stored:
            return self
        try:
            lr = check_range("lr", tuple(stored["lr"]))
        except (TypeError, ValueError):
            return self
        return self.replace(lr=lr).with_prior(LRPrior.from_dict(stored["prior"]))

    def replace(self, **changes: Any) -> SearchSpace:
        """A copy with some of the constructor's arguments changed (the prior kept unless ``lr`` is)."""
        lr = None if not self.lr_given else self.lr if self.range_test is None else self.range_test
        given = {"families": self.families, "lr": lr,
                 "warmup": self.warmup, "mode": self.mode, "tail": self.tail or False, "optimizer": self.optimizer}
        out = SearchSpace(**{**given, **changes})
        if "lr" not in changes:
            out.prior = self.prior
        return out

    def describe(self) -> dict[str, Any]:
        """Plain data for study user attrs."""
        out = {"families": list(self.families), "lr": list(self.lr), "warmup": self.warmup, "mode": self.mode}
        out = {**out, "prior": self.prior.describe()} if self.prior is not None else out
        out = {**out, "tail": list(self.tail)} if self.tail else out
        return {**out, "optimizer": self.optimizer.describe()} if self.optimizer is not None else out

    # ------------------------------------------------------------------ sampling
    def suggest(self, trial: optuna.trial.BaseTrial) -> Schedule:
        """Sample a schedule on ``trial`` and store its spec as the user attr ``schedule`` (its peak LR
        also as ``trained_lr``, the number every lrsearch view shows for the trial).

        The peak LR is the ``lr`` parameter times the trial's user attr ``lr_scale`` if it has one
        (a run promoted to a longer length: its LR moves with the length, its parameters do not).
        """
        family = trial.suggest_categorical("family", list(self.families))
        fam = get_family(family)
        lr = trial.suggest_float("lr", self.lr[0], self.lr[1], log=True)
        scale = trial.user_attrs.get("lr_scale", 1.0)  # a run promoted to a longer length (Rungs)
        if isinstance(scale, (int, float)) and not isinstance(scale, bool) and 0 < scale < float("inf"):
            lr *= scale
        warmup: dict[str, Any] = {}
        if self.warmup and not fam.rises:
            shape = trial.suggest_categorical("warmup", list(WARMUP_SHAPES))
            if shape != "none":
                warmup = {"shape": shape, "frac": trial.suggest_float("warmup_frac", WARMUP_FRAC.low,
                                                                      WARMUP_FRAC.high, log=True)}
                if shape == "exp":
                    warmup["start_ratio"] = trial.suggest_float("warmup_start_ratio", WARMUP_START.low,
                                                                WARMUP_START.high, log=True)
        params: dict[str, Any] = {}
        for name, spec in fam.params.items():
            search = spec.search
            if search is None or (getattr(search, "when", None) and params.get(search.when[0]) != search.when[1]):
                continue
            params[name] = _suggest_param(trial, f"{family}.{name}", search)
        if family == "plateau":
            params["mode"] = self.mode
        tail = _suggest_tail(trial, self.tail) if self.tail and not FAMILIES[family].schedule_free else None
        attrs: dict[str, Any] = {}
        if self.optimizer is not None:  # its LR ratio moves the peak: the spec keeps the LR trained at
            optimizer, ratio = self.optimizer.suggest(trial)
            lr *= ratio
            attrs["optimizer"] = optimizer.to_dict()
        schedule = Schedule(family, lr=lr, params=params, warmup=warmup, tail=tail)
        # one storage write; trained_lr: the peak LR it trains at (``lr`` is the sampler's point)
        set_user_attrs(trial, {**attrs, "trained_lr": lr, "schedule": schedule.to_dict()})
        return schedule

    def seed_params(self, family: str, lr: float) -> dict[str, Any]:
        """The parameter dict that makes ``suggest`` return ``family`` at its defaults and ``lr``
        (with a 5% linear warmup where it applies): what seeding enqueues."""
        fam = get_family(family)
        params: dict[str, Any] = {"family": family, "lr": float(min(max(lr, self.lr[0]), self.lr[1]))}
        if self.warmup and not fam.rises:
            params.update({"warmup": "linear", "warmup_frac": 0.05})
        for name, spec in fam.params.items():
            search = spec.search
            if search is None or (getattr(search, "when", None) and fam.defaults.get(search.when[0]) != search.when[1]):
                continue
            key, value = f"{family}.{name}", spec.default
            if isinstance(search, FloatRange) and search.zero:
                params[f"{key}_is_zero"] = value == 0
                if value != 0:
                    params[key] = float(value)
            elif isinstance(search, SortedFractions):
                params[f"{key}_count"] = len(value)
                params.update({f"{key}_{i}": float(v) for i, v in enumerate(value)})
            else:
                params[key] = value
        if self.tail:  # no tail if the space allows it, else the first kind at its defaults
            params["tail"] = "none" if "none" in self.tail else self.tail[0]
            if params["tail"] != "none":
                params.update({"tail.start": 0.75, "tail.swa_lr_on": False})
                if params["tail"] == "ema":
                    params["tail.one_minus_decay"] = 0.02
        if self.optimizer is not None:
            params.update(self.optimizer.seed_params())
        return params


def _tail_kinds(tail: Any) -> tuple[str, ...]:
    if isinstance(tail, bool):
        return TAIL_KINDS if tail else ()
    if isinstance(tail, str) or not isinstance(tail, Iterable):
        raise ValueError(f"tail must be a bool or a collection of {', '.join(TAIL_KINDS)} but got {tail!r}.")
    kinds = tuple(check_choice("tail", kind, TAIL_KINDS) for kind in tail)
    if not kinds or len(set(kinds)) != len(kinds):
        raise ValueError(f"tail must name at least one kind, none repeated, but got {list(kinds)!r}.")
    return kinds


def _suggest_tail(trial: optuna.trial.BaseTrial, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    """The averaging tail's define-by-run suggestions (``tail`` then its conditional parameters)."""
    kind = trial.suggest_categorical("tail", list(kinds))
    if kind == "none":
        return None
    tail = {"kind": kind, "every": TAIL_EVERY, "start": _suggest_param(trial, "tail.start", TAIL_START)}
    if kind == "ema":
        tail["decay"] = 1.0 - _suggest_param(trial, "tail.one_minus_decay", TAIL_ONE_MINUS_DECAY)
    if trial.suggest_categorical("tail.swa_lr_on", [True, False]):
        tail["swa_lr"] = _suggest_param(trial, "tail.swa_lr", TAIL_SWA_LR)
        tail["anneal"] = _suggest_param(trial, "tail.anneal", TAIL_ANNEAL)
    return tail


def _suggest_param(trial: optuna.trial.BaseTrial, key: str, search: Any) -> Any:
    if isinstance(search, FloatRange):
        if search.zero and trial.suggest_categorical(f"{key}_is_zero", [True, False]):
            return 0.0
        return trial.suggest_float(key, search.low, search.high, log=search.log)
    if isinstance(search, IntRange):
        return trial.suggest_int(key, search.low, search.high)
    if isinstance(search, Categorical):
        return trial.suggest_categorical(key, list(search.choices))
    if isinstance(search, SortedFractions):
        count = trial.suggest_int(f"{key}_count", search.min_count, search.max_count)
        return sorted({trial.suggest_float(f"{key}_{i}", search.low, search.high) for i in range(count)})
    raise ValueError(f"unknown search range for {key}: {search!r}.")  # pragma: no cover


def suggest_schedule(trial: optuna.trial.BaseTrial, space: SearchSpace | None = None) -> Schedule:
    """Sample a schedule on ``trial`` (define-by-run) and store its spec on the trial.

    Inside ``lrsearch.optimize`` the space defaults to the one ``optimize`` was given (seeded from
    the range test); elsewhere to ``SearchSpace()``.
    """
    if space is None:
        space = _current.get() or SearchSpace()
    return space.suggest(trial)

