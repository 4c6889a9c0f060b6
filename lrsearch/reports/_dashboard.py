"""What optuna-dashboard shows of a study: the metric's name, figures, notes and artifacts.

``DashboardRecorder`` is the search's recorder that writes all of it as the study runs; the entry
point ``lrsearch.optimize`` hands it to the search.

On the study page: the metric's name (``name_metric``), three plotly figures (the top LR curves
overlaid over the fraction of the run, the best value per family, value against peak LR by
family), a note with the table of the top schedules, and the range test as artifacts (its data
``range_test.json`` and its plot; the ``range_test`` user attr keeps a short summary). On each
finished trial: a note (family, value, why it stopped, the indented spec) and, for a full-length
run, its LR curve as ``lr_schedule.png``.

Where the artifacts live: ``_artifacts``.
"""

from __future__ import annotations

import json
import os
import tempfile
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.artifacts import get_all_artifact_meta
from optuna.artifacts import upload_artifact

from lrsearch._checks import check_folder
from lrsearch._checks import make_folder
from lrsearch.rangetest import RangeTestResult
from lrsearch.reports._artifacts import artifact_store
from lrsearch.reports._artifacts import study_artifact_dir
from lrsearch.search import Recorder


if TYPE_CHECKING:
    from lrsearch.search import SearchResult

FIGURES = ("lrsearch-top-schedules", "lrsearch-best-per-family", "lrsearch-value-vs-lr")


def metric_name(task_or_name: Any = None) -> str:
    """``val_loss`` for a task without a metric, ``val_<its metric's name>`` for one with, a
    string as it is, ``value`` for a plain objective (``None``)."""
    if isinstance(task_or_name, str):
        return task_or_name
    if task_or_name is None:
        return "value"
    metric = getattr(task_or_name, "metric", None)
    if metric is None:
        return "val_loss"
    name = getattr(metric, "__name__", "metric")
    return f"val_{'metric' if name == '<lambda>' else name}"


def name_metric(study: optuna.Study, task_or_name: Any = None) -> None:
    """Name the objective in the dashboard (not ``Objective 0``): see ``metric_name``. Without a
    name, one the study already has is kept."""
    if task_or_name is None and study.metric_names is not None:
        return
    name = metric_name(task_or_name)
    if study.metric_names != [name]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([name])


def _upload(target: Any, folder: str, name: str, write: Any, mimetype: str, storage: Any = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        write(path)
        upload_artifact(artifact_store=artifact_store(folder), file_path=path, study_or_trial=target,
                        storage=storage, mimetype=mimetype)


def _png(fig: Any) -> Any:
    return lambda path: fig.savefig(path, dpi=100)


def upload_trial_curve(trial: optuna.trial.Trial, folder: str) -> None:
    """Attach the trial's LR curve as ``lr_schedule.png`` (call while the trial is running).

    An artifact that cannot be written never fails the trial: the reason is kept as the user attr
    ``artifact_error``.
    """
    spec = trial.user_attrs.get("schedule")
    if not isinstance(spec, dict):
        return
    try:
        from lrsearch.reports._figures import trial_curve
        from lrsearch.schedules import Schedule

        schedule = Schedule.from_dict(spec)
        full = trial.user_attrs.get("full_steps")
        fig = trial_curve(schedule, full if isinstance(full, int) and full > 0 else None,
                          f"Trial {trial.number}: {schedule.describe()}")
        _upload(trial, study_artifact_dir(trial.study, folder), "lr_schedule.png", _png(fig), "image/png")
    except Exception as err:  # noqa: BLE001 - an artifact must never cost a trial
        trial.set_user_attr("artifact_error", f"{type(err).__name__}: {err}")


def range_test_summary(found: RangeTestResult) -> dict[str, Any]:
    """What the study's ``range_test`` user attr keeps: a few numbers, not the curve."""
    low, high = found.search_range()
    return {"iterations": int(found.iterations), "search_range": [float(f"{low:.4g}"), float(f"{high:.4g}")],
            "suggestions": {k: None if v is None else float(f"{v:.4g}") for k, v in found.suggestions().items()},
            "stop_reason": found.stop_reason, "data": "artifact range_test.json (and range_test.png)"}


def record_range_test(study: optuna.Study, found: RangeTestResult, folder: str | None) -> None:
    """Keep the range test with the study: its data as the artifact ``range_test.json`` and its plot
    as ``range_test.png`` (once), a short summary as the user attr ``range_test``. Without an
    artifact folder the user attr keeps the whole data (``RangeTestResult.from_dict`` reads it)."""
    if folder is None:
        study.set_user_attr("range_test", found.to_dict())
        return
    folder = study_artifact_dir(study, folder)
    have = {m.filename for m in get_all_artifact_meta(study)}
    if "range_test.json" not in have:
        text = json.dumps(found.to_dict())
        _upload(study, folder, "range_test.json", lambda path: Path(path).write_text(text), "application/json")
    if "range_test.png" not in have:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9.0, 5.0), layout="constrained")
        ax = fig.add_subplot()
        found.plot(ax=ax)
        low, high = found.search_range()
        ax.set_title(f"LR range test: {found.iterations} steps; the search's peak-LR range {low:.3g} .. {high:.3g}",
                     fontsize=11)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
        _upload(study, folder, "range_test.png", _png(fig), "image/png")
    summary = range_test_summary(found)
    if study.user_attrs.get("range_test") != summary:
        study.set_user_attr("range_test", summary)


