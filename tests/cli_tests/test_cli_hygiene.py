"""The CLI a new user meets: missing files, help text, workers for any study, Ctrl-C."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import lrsearch
from lrsearch.cli import build_parser
from lrsearch.cli import main


optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("command", ["report", "dashboard"])
@pytest.mark.parametrize("storage", ["typo.db", "typo.log", "sqlite:///typo.db", None])
def test_a_missing_storage_is_not_found_and_nothing_is_created(command, storage, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LRSEARCH_STORAGE", raising=False)
    assert main([command] + ([storage] if storage else [])) == 2
    assert "not found" in capsys.readouterr().err
    assert list(tmp_path.rglob("*")) == []


def test_every_option_has_help_text() -> None:
    missing = []
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                missing += [f"{name} {a.dest}" for a in sub._actions
                            if not isinstance(a, argparse._HelpAction) and not a.help]
    assert missing == []


def test_a_worker_joins_any_study_with_its_own_objective(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(
        "import lrsearch\n\ndef objective(trial):\n    return abs(lrsearch.suggest_schedule(trial).lr - 0.01)\n")
    storage = str(tmp_path / "mine.log")
    lrsearch.optimize(lambda t: lrsearch.suggest_schedule(t).lr, n_trials=0, study_name="mine", storage=storage,
                      artifacts=None)
    out = subprocess.run([sys.executable, "-m", "lrsearch", "worker", "--study", "mine", "--storage", storage,
                          "--trials", "3", "--objective", "mine.py:objective", "--quiet"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-800:]
    assert "3 complete" in out.stdout
    for bad in ("mine.py", "nofile.py:objective", "mine.py:nothing", "os.path:sep"):
        with pytest.raises(ValueError, match="--objective"):
            from lrsearch.cli._study import _objective

            _objective(bad)


def test_an_interrupted_command_says_how_to_resume_and_does_not_exit_0(tmp_path, capsys) -> None:
    from lrsearch.cli._study import _interrupted

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="s")
    assert _interrupted(lrsearch.SearchResult(study, interrupted=True), "lrsearch demo --study s") == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume with:  lrsearch demo --study s" in err


def test_the_demo_writes_no_tracked_file() -> None:
    tracked = subprocess.run(["git", "ls-files", "studies"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parents[2]).stdout.split()
    generated = [p for p in tracked if p.startswith(("studies/demo", "studies/artifacts/"))]
    assert generated == []


def test_help_says_what_lrsearch_and_each_command_do_for_a_user() -> None:
    parser = build_parser()
    text = parser.format_help()
    assert "learning-rate schedule" in text and "prints or exits" not in text and "lrsearch demo" in text
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {a.dest for a in commands._choices_actions if a.help} == set(commands.choices)
    assert all(len(sub.description or "") > 40 for sub in commands.choices.values())


def test_an_interrupted_command_says_when_its_best_is_only_a_short_run(capsys) -> None:
    from lrsearch.cli._study import _interrupted

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage(), study_name="s")
    study.add_trial(optuna.trial.create_trial(value=1.25, user_attrs={
        "schedule": lrsearch.Schedule("cosine", lr=0.1).to_dict(), "run_steps": 30, "full_steps": 90}))
    _interrupted(lrsearch.SearchResult(study, interrupted=True), "lrsearch demo --study s")
    assert "best so far 1.25 (cosine, 1/3 run)" in capsys.readouterr().err
