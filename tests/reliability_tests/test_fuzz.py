"""Bad input, fuzzed: only documented exceptions (ValueError) escape, never a hang or a NaN LR."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

import lrsearch
from lrsearch.schedules import families
from lrsearch.search.storage._defaults import resolve_storage


FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])
junk = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=12), st.lists(st.floats(allow_nan=True), max_size=3))
# Counts of work (iterations, micro-batches) stay small: a valid 10**6 is a legitimately long sweep,
# not bad input, and made a CI run spend minutes in one example.
small_junk = junk.filter(lambda v: not (isinstance(v, int) and not isinstance(v, bool) and v > 50))
optuna.logging.set_verbosity(optuna.logging.WARNING)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_json_text(text: str) -> None:
    try:
        s = lrsearch.Schedule.from_json(text)
    except ValueError:
        return
    assert np.all(np.isfinite(s.curve(20)))


@FUZZ
@given(family=st.sampled_from(families()), params=st.dictionaries(st.sampled_from(
    ["gamma", "min_ratio", "k", "power", "milestones", "pct_start", "mode", "patience", "cycle_mult",
     "decay_frac", "phases", "base_ratio", "three_phase", "step_frac", "timescale_frac"]), junk, max_size=4),
    warmup=st.dictionaries(st.sampled_from(["frac", "shape", "start_ratio"]), junk, max_size=3),
    lr=junk, total=st.integers(1, 500), step=st.integers(0, 10**9))
def test_random_specs_give_a_value_error_or_finite_lrs(family, params, warmup, lr, total, step) -> None:
    try:
        s = lrsearch.Schedule(family, lr=lr if lr is not None else 1e-3, params=params, warmup=warmup)
    except ValueError as err:
        assert str(err)
        return
    value = s.lr_at(step, total)
    assert math.isfinite(value) and 0 <= value <= s.lr


@FUZZ
@given(fams=st.one_of(st.none(), st.lists(st.sampled_from([*families(), "nope"]), max_size=4)),
       low=junk, high=junk, mode=st.sampled_from(["min", "max", "MIN", 3]))
def test_random_search_spaces(fams, low, high, mode) -> None:
    try:
        space = lrsearch.SearchSpace(families=fams, lr=(low, high), mode=mode)
    except ValueError:
        return
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: space.suggest(t).lr, n_trials=5)
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert space.lr[0] <= lrsearch.Schedule.from_dict(t.user_attrs["schedule"]).lr <= space.lr[1]


@FUZZ
@given(url=st.one_of(st.text(max_size=40), st.sampled_from([
    "sqlite://", "sqlite:////nonexistent/dir/x.db", "postgresql://u:pw@127.0.0.1:1/db", "mysql://u@h/d",
    "redis://h", "x.db", "", "://", "sqlite:///studies/../x.db", "http://u:secret@example/x"])))
def test_random_storage_urls(url: str, tmp_path_factory) -> None:
    import os

    os.chdir(tmp_path_factory.mktemp("s"))
    try:
        storage = resolve_storage(url, "fuzz", heartbeat_interval=None)
    except ValueError as err:
        assert "secret" not in str(err) and "pw@" not in str(err)
        return
    study = optuna.create_study(storage=storage, study_name="fuzz", load_if_exists=True)
    assert study.study_name == "fuzz"


def _model_opt():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kwargs=st.fixed_dictionaries({}, optional={
    "start_lr": junk, "end_lr": junk, "num_iter": st.one_of(st.integers(-3, 12), small_junk),
    "step_mode": st.sampled_from(["exp", "linear", "log", None]), "smooth_f": junk, "diverge_th": junk,
    "accumulation_steps": st.one_of(st.integers(-2, 3), small_junk), "amp": st.sampled_from([None, "bf16", "x"]),
    "snapshot": st.sampled_from(["cpu", "disk", "gpu"]), "check_every": st.one_of(st.integers(-1, 3), junk)}))
def test_random_lr_find_arguments(kwargs: dict) -> None:
    model, opt = _model_opt()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = lrsearch.lr_find(model, opt, F.cross_entropy, lrsearch.TensorBatches(x, y, batch_size=16),
                                 verbose=False, **kwargs)
    except ValueError as err:
        assert str(err)
    else:
        assert r.iterations >= 1 and np.all(np.isfinite(r.lrs))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_divergence_in_training_prunes_with_a_reason_and_the_study_goes_on(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    x = torch.randn(256, 4)
    y = x.sum(1, keepdim=True)

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    task = lrsearch.Task(model, (x[:192], y[:192]), (x[192:], y[192:]), F.mse_loss, epochs=3, batch_size=32,
                         optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))
    space = lrsearch.SearchSpace(["constant"], lr=(1e-3, 1e6), warmup=False)  # the top of it diverges
    result = lrsearch.optimize(task=task, n_trials=12, study_name="div", space=space, artifacts=None)
    reasons = [t.user_attrs.get("prune_reason", "") for t in result.study.trials]
    assert any(r.startswith("non-finite metric") for r in reasons)
    assert result.counts().get("complete", 0) >= 1 and len(result.study.trials) == 12


@FUZZ
@given(name=st.text(max_size=30))
def test_random_study_names_never_write_outside_the_working_folder(name: str, tmp_path_factory) -> None:
    import os

    root = tmp_path_factory.mktemp("names")
    work = root / "w"
    work.mkdir()
    os.chdir(work)
    try:
        lrsearch.optimize(lambda t: lrsearch.suggest_schedule(t).lr, n_trials=1, study_name=name, artifacts=None)
    except ValueError as err:
        assert "study_name" in str(err)
    outside = [p for p in root.rglob("*") if p != work and work not in p.parents]
    assert outside == []


@FUZZ
@given(name=st.text(max_size=40))
def test_random_study_names_give_plain_file_stems(name: str) -> None:
    from lrsearch.search.storage._defaults import file_stem

    stem = file_stem(name)
    assert stem == file_stem(name) and "/" not in stem and "\\" not in stem and "\x00" not in stem
    assert stem.strip(".") and not stem.startswith("-") and len(stem) <= 100


@FUZZ
@given(password=st.text(min_size=3, max_size=20).filter(  # not a piece of the rest of the URL or the message
    lambda p: p.strip() and p not in "postgresql://u:***@127.0.0.1:1/db?password= could not be opened"),
       form=st.sampled_from(["raw", "quoted", "query"]), as_bytes=st.booleans())
def test_random_passwords_are_never_shown(password: str, form: str, as_bytes: bool) -> None:
    from urllib.parse import quote

    from lrsearch.search.storage._defaults import masked

    url = {"raw": f"postgresql://u:{password}@127.0.0.1:1/db",
           "quoted": f"postgresql://u:{quote(password, safe='')}@127.0.0.1:1/db",
           "query": f"postgresql://u@127.0.0.1:1/db?password={quote(password, safe='')}"}[form]
    shown = masked(url.encode() if as_bytes else url)
    assert password not in shown and quote(password, safe="") not in shown
    try:
        resolve_storage(url.encode() if as_bytes else url, "x", heartbeat_interval=None)
    except ValueError as err:
        assert password not in str(err) and quote(password, safe="") not in str(err)


# --------------------------------------------------------------------- every public constructor, optimize
# Always on: 200 constructor cases (~5 ms each) and 15 optimize cases (a valid one runs a trial, ~0.4 s).
# The issue-26 run, 1,000 cases each:
#   LRSEARCH_FUZZ_EXAMPLES=1000 pytest -q tests/reliability_tests/test_fuzz.py -k every_public
_FUZZ_ENV = __import__("os").environ.get("LRSEARCH_FUZZ_EXAMPLES")
_CHECKS = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much]
MANY = settings(max_examples=int(_FUZZ_ENV or 200), deadline=None, suppress_health_check=_CHECKS)
MANY_RUNS = settings(max_examples=int(_FUZZ_ENV or 15), deadline=None, suppress_health_check=_CHECKS)
_loop: list = []
_loop.append(_loop)
hostile = st.one_of(junk, st.sampled_from([
    10**400, -10**400, float("inf"), -1e308, 1e308, 2**63, "", "cosine", b"x", (), {}, {"a": 1}, [[[[]]]], _loop,
    object(), torch.nn.Linear(2, 1), torch.zeros(3), lambda *a: None, ValueError, "../x", "/proc/x"]),
    st.dictionaries(st.text(max_size=5), junk, max_size=3), st.tuples(junk, junk))
_X, _Y = torch.randn(8, 2), torch.randn(8, 1)
_TASK = {"model_fn": lambda: torch.nn.Linear(2, 1), "train_data": (_X, _Y), "val_data": (_X, _Y),
         "loss_fn": F.mse_loss}
CONSTRUCTORS = {  # the public classes with the arguments fuzzed (required ones get valid values)
    "LossModel": (lambda **k: lrsearch.LossModel(**k), ["laws", "overfit", "focus", "seed"]),
    "OptimizerSpec": (lambda **k: lrsearch.OptimizerSpec(**k), ["name", "weight_decay", "ratios"]),
    "OptimizerSpace": (lambda **k: lrsearch.OptimizerSpace(**k), ["optimizers", "weight_decay", "group_ratios"]),
    "SearchSpace": (lambda **k: lrsearch.SearchSpace(**k), ["families", "lr", "warmup", "mode", "tail", "optimizer"]),
    "Rungs": (lambda **k: lrsearch.Rungs(**k), ["fractions", "reduction", "lr_shift"]),
    "PlateauMonitor": (lambda **k: lrsearch.PlateauMonitor(**k),
                       ["mode", "patience", "threshold", "threshold_mode", "cooldown"]),
    "PlateauPruner": (lambda **k: lrsearch.PlateauPruner(**k), ["patience", "threshold", "threshold_mode",
                                                                 "percentile", "n_startup_trials", "n_warmup_steps",
                                                                 "protect_below"]),
    "ForecastPruner": (lambda **k: lrsearch.ForecastPruner(**k),
                       ["percentile", "margin", "n_startup_trials", "min_fraction", "use_model"]),
    "Task": (lambda **k: lrsearch.Task(**{**_TASK, **k}), [*_TASK, "metric", "epochs", "optimizer_fn",
                                                           "batch_size", "direction", "device", "amp",
                                                           "accumulation_steps", "clip_grad_norm", "threads",
                                                           "groups"]),
    "TensorBatches": (lambda **k: lrsearch.TensorBatches(_X, _Y, **{"batch_size": 4, **k}),
                      ["batch_size", "shuffle", "drop_last", "seed", "device"]),
    "Schedule": (lambda **k: lrsearch.Schedule(**k), ["family", "lr", "params", "warmup", "tail", "noise", "floor",
                                                      "stairs", "groups"]),
}


@MANY
@given(data=st.data(), name=st.sampled_from(sorted(CONSTRUCTORS)))
def test_every_public_constructor_gives_a_value_error_or_an_object(data, name: str) -> None:
    make, args = CONSTRUCTORS[name]
    kwargs = data.draw(st.dictionaries(st.sampled_from(args), hostile, min_size=1, max_size=3))
    try:
        make(**kwargs)
    except ValueError as err:
        assert 0 < len(str(err)) < 2000  # one clear line, never a dump of the input


def _tiny(value: object) -> bool:  # a valid count of trials that would make a case slow
    return not (isinstance(value, int) and not isinstance(value, bool) and value > 2)


_paths = st.sampled_from([None, "art", "studies/art", "missing/x", "/nonexistent_lrs26/x", "/proc/lrs26", "",
                          "s.log", "s.db", "studies/s.log", "missing/s.log", "sqlite:///missing/s.db", "x.txt"])
OPTIMIZE_ARGS = {
    "budget": hostile, "rungs": st.one_of(st.just(lrsearch.Rungs()), hostile), "timeout": hostile,
    "n_trials": st.one_of(st.integers(-2, 2), hostile.filter(_tiny)), "study_name": st.one_of(hostile, st.text(max_size=8)),
    "storage": _paths.filter(lambda p: p != "art"), "direction": hostile, "seed_from": hostile,
    "space": st.one_of(st.just(lrsearch.SearchSpace(["cosine"])), hostile), "sampler": hostile, "pruner": hostile,
    "n_jobs": st.one_of(st.integers(-2, 2), hostile.filter(_tiny)), "callbacks": hostile,
    "show_progress_bar": hostile, "catch": hostile, "seed": hostile, "artifacts": _paths,
    "heartbeat_interval": hostile, "seed_families": hostile, "population": hostile,
}


@MANY_RUNS
@given(kwargs=st.dictionaries(st.sampled_from(sorted(OPTIMIZE_ARGS)), st.none(), min_size=1, max_size=4).flatmap(
    lambda keys: st.fixed_dictionaries({k: OPTIMIZE_ARGS[k] for k in keys})), positional=hostile)
def test_every_public_optimize_argument_gives_a_value_error_and_writes_only_in_the_working_folder(
        kwargs: dict, positional: object, tmp_path_factory) -> None:
    import os

    root = tmp_path_factory.mktemp("opt")
    work = root / "w"
    work.mkdir()
    os.chdir(work)
    kwargs.setdefault("n_trials", 1)
    objective = (lambda t: lrsearch.suggest_schedule(t).lr) if kwargs.get("n_trials") != 2 else positional
    try:
        lrsearch.optimize(objective, **kwargs)
    except ValueError as err:
        assert 0 < len(str(err)) < 2000
    outside = [p for p in root.rglob("*") if p != work and work not in p.parents]
    assert outside == [] and not os.path.exists("/nonexistent_lrs26") and not os.path.exists("/proc/lrs26")