def _save_notes(study: optuna.Study, metric: str) -> None:
    """A note on every finished trial; unchanged notes are not written again."""
    from optuna_dashboard import save_note

    from lrsearch.reports._notes import promotions
    from lrsearch.reports._notes import trial_note

    try:
        from optuna_dashboard._note import get_note_from_system_attrs
    except ImportError:  # pragma: no cover - a private helper: without it, every note is written
        get_note_from_system_attrs = None
    storage = study._storage
    attrs = storage.get_study_system_attrs(study._study_id)
    trials = study.get_trials(deepcopy=False)
    promoted = promotions(trials)
    for t in trials:
        if not t.state.is_finished():
            continue
        body = trial_note(t, metric, promoted.get(t.number))
        if get_note_from_system_attrs is not None and get_note_from_system_attrs(attrs, t._trial_id)["body"] == body:
            continue
        save_note(types.SimpleNamespace(storage=storage, study=study, _trial_id=t._trial_id), body)  # type: ignore[arg-type]


def _save_figures(study: optuna.Study, metric: str) -> bool:
    """The plotly figures on the study page; ``False`` (none saved) without plotly."""
    from optuna_dashboard import save_plotly_graph_object

    try:
        import plotly  # noqa: F401
    except ImportError:
        return False

    from lrsearch.reports._figures import best_per_family
    from lrsearch.reports._figures import top_schedules
    from lrsearch.reports._figures import value_against_lr

    trials = study.get_trials(deepcopy=False)
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    for gid, build in zip(FIGURES, (top_schedules, best_per_family, value_against_lr)):
        save_plotly_graph_object(study, build(trials, maximize=maximize, metric=metric), graph_object_id=gid)
    return True


def publish_study(result: SearchResult, folder: str) -> None:
    """After a search: the metric's name, the figures, the notes and, once, the range test."""
    from optuna_dashboard import save_note

    study = result.study
    folder = study_artifact_dir(study, folder)
    name_metric(study)
    metric = (study.metric_names or ["value"])[0]
    data = study.user_attrs.get("range_test")
    if isinstance(data, dict) and "lrs" in data:  # the whole curve: move it to an artifact
        record_range_test(study, RangeTestResult.from_dict(data), folder)
    _save_notes(study, metric)
    if not result.top(1):  # nothing completed yet: no answer to write
        return
    figures = _save_figures(study, metric)
    save_note(study, study_note(result, metric, figures))


