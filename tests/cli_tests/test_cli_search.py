"""The demo, report and dashboard commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from lrsearch.cli import main
from tests.procs import finish


def test_demo_runs_end_to_end_and_report_reads_it(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--trials", "6", "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    for text in ("1. range test", "2. search", "| 1 |", "3. use the schedule chosen for a run of",
                 "lrsearch dashboard"):
        assert text in out
    target = 10 * int(out.split("chosen for a run of ")[1].split()[0]) // 10
    chosen = tmp_path / "studies" / f"demo_schedule_for_{target}.json"
    if chosen.exists():  # the loss model had enough runs
        assert json.loads(chosen.read_text())["chosen_for"]["total_steps"] == target
        assert f"schedule for {target} steps:" in out
    else:
        assert f"no schedule or law for {target} steps:" in out
    for name in ("demo.db", "demo_range_test.png", "demo_best_schedule.json", "demo_top_schedules.png",
                 "demo_history.png"):
        assert (tmp_path / "studies" / name).exists(), name
    assert main(["report", "studies/demo.db", "--out", "report", "--target-steps", "1000"]) == 0
    out = capsys.readouterr().out
    assert "best schedule" in out and (tmp_path / "report" / "demo_history.png").exists()
    assert "for 1000 steps" in out  # "schedule for ..." or "no schedule or law for ..."
    assert main(["report", "studies/demo.db", "--study", "nope"]) == 2
    assert "--study must name one of the studies" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_on_loopback(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--trials", "3", "--epochs", "1", "--quiet"]) == 0
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lrsearch", "dashboard", "studies/demo.db", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    body = None
    try:
        deadline = time.time() + 300  # generous: the server starts slowly on a busy machine
        while time.time() < deadline and body is None and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.3)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)  # also closes the pipe
    assert body is not None, err.decode()[-2000:]
    assert [s["study_name"] for s in body["study_summaries"]] == ["demo"]


def test_dashboard_warns_before_serving_all_interfaces(tmp_path, monkeypatch, capsys) -> None:
    from lrsearch import reports

    monkeypatch.chdir(tmp_path)
    served = {}
    monkeypatch.setattr(reports, "serve_dashboard", lambda storage, **kw: served.update(kw))
    optuna.create_study(study_name="x", storage="sqlite:///x.db")
    assert main(["dashboard", "sqlite:///x.db", "--host", "0.0.0.0", "--port", "9"]) == 0
    assert "exposes the study to the network" in capsys.readouterr().err and served["host"] == "0.0.0.0"


@pytest.mark.parametrize("url,shown", [("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
                                       ("sqlite:///a.db", "sqlite:///a.db")])
def test_storage_passwords_are_never_printed(url: str, shown: str) -> None:
    from lrsearch.cli import _safe

    assert _safe(url) == shown


def test_demo_prepares_and_workers_join_a_journal_file(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--trials", "0", "--storage", "studies/shared.log", "--study", "shared", "--quiet"]) == 0
    assert "lrsearch worker --study shared" in capsys.readouterr().out
    procs = [subprocess.Popen([sys.executable, "-m", "lrsearch", "worker", "--study", "shared", "--trials", "3",
                               "--epochs", "1", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    codes = finish(procs)
    assert [c for c, _ in codes] == [0, 0], [e for _, e in codes]
    import optuna

    from lrsearch.search.storage._defaults import resolve_storage

    study = optuna.load_study(study_name="shared", storage=resolve_storage("studies/shared.log", "shared"))
    seeds = study.user_attrs["seeds_enqueued"]
    assert seeds == int(0.1 * 8 * 3)  # the default budget's 10% share, at 1/3 of a run each
    assert len(study.trials) >= seeds and sum(t.state.is_finished() for t in study.trials) == 6
