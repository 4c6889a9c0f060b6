"""The OptunaHub package: it loads as OptunaHub loads it, and its pruner prunes a trial heading for
a poor end in a plain Optuna study while leaving a late-decaying schedule alone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import optuna

from lrsearch import Schedule


HERE = Path(__file__).resolve().parents[1]


def load():
    try:
        import optunahub
    except ImportError:  # the same file, loaded as optunahub.load_local_module would load it
        spec = importlib.util.spec_from_file_location("lrsearch_forecast", HERE / "__init__.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return optunahub.load_local_module(package="pruners/lrsearch_forecast", registry_root=str(HERE.parents[1]))


def add_peer(study, spec: dict, curve: list[float]) -> None:
    trial = study.ask()
    trial.set_user_attr("schedule", spec)
    trial.set_user_attr("n_evals", len(curve))
    for k, v in enumerate(curve):
        trial.report(v, k)
    study.tell(trial, curve[-1])


def test_prunes_a_curve_heading_for_a_poor_end_but_not_a_late_decay() -> None:
    module = load()
    study = optuna.create_study(pruner=module.ForecastPruner())
    cosine = Schedule("cosine", lr=0.1).to_dict()
    for end in (1.0, 1.1, 1.2, 1.3):  # peers: each drops by 1.0 from evaluation 5 of 10 to its end
        add_peer(study, cosine, [end + 2.0 - 0.1 * k for k in range(5)] + [end + 1.0 - 0.2 * k for k in range(5)])

    trial = study.ask()  # the same schedule, 2.6 above the peers all along
    trial.set_user_attr("schedule", cosine)
    pruned_at = None
    for k in range(10):
        try:
            module.report(trial, 4.6 - 0.1 * k, k, n_evals=10)
        except optuna.TrialPruned:
            pruned_at = k
            break
    assert pruned_at is not None and 2 <= pruned_at < 9  # not before a quarter of the run, not at its end
    assert trial.user_attrs["prune_reason"].startswith("ForecastPruner: at evaluation")

    wsd = study.ask()  # the same value, but its LR has not decayed yet: no peer anneals that late
    wsd.set_user_attr("schedule", Schedule("wsd", lr=0.1, params={"decay_frac": 0.2}).to_dict())
    for k in range(5):
        module.report(wsd, 4.6, k, n_evals=10)
