"""No file outside the working folder from a study name; no password in any output; OS errors as
clear messages, not tracebacks."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest

import lrsearch
from lrsearch.cli import main
from lrsearch.search.storage._defaults import file_stem
from lrsearch.search.storage._defaults import masked
from lrsearch.search.storage._defaults import resolve_storage


optuna.logging.set_verbosity(optuna.logging.WARNING)
PASSWORDS = ["Pa/ss#9x", "p?w=1&x", "s3cr@t!", "a b%2Fc", "weird:pw@@", "ünï€ødé", "'quote\""]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", ["..%2F..%2Fescaped", "a?x=1", "a#b", "../x", "/abs/x", ".", "..", "-rf", "",
                                  "x" * 101, "a\nb", "a b"])
def test_the_default_storage_takes_only_file_safe_study_names(name: str, tmp_path, monkeypatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(ValueError, match="study_name must be"):
        lrsearch.optimize(lambda t: 0.0, n_trials=1, study_name=name, artifacts=None)
    assert _files(tmp_path) == {"work"}


def test_file_stems_are_distinct_and_never_paths() -> None:
    names = ["a?x=1", "a?y=2", "/any/where/x", "../../../x", "x", "..", "a b", "ü"]
    stems = [file_stem(n) for n in names]
    assert len(set(stems)) == len(names) and stems[names.index("x")] == "x"
    assert all("/" not in s and "\\" not in s and s.strip(".") for s in stems)


@pytest.mark.parametrize("name", ["ABSOLUTE/where/x", "../../../x"])
def test_report_writes_only_into_its_out_folder_whatever_the_study_is_called(name, tmp_path, monkeypatch) -> None:
    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    (tmp_path / "where").mkdir()
    name = name.replace("ABSOLUTE", str(tmp_path))  # an absolute path, inside the test's folder
    monkeypatch.chdir(work)
    study = optuna.create_study(study_name=name, storage=resolve_storage("h.db", "h", heartbeat_interval=None))
    for lr in (0.01, 0.1):
        t = study.ask()
        t.set_user_attr("schedule", lrsearch.Schedule("cosine", lr=lr).to_dict())
        t.suggest_float("lr", 1e-4, 1.0, log=True)
        study.tell(t, lr)
    before = _files(tmp_path)
    assert main(["report", "h.db", "--out", "out"]) == 0
    new = _files(tmp_path) - before
    assert new and all(p.startswith("a/b/work/out") for p in new), new


def test_demo_refuses_a_study_name_before_writing_anything(tmp_path, monkeypatch, capsys) -> None:
    work = tmp_path / "a" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["demo", "--study", "../../X", "--trials", "0", "--quiet"]) == 2
    assert "--study must be" in capsys.readouterr().err
    assert _files(tmp_path) == {"a", "a/work"}


@pytest.mark.parametrize("password", PASSWORDS)
def test_masking_hides_any_password_sqlalchemy_accepts(password: str) -> None:
    from urllib.parse import quote

    for url in (f"postgresql+psycopg2://u:{password}@127.0.0.1:54339/db",
                f"postgresql://u:{quote(password, safe='')}@h/db", f"postgresql://u@h/db?password={quote(password)}",
                f"mysql://u:{password}@h/db?charset=utf8"):
        for given in (url, url.encode()):
            shown = masked(given)
            assert "***" in shown and password not in shown and quote(password, safe="") not in shown, (url, shown)
            assert shown.startswith(("postgresql", "mysql"))  # still says which storage


def test_no_password_reaches_the_cli_output(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    secret = "Pa/ss#9x"
    url = f"postgresql+psycopg2://u:{secret}@127.0.0.1:1/db"  # nothing listens there
    assert main(["demo", "--trials", "0", "--storage", url, "--quiet", "--epochs", "1"]) == 2
    assert main(["report", url, "--study", "nope"]) == 2
    out = capsys.readouterr()
    assert secret not in out.out + out.err and "***" in out.err
    with pytest.raises(ValueError) as err:
        lrsearch.optimize(lambda t: 0.0, n_trials=1, storage=url.encode())
    assert secret not in str(err.value)


def test_the_worker_line_for_a_password_url_points_to_an_environment_variable() -> None:
    from lrsearch.cli._study import _worker_line

    line = _worker_line("demo", "postgresql://u:pw@h/db")
    assert "LRSEARCH_STORAGE" in line and "pw@" not in line and "--storage" not in line
    assert _worker_line("demo", "studies/demo.log") == "lrsearch worker --study demo --storage studies/demo.log --trials N"


def test_storage_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    lrsearch.optimize(lambda t: lrsearch.suggest_schedule(t).lr, n_trials=1, study_name="env",
                      storage=str(tmp_path / "env.log"), artifacts=None)
    monkeypatch.setenv("LRSEARCH_STORAGE", str(tmp_path / "env.log"))
    assert main(["report", "--study", "env", "--out", "o"]) == 0
    assert (tmp_path / "o" / "env_best_schedule.json").exists()


def test_postgresql_without_a_driver_uses_the_one_installed() -> None:
    from lrsearch.search.storage._defaults import _driver

    assert _driver("postgresql://u:p@h/db", "postgresql") == "postgresql+psycopg2://u:p@h/db"
    assert _driver("postgresql+pg8000://u@h/db", "postgresql") == "postgresql+pg8000://u@h/db"


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite:///:memory:"])
def test_in_memory_sqlite_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="in-memory"):
        resolve_storage(url, "x")


@pytest.mark.parametrize("where", ["file named studies", "/proc", "/sys"])
def test_storage_folders_that_cannot_be_made_give_value_errors(where: str, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    if where == "file named studies":
        Path("studies").write_text("not a folder")
        storage, args = None, ["report", "--out", "studies/x"]
    else:
        storage = f"{where}/lrsearch-test/x.log"
        args = ["report", storage]
    with pytest.raises(ValueError, match="could not|does not exist|not a folder"):
        lrsearch.optimize(lambda t: 0.0, n_trials=1, study_name="s", storage=storage, artifacts=None)
    assert main(args) == 2 and "error:" in capsys.readouterr().err
    assert not os.path.exists(f"{where}/lrsearch-test")
