"""The OptunaHub package for ``ForecastPruner`` (``optunahub-registry/package/pruners/lrsearch_forecast``)
follows OptunaHub's layout and README template, its own test passes, and its example runs."""

from __future__ import annotations

import importlib.util
import re
import runpy
import sys
import types
from pathlib import Path

import optuna
import pytest


ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "optunahub-registry" / "package" / "pruners" / "lrsearch_forecast"


def load_package() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("lrsearch_forecast", PACKAGE / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_layout_and_readme_front_matter() -> None:
    assert {"__init__.py", "README.md", "LICENSE", "example.py", "requirements.txt"} <= {p.name for p in PACKAGE.iterdir()}
    front = re.match(r"---\n(.*?)\n---\n", (PACKAGE / "README.md").read_text(), flags=re.S)
    assert front
    fields = dict(line.split(": ", 1) for line in front.group(1).splitlines())
    assert set(fields) == {"author", "title", "description", "tags", "optuna_versions", "license"}
    assert "pruner" in fields["tags"].strip("[]").split(", ")  # OptunaHub requires it under package/pruners/
    assert fields["license"] == "MIT License"
    assert optuna.__version__ in fields["optuna_versions"]  # the version these tests ran against
    readme = (PACKAGE / "README.md").read_text()
    for section in ("## Abstract", "## APIs", "## Installation", "## Example"):
        assert section in readme
    assert (PACKAGE / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()


def test_the_packages_own_test_passes() -> None:
    namespace = runpy.run_path(str(PACKAGE / "tests" / "test_lrsearch_forecast.py"))
    namespace["test_prunes_a_curve_heading_for_a_poor_end_but_not_a_late_decay"]()


def test_the_example_runs_and_prunes(monkeypatch, capsys) -> None:
    # optunahub.load_module fetches the package from the registry; here it loads the local copy
    hub = types.ModuleType("optunahub")
    hub.load_module = lambda package: load_package()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "optunahub", hub)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        runpy.run_path(str(PACKAGE / "example.py"), run_name="__main__")
    finally:
        optuna.logging.set_verbosity(verbosity)
    out = capsys.readouterr().out
    n_pruned = int(re.search(r"(\d+) of 30 trials pruned", out).group(1))
    assert n_pruned >= 1, out
