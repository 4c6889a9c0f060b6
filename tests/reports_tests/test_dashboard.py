"""What optuna-dashboard shows of a study: artifacts found from any working directory, the metric's
name, plotly figures, per-trial notes, the range test as an artifact. Read back through Optuna's and
optuna-dashboard's own APIs, and served through the dashboard's WSGI app."""

from __future__ import annotations

import io
import json
import math
import os
import types

import numpy as np
import optuna
import pytest

import lrsearch
from lrsearch.reports._dashboard import FIGURES
from lrsearch.reports import artifact_dir_for
from lrsearch.reports import dashboard_artifact_store
from lrsearch.reports._dashboard import metric_name
from lrsearch.reports._dashboard import name_metric
from lrsearch.reports._dashboard import publish_study
from lrsearch.reports._dashboard import record_range_test


optuna.logging.set_verbosity(optuna.logging.WARNING)


def _found() -> lrsearch.RangeTestResult:
    lrs = np.geomspace(1e-5, 10, 120)
    losses = 2.0 - np.exp(-((np.log10(lrs) + 1.5) ** 2)) + np.where(lrs > 1, (lrs - 1) ** 2, 0.0)
    return lrsearch.RangeTestResult.from_arrays(lrs, losses)


def _objective(trial: optuna.trial.Trial) -> float:
    schedule = lrsearch.suggest_schedule(trial)
    lrsearch.run_length(trial, 90)
    final = 1.0 + abs(math.log10(schedule.lr) + 1.0) / 3
    for step in range(3):
        value = float("nan") if trial.number == 4 and step == 1 else final + 0.3 * (2 - step)
        lrsearch.report(trial, value, step, n_evals=3)
    return final


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("dash")
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    found = _found()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(run)  # artifacts="studies/artifacts" is relative to this folder
        result = lrsearch.optimize(_objective, n_trials=7, study_name="dash", storage=storage, seed_from=found,
                                   space=lrsearch.SearchSpace(["cosine", "wsd", "constant"]))
        name_metric(result.study, "val_loss")  # what optimize is to call (see name_metric)
        record_range_test(result.study, found, "studies/artifacts")
        publish_study(result, "studies/artifacts")
        mp.chdir(elsewhere)  # the dashboard is started from another folder
        yield result, storage, run / "studies" / "artifacts"


def _note(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    from optuna_dashboard import get_note

    return get_note(types.SimpleNamespace(storage=study._storage, study=study, _trial_id=trial._trial_id))


def test_artifact_folder_is_absolute_recorded_and_found_from_anywhere(study_dir) -> None:
    result, storage, folder = study_dir
    study = result.study
    assert study.user_attrs["artifact_dir"] == str(folder) and os.path.isabs(study.user_attrs["artifact_dir"])
    assert artifact_dir_for(storage, "studies/artifacts") == str(folder)
    assert artifact_dir_for(study) == str(folder)
    assert artifact_dir_for(optuna.storages.InMemoryStorage(), "x") == os.path.abspath("x")
    curves = [m for t in study.trials for m in optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)]
    assert curves and all(m.filename == "lr_schedule.png" for m in curves)
    assert all((folder / m.artifact_id).is_file() for m in curves)

    from optuna_dashboard import wsgi

    app = wsgi(storage, artifact_store=dashboard_artifact_store(storage, "studies/artifacts"))
    trial = next(t for t in study.trials if optuna.artifacts.get_all_artifact_meta(t, storage=study._storage))
    meta = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)[0]
    status, body = _get(app, f"/artifacts/{study._study_id}/{trial._trial_id}/{meta.artifact_id}")
    assert status.startswith("200") and body[:8] == b"\x89PNG\r\n\x1a\n"
    status, body = _get(app, f"/api/studies/{study._study_id}")
    detail = json.loads(body)
    assert detail["objective_names"] == ["val_loss"]
    assert {g["id"] for g in detail["plotly_graph_objects"]} == set(FIGURES)


