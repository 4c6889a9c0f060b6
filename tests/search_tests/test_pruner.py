"""PlateauPruner (ReduceLROnPlateau rules, schedule-aware) and the report hook."""

from __future__ import annotations

import math

import optuna
import pytest

import lrsearch
from lrsearch import PlateauPruner
from lrsearch import Schedule
from lrsearch.search.pruners._plateau import protected


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(pruner, peers: list[list[float]], direction: str = "minimize") -> optuna.Study:
    study = optuna.create_study(pruner=pruner, direction=direction)
    for curve in peers:
        study.add_trial(optuna.trial.create_trial(
            value=curve[-1], intermediate_values=dict(enumerate(curve)),
            params={}, distributions={}))
    return study


def _first_prune(study: optuna.Study, curve: list[float], schedule: Schedule | None = None) -> int | None:
    trial = study.ask()
    if schedule is not None:
        trial.set_user_attr("schedule", schedule.to_dict())
        trial.set_user_attr("n_evals", len(curve))
    for step, value in enumerate(curve):
        try:
            lrsearch.report(trial, value, step)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return step
    study.tell(trial, curve[-1])
    return None


# Four cosine-like peers that improve steadily to 0.3.
PEERS = [[1.0 - 0.07 * s + 0.01 * k for s in range(10)] for k in range(4)]


@pytest.mark.parametrize(
    "curve,expected",
    [
        ([1.0, 0.8, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75], 4),  # stalls 2 evals and trails peers
        ([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2], None),       # keeps improving
        ([0.5, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2], None),        # stalls, but ahead of peers
        ([1.0, 0.9, float("nan"), 0.5], 2),                                 # non-finite: at once
        ([1.0, 0.9, float("inf"), 0.5], 2),
    ],
)
def test_plateau_pruner_table(curve: list[float], expected: int | None) -> None:
    assert _first_prune(_study(PlateauPruner(patience=2, n_startup_trials=3), PEERS), curve) == expected


def test_maximize_direction() -> None:
    peers = [[-v for v in c] for c in PEERS]
    curve = [-v for v in [1.0, 0.8, 0.75, 0.75, 0.75, 0.75, 0.75]]
    assert _first_prune(_study(PlateauPruner(patience=2, n_startup_trials=3), peers, "maximize"), curve) == 4


def test_a_plateau_prune_names_its_rule_and_numbers() -> None:
    study = _study(PlateauPruner(patience=2, n_startup_trials=3), PEERS)
    assert _first_prune(study, [1.0, 0.8, 0.75, 0.75, 0.75, 0.75]) == 4
    reason = study.trials[-1].user_attrs["prune_reason"]
    assert reason.startswith("PlateauPruner: 2 evaluations without improvement (patience 2)")
    assert "50th-percentile" in reason and "(4 peers)" in reason


def test_non_finite_reason_is_kept() -> None:
    study = _study(PlateauPruner(), PEERS)
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        lrsearch.report(trial, float("nan"), 3)
    assert trial.user_attrs["prune_reason"] == "non-finite metric nan at step 3"


# A warmup-stable-decay run: high loss while the LR is held, then it drops below everyone at the end.
WSD_CURVE = [1.0, 0.85, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.35, 0.2]


def test_schedule_aware_pruning_spares_late_decays() -> None:
    wsd = Schedule("wsd", lr=0.1, params={"decay_frac": 0.25})
    cosine = Schedule("cosine", lr=0.1)
    aware = PlateauPruner(patience=2, n_startup_trials=3)
    # the same curve: a cosine trial that stalls is pruned, the wsd trial holding its LR is not
    assert _first_prune(_study(aware, PEERS), WSD_CURVE, cosine) == 4
    assert _first_prune(_study(aware, PEERS), WSD_CURVE, wsd) is None
    # Optuna's MedianPruner prunes the wsd trial long before its decay (evaluation 8)
    median = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    assert _first_prune(_study(median, PEERS), WSD_CURVE, wsd) <= 4
    assert WSD_CURVE[-1] < min(c[-1] for c in PEERS)  # yet it ends best of all


def test_protection_follows_each_family() -> None:
    trial = optuna.trial.create_trial(value=1.0, params={}, distributions={},
                                      user_attrs={"n_evals": 10, "schedule": Schedule("step", params={"step_frac": 0.5}).to_dict()})
    assert protected(trial, 3, 0.5) and not protected(trial, 6, 0.5)  # before / after the first decay
    restarts = Schedule("cosine_restarts", params={"first_cycle_frac": 0.5}).to_dict()
    trial.user_attrs["schedule"] = restarts
    assert protected(trial, 1, 0.5) and not protected(trial, 4, 0.5)  # mid-cycle / near the cycle's end
    trial.user_attrs["schedule"] = Schedule("cosine").to_dict()
    assert not protected(trial, 0, 0.5)
    del trial.user_attrs["n_evals"]
    assert not protected(trial, 0, 0.5)


def test_report_steps_a_plateau_schedule() -> None:
    import torch

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = Schedule("plateau", lr=0.1, params={"patience": 0}).build(opt, 100)
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    for step, value in enumerate([1.0, 1.0, 1.0]):
        lrsearch.report(trial, value, step, scheduler=scheduler, n_evals=3)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.001) and trial.user_attrs["n_evals"] == 3


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"patience": -1}, "patience must be >= 0"),
        ({"threshold_mode": "pct"}, "threshold_mode must be one of 'rel', 'abs'"),
        ({"percentile": 150}, "percentile must be in [0, 100]"),
        ({"protect_below": 2}, "protect_below must be in [0, 1]"),
    ],
)
def test_bad_pruner_settings(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        PlateauPruner(**kwargs)
    assert message in str(info.value)
    assert math.isfinite(1.0)