def study_note(result: SearchResult, metric: str, figures: bool = True) -> str:
    """The study's note, lrsearch's answer first: the winner, the peak LR it trained at, its schedule,
    why every trial stopped (counts per reason), then the top schedules and the best spec."""
    from lrsearch.reports._notes import stop_counts

    study, best_trial = result.study, result.best_trial
    best, optimizer = result.best_schedule, result.best_optimizer
    run = "full-length run" if best_trial.user_attrs.get("run_steps") == best_trial.user_attrs.get("full_steps") \
        else "longest run so far"
    budget = study.user_attrs.get("budget")
    spent = f"{result.spent:.2f}" + (f" of {budget:g}" if isinstance(budget, (int, float)) else "")
    sampled, scale = best_trial.params.get("lr"), best_trial.user_attrs.get("lr_scale")
    moved = ""
    if isinstance(sampled, float) and isinstance(scale, (int, float)) and abs(sampled - best.lr) > 1e-12 * best.lr:
        moved = (f" It trained at peak LR {best.lr:.3g} (user attr `trained_lr`): the sampler's point `lr` "
                 f"{sampled:.3g} times `lr_scale` {scale:.3g}, as a run promoted to a longer length does. "
                 "`lrsearch dashboard` shows every trial's `lr` as the LR it trained at; the storage keeps the "
                 "sampled point, which the sampler learns from (plain `optuna-dashboard` shows that).")
    rows = "\n".join(f"| {kind} | {n} |" for kind, n in stop_counts(study.get_trials(deepcopy=False)).items())
    note = [f"## {best.family} wins: {metric} {result.best_value:.4g} at peak LR {best.lr:.3g}", "",
            f"Trial {best_trial.number}, a {run}: `{best.describe()}`"
            + (f" with `{optimizer.describe()}`" if optimizer else "") + f".{moved}", "",
            f"Trials: {result.counts_text()}; budget spent: {spent} full-run equivalents.", "",
            f"## Why each trial stopped\n\n| why | trials |\n|---|---|\n{rows}", "",
            "Each trial's note says why it stopped, with the rule and its numbers.", "",
            f"## Top schedules (peak LR: the LR each trial trained at)\n\n{result.table(10, include_pruned=True)}", "",
            ("The study's main page (first icon on the left) shows the top LR curves over the fraction of the run, "
             "the best value per family, and the value against peak LR by family." if figures else
             "(`pip install plotly` for the figures of the top LR curves and of the families.)"), "",
            f"## Best spec\n\n```json\n{json.dumps(best.to_dict(), indent=2)}\n```\n"
            "Rebuild it for any run length: `Schedule.from_json(spec).build(optimizer, total_steps)`."]
    return "\n".join(note)


class DashboardRecorder(Recorder):
    """The search's recorder for optuna-dashboard: the metric's name and the range test when the study
    starts, the LR curve of each trial that trained a full-length run, the notes and figures at the end.

    Args:
        folder: Where the artifacts go (made absolute, recorded by the study); ``None`` writes no
            artifacts: the range test's whole data is then kept in the study's user attrs.
    """

    def __init__(self, folder: str | None = "studies/artifacts") -> None:
        self.folder = None if folder is None else check_folder("artifacts", folder)  # made when the study starts

    def started(self, study: optuna.Study, task: Any, range_test: RangeTestResult | None) -> None:
        if self.folder is not None:
            make_folder("artifacts", self.folder)  # as mkdir: a user-named folder's parent must exist
        name_metric(study, task)  # the dashboard shows "val_loss", not "Objective 0"
        if range_test is not None:
            record_range_test(study, range_test, self.folder)  # data and plot as artifacts, a summary as an attr

    def trained(self, trial: optuna.trial.Trial) -> None:
        full = trial.user_attrs.get("full_steps")
        if self.folder is not None and full is not None and trial.user_attrs.get("run_steps") == full:
            upload_trial_curve(trial, self.folder)

    def finished(self, result: SearchResult) -> None:
        if self.folder is not None:
            publish_study(result, self.folder)