def _get(app, path: str) -> tuple[str, bytes]:
    seen = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO()}
    response = app(environ, lambda status, headers, *_: seen.setdefault("status", status))
    try:
        return seen["status"] if seen else "", b"".join(response)
    finally:
        getattr(response, "close", lambda: None)()


def test_metric_names() -> None:
    assert metric_name(None) == "value" and metric_name("acc") == "acc"
    assert metric_name(types.SimpleNamespace(metric=None)) == "val_loss"

    def accuracy(out, y):  # noqa: ANN001,ANN202
        return out

    assert metric_name(types.SimpleNamespace(metric=accuracy)) == "val_accuracy"
    study = optuna.create_study()
    name_metric(study)
    assert study.metric_names == ["value"]
    name_metric(study, "val_loss")
    name_metric(study)  # a name already set is kept
    assert study.metric_names == ["val_loss"]


def test_figures_notes_and_range_test(study_dir) -> None:
    result, _, folder = study_dir
    study = result.study
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    figures = {k: json.loads(v) for k, v in get_plotly_graph_objects(
        study._storage.get_study_system_attrs(study._study_id)).items()}
    assert set(figures) == set(FIGURES)
    assert all(f["layout"]["title"]["text"] and f["data"] for f in figures.values())
    assert figures[FIGURES[0]]["layout"]["xaxis"]["title"]["text"] == "fraction of the run"
    assert figures[FIGURES[2]]["layout"]["xaxis"]["type"] == "log"
    from optuna_dashboard import get_note

    assert "wins: val_loss" in get_note(study) and "Top schedules" in get_note(study)

    for t in study.trials:
        note = _note(study, t)
        lr = t.user_attrs["schedule"]["lr"]
        assert f"## Trial {t.number}: {t.user_attrs['schedule']['family']} at peak LR {lr:.3g}, val_loss" in note
        assert '```json\n{\n  "version": 1,' in note  # the spec, indented
    pruned = study.trials[4]
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert "pruned after 1 evaluation of 1/3" in _note(study, pruned) and "non-finite metric nan" in _note(study, pruned)
    assert any("ran to the end: full length (90 steps)" in _note(study, t) for t in study.trials)

    summary = study.user_attrs["range_test"]
    assert summary["iterations"] == 120 and len(json.dumps(summary)) < 400
    metas = {m.filename: m for m in optuna.artifacts.get_all_artifact_meta(study)}
    assert set(metas) == {"range_test.json", "range_test.png"}
    data = json.loads((folder / metas["range_test.json"].artifact_id).read_text())
    assert lrsearch.RangeTestResult.from_dict(data) == _found()

    publish_study(result, "studies/artifacts")  # again, from another folder: nothing duplicated or moved
    assert len(optuna.artifacts.get_all_artifact_meta(study)) == 2
    assert study.user_attrs["artifact_dir"] == str(folder)


