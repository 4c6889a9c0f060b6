"""What optuna-dashboard shows of a study, and where it finds the artifacts.

On the study page: the metric's name (``name_metric``), three plotly figures (the top LR curves
overlaid over the fraction of the run, the best value per family, value against peak LR by
family), a note with the table of the top schedules, and the range test as artifacts (its data
``range_test.json`` and its plot; the ``range_test`` user attr keeps a short summary). On each
finished trial: a note (family, value, why it stopped, the indented spec) and, for a full-length
run, its LR curve as ``lr_schedule.png``.

Artifacts live in a folder whose absolute path the study records as the user attr
``artifact_dir`` (the first one given wins), so ``lrsearch dashboard <storage>`` serves them from
any working directory (``dashboard_artifact_store``).
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
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts import get_all_artifact_meta
from optuna.artifacts import upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from lrsearch.rangetest._result import RangeTestResult


if TYPE_CHECKING:
    from lrsearch.search._result import SearchResult

ARTIFACT_DIR = "artifact_dir"  # the study user attr holding the absolute artifact folder
FIGURES = ("lrsearch-top-schedules", "lrsearch-best-per-family", "lrsearch-value-vs-lr")


def artifact_store(folder: str) -> FileSystemArtifactStore:
    """A file-system artifact store at ``folder`` made absolute (and created)."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    return FileSystemArtifactStore(folder)


def study_artifact_dir(study: optuna.Study, folder: str) -> str:
    """The study's artifact folder: the one it recorded, else ``folder`` made absolute, recorded now.

    A recorded folder missing on this machine (another host's) is left recorded; this process then
    writes to ``folder``.
    """
    path = os.path.abspath(folder)
    recorded = study.user_attrs.get(ARTIFACT_DIR)
    if isinstance(recorded, str) and (os.path.isdir(recorded) or recorded == path):
        return recorded
    if recorded is None:
        study.set_user_attr(ARTIFACT_DIR, path)
    return path


def _recorded_dirs(storage: Any) -> list[str]:
    if isinstance(storage, str):
        from lrsearch.search.storage._defaults import resolve_storage

        storage = resolve_storage(storage, "lrsearch", heartbeat_interval=None)
    dirs = []
    for summary in optuna.get_all_study_summaries(storage):
        path = summary.user_attrs.get(ARTIFACT_DIR)
        if isinstance(path, str) and os.path.isdir(path) and path not in dirs:
            dirs.append(path)
    return dirs


def artifact_dir_for(study_or_storage: Any, default: str = "studies/artifacts") -> str:
    """Where a study's (or a storage's first study's) artifacts are: the recorded absolute folder
    when it exists here, else ``default`` made absolute."""
    if isinstance(study_or_storage, optuna.Study):
        recorded = study_or_storage.user_attrs.get(ARTIFACT_DIR)
        dirs = [recorded] if isinstance(recorded, str) and os.path.isdir(recorded) else []
    else:
        dirs = _recorded_dirs(study_or_storage)
    return dirs[0] if dirs else os.path.abspath(default)


class _Folders:
    """An artifact store reading from several folders (the first that holds an id), writing to the
    first: one dashboard serves every study of a storage, whichever folder each recorded."""

    def __init__(self, folders: list[str]) -> None:
        self.stores = [artifact_store(f) for f in folders]

    def open_reader(self, artifact_id: str) -> BinaryIO:
        for store in self.stores:
            try:
                return store.open_reader(artifact_id)
            except ArtifactNotFound:
                continue
        raise ArtifactNotFound(f"artifact {artifact_id} is in none of the artifact folders.")

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.stores[0].write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        for store in self.stores:
            store.remove(artifact_id)


def dashboard_artifact_store(storage: Any, default: str = "studies/artifacts") -> Any:
    """The artifact store for optuna-dashboard on ``storage`` (a URL, path or storage object):
    every folder its studies recorded, then ``default`` (made absolute)."""
    folders = _recorded_dirs(storage)
    if os.path.abspath(default) not in folders:
        folders.append(os.path.abspath(default))
    return _Folders(folders) if len(folders) > 1 else artifact_store(folders[0])


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
        from lrsearch.reports import trial_curve
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

    from lrsearch.reports import trial_note
    from lrsearch.reports._notes import promotions

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

    from lrsearch.reports import best_per_family
    from lrsearch.reports import top_schedules
    from lrsearch.reports import value_against_lr

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
    try:
        table = result.table(10, include_pruned=True)
    except ValueError:
        return
    figures = _save_figures(study, metric)
    counts = result.counts_text()
    best, optimizer = result.best_schedule, result.best_optimizer
    note = [f"## {best.family} wins: {metric} {result.best_value:.4g}", "",
            f"`{best.describe()}`" + (f" with `{optimizer.describe()}`" if optimizer else "")
            + f" (trial {result.best_trial.number}). Trials: {counts}.", "",
            "The study's main page shows the top LR curves over the fraction of the run, the best value per "
            "family, and the value against peak LR by family. Each trial's note says why it stopped." if figures else
            "(`pip install plotly` for the figures of the top LR curves and of the families.)", "",
            f"## Top schedules\n\n{table}", "",
            f"## Best spec\n\n```json\n{json.dumps(best.to_dict(), indent=2)}\n```\n"
            "Rebuild it for any run length: `Schedule.from_json(spec).build(optimizer, total_steps)`."]
    save_note(study, "\n".join(note))
