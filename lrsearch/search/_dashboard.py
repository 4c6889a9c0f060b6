"""What optuna-dashboard shows: each trial's LR curve (a PNG artifact; the spec is a user attr),
and on the study the range-test plot and a note with the table of the top schedules."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts import upload_artifact

from lrsearch._range_result import RangeTestResult


if TYPE_CHECKING:
    from lrsearch.search._result import SearchResult


def artifact_store(folder: str) -> FileSystemArtifactStore:
    os.makedirs(folder, exist_ok=True)
    return FileSystemArtifactStore(folder)


def _upload_figure(fig: Any, name: str, folder: str, target: Any, storage: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        fig.savefig(path, dpi=80)
        upload_artifact(artifact_store=artifact_store(folder), file_path=path, study_or_trial=target,
                        storage=storage, mimetype="image/png")


def upload_trial_curve(trial: optuna.trial.Trial, folder: str) -> None:
    """Attach the trial's LR curve as ``lr_schedule.png`` (call while the trial is running).

    An artifact that cannot be written never fails the trial: the reason is kept as the user attr
    ``artifact_error``.
    """
    spec = trial.user_attrs.get("schedule")
    if not isinstance(spec, dict):
        return
    try:
        from lrsearch.plots import plot_schedules
        from lrsearch.schedules import Schedule

        schedule = Schedule.from_dict(spec)
        fig = plot_schedules({schedule.describe(): schedule}, 500)
        fig.axes[0].set_xlabel("optimizer step (of a 500-step run; the spec is length-free)")
        _upload_figure(fig, "lr_schedule.png", folder, trial, None)
    except Exception as err:  # noqa: BLE001 - an artifact must never cost a trial
        trial.set_user_attr("artifact_error", f"{type(err).__name__}: {err}")


def publish_study(result: SearchResult, folder: str) -> None:
    """The study's note (top schedules) and, once, the range-test plot."""
    from optuna_dashboard import save_note

    study = result.study
    try:
        table = result.table(10, include_pruned=True)
    except ValueError:
        return
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts().items()))
    note = [f"## Top schedules\n\n{table}\n\nTrials: {counts}."]
    best = result.best_schedule
    note.append(f"\n## Best spec\n\n```json\n{best.to_json()}\n```\n"
                "Rebuild it for any run length: `Schedule.from_json(spec).build(optimizer, total_steps)`.")
    save_note(study, "\n".join(note))
    data = study.user_attrs.get("range_test")
    if isinstance(data, dict) and not study.user_attrs.get("range_test_plot"):
        fig = RangeTestResult.from_dict(data).plot()
        _upload_figure(fig, "range_test.png", folder, study, None)
        study.set_user_attr("range_test_plot", "range_test.png")