def test_every_view_shows_the_lr_a_trial_trained_at_and_the_note_says_why_trials_stopped(study_dir) -> None:
    from optuna_dashboard import get_note
    from optuna_dashboard import wsgi

    from lrsearch.reports._serve import STYLE
    from lrsearch.reports._serve import lrsearch_best
    from lrsearch.reports._serve import serve_app

    result, storage, _ = study_dir
    study = result.study
    for t in study.trials:  # trained_lr: the sampled lr times a promotion's lr_scale, as the spec says
        if "schedule" in t.user_attrs:
            assert t.user_attrs["trained_lr"] == pytest.approx(t.user_attrs["schedule"]["lr"])
            assert t.user_attrs["trained_lr"] == pytest.approx(t.params["lr"] * t.user_attrs.get("lr_scale", 1.0))
    promoted = [t for t in study.trials if "promoted_from" in t.user_attrs]
    assert promoted and all(t.user_attrs["trained_lr"] != pytest.approx(t.params["lr"]) for t in promoted)
    assert all(f"it trained at peak LR {t.user_attrs['trained_lr']:.3g}" in _note(study, t) for t in promoted)

    note = get_note(study)
    best = result.best_schedule
    assert note.startswith(f"## {best.family} wins: val_loss {result.best_value:.4g} at peak LR {best.lr:.3g}")
    why = note[note.index("## Why each trial stopped"):note.index("## Top schedules")]
    counts = {row.split(" | ")[0].strip("| "): int(row.split(" | ")[1].strip(" |"))
              for row in why.splitlines() if row.startswith("| ") and not row.startswith("| why")}
    assert sum(counts.values()) == len(study.trials)
    assert counts["pruned: non-finite metric"] == 1  # trial 4 reported nan
    assert counts["full-length run, ran to the end"] == sum(
        t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["run_steps"] == 90 for t in study.trials)
    assert note.index("## Why each trial stopped") < note.index("## Top schedules")

    served = lrsearch_best(optuna.storages.get_storage(storage))
    app = serve_app(wsgi(served, artifact_store=dashboard_artifact_store(storage, "studies/artifacts")), served)
    seen = {}
    app({**_environ("/"), "PATH_INFO": "/"}, lambda status, headers, *_: seen.update(status=status, headers=dict(headers)))
    assert seen["status"].startswith("302")
    assert seen["headers"]["Location"] == f"/dashboard/studies/{study._study_id}/note"
    status, body = _get(app, f"/dashboard/studies/{study._study_id}")
    assert status.startswith("200") and STYLE in body  # trial pages fit the window: long attrs scroll in their box
    status, body = _get(app, f"/api/studies/{study._study_id}")
    detail = json.loads(body)
    assert [t["number"] for t in detail["best_trials"]] == [result.best_trial.number]  # the Best Trial card
    for t in [*detail["trials"], *detail["best_trials"]]:
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        lr = next(p for p in t["params"] if p["name"] == "lr")
        assert float(lr["param_external_value"]) == lr["param_internal_value"] == pytest.approx(float(attrs["trained_lr"]))


def _environ(path: str) -> dict:
    return {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": io.StringIO()}


def test_value_against_lr_gives_each_of_17_families_its_own_colour_and_shape() -> None:
    from lrsearch.reports import value_against_lr

    names = lrsearch.families()
    trials = [optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=1.0 + i / 10, params={"family": f},
        distributions={"family": optuna.distributions.CategoricalDistribution(names)},
        user_attrs={"schedule": lrsearch.Schedule(f, lr=0.01 * (i + 1)).to_dict(), "run_steps": 90, "full_steps": 90})
        for i, f in enumerate(names)]
    fig = value_against_lr(trials, metric="val_loss")
    looks = {(trace.marker.color, trace.marker.symbol[0]) for trace in fig.data}
    assert len(fig.data) == len(names) == len(looks)


def test_the_best_trial_card_names_the_best_full_length_run_not_a_better_short_one() -> None:
    from lrsearch.reports._serve import lrsearch_best

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    for value, run in ((0.9, 30), (1.2, 90), (1.1, 90)):  # a short run scores lowest
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={
            "schedule": lrsearch.Schedule("cosine", lr=0.1).to_dict(), "run_steps": run, "full_steps": 90}))
    assert storage.get_best_trial(study._study_id).number == 0  # Optuna's answer
    assert lrsearch_best(storage).get_best_trial(study._study_id).number == 2


def test_a_study_kept_before_trained_lr_shows_its_spec_lr() -> None:
    from lrsearch.reports._serve import show_trained_lr

    trial = {"params": [{"name": "lr", "param_internal_value": 0.351, "param_external_value": "0.351"}],
             "user_attrs": [{"key": "schedule", "value": json.dumps({"family": "onecycle", "lr": 0.2945})}]}
    lr = show_trained_lr({"trials": [trial], "best_trials": []})["trials"][0]["params"][0]
    assert lr["param_internal_value"] == 0.2945 and lr["param_external_value"] == "0.2945"
