"""The CLI checks every flag before it writes anything, and its errors name the flag (issue 26)."""

from __future__ import annotations

import os
import sys

import pytest

from lrsearch.cli import main


@pytest.fixture
def no_training(monkeypatch):  # noqa: ANN201
    """The demo's task, replaced by one that fails the test: a refused flag must stop the demo first."""
    from lrsearch.cli import _demo

    def refuse(*args, **kwargs):  # noqa: ANN002,ANN003,ANN202
        raise AssertionError("the demo started training with a bad flag")

    monkeypatch.setattr(_demo, "mnist1d_task", refuse)


@pytest.mark.parametrize("argv,flag", [
    (["demo", "--budget", "-1"], "--budget: must be a finite number > 0 but got -1"),
    (["demo", "--budget", "nan"], "--budget: must be a finite number > 0"),
    (["demo", "--trials", "-2"], "--trials: must be >= 0 but got -2"),
    (["demo", "--epochs", "0"], "--epochs: must be >= 1 but got 0"),
    (["demo", "--seed", "-1"], "--seed: must be in [0, 4294967295] but got -1"),
    (["demo", "--target-steps", "0"], "--target-steps: must be >= 1"),
    (["worker", "--trials", "x"], "--trials: must be an integer but got 'x'"),
    (["report", "--top", "0"], "--top: must be >= 1 but got 0"),
    (["gallery", "--steps", "0"], "--steps: must be in [1, 10000000] but got 0"),
    (["dashboard", "--port", "70000"], "--port: must be in [0, 65535] but got 70000"),
])
def test_bad_numbers_are_refused_before_any_command_runs(argv: list, flag: str, tmp_path, monkeypatch, capsys,
                                                         no_training) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and flag in capsys.readouterr().err
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("argv,message", [
    (["demo", "--study", "../x"], "--study must be 1-100 letters"),
    (["demo", "--out", "nowhere/plots"], "--out 'nowhere/plots' is in a folder that does not exist ('nowhere')"),
    (["demo", "--storage", "nowhere/s.log"], "--storage 'nowhere/s.log' is in a folder that does not exist"),
    (["worker", "--storage", "nowhere/s.log"], "--storage 'nowhere/s.log' is in a folder that does not exist"),
    (["dashboard", "--artifact-dir", "nowhere/art"], "--artifact-dir 'nowhere/art' is in a folder that does not"),
])
def test_bad_names_and_paths_are_refused_before_the_demo_writes(argv: list, message: str, tmp_path, monkeypatch,
                                                                capsys, no_training) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "storage=" not in err  # the CLI's flag is --storage
    assert not os.listdir(tmp_path)


def test_an_objective_file_imports_its_neighbours_and_its_errors_name_the_flag(tmp_path, monkeypatch) -> None:
    from lrsearch.cli._study import _objective

    (tmp_path / "common_lrs26.py").write_text("VALUE = 0.25\n")
    (tmp_path / "obj.py").write_text("from common_lrs26 import VALUE\n\ndef objective(trial):\n    return VALUE\n")
    (tmp_path / "broken.py").write_text("import no_such_module_lrs26\n")
    monkeypatch.chdir("/")
    monkeypatch.setattr(sys, "path", list(sys.path))  # the file's folder goes on the path: undone after the test
    monkeypatch.delitem(sys.modules, "common_lrs26", raising=False)
    assert _objective(f"{tmp_path}/obj.py:objective")(None) == 0.25
    with pytest.raises(ValueError, match=r"--objective '.*broken.py:f' could not be imported: "
                                         r"ModuleNotFoundError: No module named 'no_such_module_lrs26'"):
        _objective(f"{tmp_path}/broken.py:f")
    sys.modules.pop("common_lrs26", None)
