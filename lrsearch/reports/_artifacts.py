"""Where a study's dashboard artifacts live: a folder whose absolute path the study records as the
user attr ``artifact_dir`` (the first one given wins), so ``lrsearch dashboard <storage>`` serves
them from any working directory (``dashboard_artifact_store``).
"""

from __future__ import annotations

import os
from typing import Any
from typing import BinaryIO

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound


ARTIFACT_DIR = "artifact_dir"  # the study user attr holding the absolute artifact folder


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
        from lrsearch.search.storage import resolve_storage

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
