"""A plain epoch loop under ``lrsearch.optimize``: the search says how many epochs a trial trains
(``run_length(trial, epochs=...)``) and the loop reports once per epoch; and ``evaluation_steps``
for a loop that counts steps."""

from __future__ import annotations

import optuna
import pytest
import torch

import lrsearch


optuna.logging.set_verbosity(optuna.logging.WARNING)
EPOCHS, PER_EPOCH = 10, 4  # a full run: 10 epochs of 4 optimizer steps; 1/3 of it: 3 epochs


def _epoch_loop(log: dict[int, dict]):
    """The user's own loop (SGD on a quadratic), with lrsearch's four lines of glue marked."""

    def objective(trial: optuna.trial.Trial) -> float:
        schedule = lrsearch.suggest_schedule(trial)  # glue
        epochs = lrsearch.run_length(trial, epochs=EPOCHS, steps_per_epoch=PER_EPOCH)  # glue
        w = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.1)
        scheduler = schedule.build(optimizer, total_steps=epochs * PER_EPOCH)  # glue
        seen = log[trial.number] = {"epochs": epochs, "steps": 0, "reported_at": []}
        for epoch in range(epochs):
            for _ in range(PER_EPOCH):
                optimizer.zero_grad()
                ((w - 3.0) ** 2).sum().backward()
                optimizer.step()
                scheduler.step()
                seen["steps"] += 1
            val = float(((w.detach() - 3.0) ** 2).sum()) + 0.01
            seen["reported_at"].append(seen["steps"])
            lrsearch.report(trial, val, epoch, scheduler=scheduler, n_evals=epochs)  # glue
        return val

    return objective


def test_a_plain_epoch_loop_trains_its_rung_in_whole_epochs_reports_at_its_end_and_is_pruned() -> None:
    torch.set_num_threads(1)
    log: dict[int, dict] = {}
    result = lrsearch.optimize(_epoch_loop(log), budget=5, storage=optuna.storages.InMemoryStorage(), artifacts=None,
                               rungs=lrsearch.Rungs((1 / 3, 1.0)),
                               space=lrsearch.SearchSpace(["constant", "cosine"], lr=(1e-3, 0.9)))
    trials = {t.number: t for t in result.study.trials}
    short = [n for n, t in trials.items() if t.user_attrs["fidelity"] < 1]
    full = [n for n, t in trials.items() if t.user_attrs["fidelity"] == 1]
    assert short and full  # screened at 1/3, promoted to full runs
    for n, t in trials.items():
        epochs = EPOCHS if n in full else round(EPOCHS / 3)
        assert log[n]["epochs"] == epochs
        assert t.user_attrs["run_steps"] == epochs * PER_EPOCH and t.user_attrs["full_steps"] == EPOCHS * PER_EPOCH
        if t.state == optuna.trial.TrialState.COMPLETE:  # ran every step; its last evaluation at its last step
            assert log[n]["steps"] == epochs * PER_EPOCH == log[n]["reported_at"][-1]
            assert log[n]["reported_at"] == lrsearch.evaluation_steps(epochs * PER_EPOCH, epochs)
    promoted = [t for t in trials.values() if "promoted_from" in t.user_attrs]
    assert promoted and all(trials[t.user_attrs["promoted_from"]].number in short for t in promoted)
    pruned = [t for t in trials.values() if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.user_attrs["prune_reason"] for t in pruned)
    assert all(log[t.number]["steps"] < log[t.number]["epochs"] * PER_EPOCH for t in pruned)
    assert result.best_trial.number in full


def test_evaluation_steps_keep_the_last_steps_of_a_run() -> None:
    for total, n in ((59, 3), (177, 9), (10, 10), (7, 1)):
        ends = lrsearch.evaluation_steps(total, n)
        chunks = [b - a for a, b in zip([0, *ends], ends)]
        assert len(ends) == n and ends[-1] == total and sum(chunks) == total
        assert max(chunks) - min(chunks) <= 1  # evenly spaced
    assert sum([59 // 3] * 3) < 59  # what ``steps // n_evals`` chunks trained: the last steps dropped


@pytest.mark.parametrize(("call", "word"), [
    (lambda t: lrsearch.run_length(t), "total_steps or epochs"),
    (lambda t: lrsearch.run_length(t, 100, epochs=3), "not both"),
    (lambda t: lrsearch.run_length(t, 100, steps_per_epoch=3), "steps_per_epoch"),
    (lambda t: lrsearch.run_length(t, epochs=0), "epochs"),
    (lambda t: lrsearch.run_length(t, epochs=2, steps_per_epoch=1.5), "steps_per_epoch"),
    (lambda t: lrsearch.evaluation_steps(5, 6), "n_evals must be at most total_steps (5)"),
    (lambda t: lrsearch.evaluation_steps(0, 1), "total_steps"),
])
def test_bad_run_lengths_and_evaluations_are_refused(call, word: str) -> None:
    with pytest.raises(ValueError, match=word.replace("(", r"\(").replace(")", r"\)")):
        call(optuna.create_study().ask())


def test_run_length_in_epochs_outside_a_search_is_the_full_run() -> None:
    trial = optuna.create_study().ask()
    assert lrsearch.run_length(trial, epochs=EPOCHS, steps_per_epoch=PER_EPOCH) == EPOCHS
    assert trial.user_attrs["run_steps"] == trial.user_attrs["full_steps"] == EPOCHS * PER_EPOCH
