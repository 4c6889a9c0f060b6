"""optuna-dashboard as ``lrsearch dashboard`` serves it: opening on lrsearch's answer, with trial
pages that fit the window.

- ``/`` opens the study's note (the newest study when the storage holds several): the winner, the
  peak LR it trained at, its schedule and why every trial stopped, before Optuna's History and
  hyperparameter-importance charts.
- A trial page lists its user attrs one unwrapped line each (``schedule`` is a 200-300 character
  spec): optuna-dashboard 0.21 lets the longest line widen the whole page, so the note's reason and
  spec run off the side. A one-line style lets each box shrink to the window (the long line then
  scrolls inside its own box).
- The LR a trial trained at is the ``lr`` every view shows for it: a run promoted to a longer length
  trains at the sampled ``lr`` times its ``lr_scale``, so the study's API answer (trials, Best
  Trial) shows each trial's ``lr`` param as its user attr ``trained_lr``. The storage keeps the
  sampled point, which is what the sampler learns from.
- The Best Trial card names lrsearch's best (``lrsearch_best``): the best completed run of the
  longest length, not a short screening run that happened to score lower.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import optuna


STYLE = b"<style>/* lrsearch */ .MuiBox-root { min-width: 0; }</style>"
_DETAIL = re.compile(r"/api/studies/\d+")


def show_trained_lr(detail: dict[str, Any]) -> dict[str, Any]:
    """A study's API answer with each trial's ``lr`` param shown as the LR it trained at (``trained_lr``)."""
    for trial in [*detail.get("trials", []), *detail.get("best_trials", [])]:
        attrs = {a.get("key"): a.get("value") for a in trial.get("user_attrs", [])}
        try:  # a study from before trained_lr was kept: its schedule spec's lr
            value = float(attrs["trained_lr"]) if "trained_lr" in attrs else float(json.loads(attrs["schedule"])["lr"])
        except (KeyError, TypeError, ValueError):
            continue
        for param in trial.get("params", []):
            if param.get("name") == "lr":
                param.update(param_internal_value=value, param_external_value=str(value))
    return detail


def note_path(storage: Any) -> str:
    """The dashboard path of the newest study's note (``/dashboard`` when the storage has none)."""
    studies = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not studies:
        return "/dashboard"
    newest = max(studies, key=lambda s: s._study_id)
    return f"/dashboard/studies/{newest._study_id}/note"


def serve_app(app: Callable[..., Iterable[bytes]], storage: Any) -> Callable[..., Iterable[bytes]]:
    """Wrap optuna-dashboard's WSGI ``app`` on ``storage``: ``/`` redirects to the note, pages get ``STYLE``."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("", "/"):
            start_response("302 Found", [("Location", note_path(storage)), ("Content-Length", "0")])
            return [b""]
        detail = _DETAIL.fullmatch(path) is not None
        if not (path.startswith("/dashboard") or detail):
            return app(environ, start_response)
        seen: dict[str, Any] = {}
        body = app(environ, lambda status, headers, *exc: seen.update(status=status, headers=headers))
        try:
            data = b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()
        headers = [(k, v) for k, v in seen["headers"] if k.lower() != "content-length"]
        kind = next((v for k, v in headers if k.lower() == "content-type"), "")
        if kind.startswith("text/html"):
            data = data.replace(b"</head>", STYLE + b"</head>", 1)
        elif detail and kind.startswith("application/json") and seen["status"].startswith("200"):
            data = json.dumps(show_trained_lr(json.loads(data))).encode()
        start_response(seen["status"], [*headers, ("Content-Length", str(len(data)))])
        return [data]

    return wrapped


def lrsearch_best(storage: Any) -> Any:
    """``storage`` (an object the dashboard alone uses) whose ``get_best_trial`` answers lrsearch's
    best, ``SearchResult.best_trial``: Optuna's ranks short screening runs with full ones."""
    from lrsearch.search import SearchResult

    optunas = storage.get_best_trial

    def get_best_trial(study_id: int) -> optuna.trial.FrozenTrial:
        study = optuna.load_study(study_name=storage.get_study_name_from_id(study_id), storage=storage)
        try:
            return SearchResult(study).best_trial
        except ValueError:  # no completed trial with a schedule (not an lrsearch study): Optuna's
            return optunas(study_id)

    storage.get_best_trial = get_best_trial
    return storage


def serve(storage: Any, *, host: str, port: int, artifact_store: Any = None) -> None:
    """Serve optuna-dashboard on ``storage`` at ``host:port`` (``serve_app``), until Ctrl-C."""
    from bottle import run
    from optuna_dashboard import wsgi

    storage = lrsearch_best(storage)
    run(serve_app(wsgi(storage, artifact_store=artifact_store), storage), host=host, port=port)
