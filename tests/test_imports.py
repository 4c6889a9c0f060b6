"""Import boundaries: the pure layer loads neither torch nor optuna; nothing loads matplotlib."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


@pytest.mark.parametrize("statement", ["import lrsearch.schedules", "from lrsearch import Schedule, PlateauMonitor"])
def test_pure_layer_loads_no_torch_optuna_or_matplotlib(statement: str) -> None:
    loaded = _loaded_after(statement)
    assert not loaded & {"torch", "optuna", "matplotlib"}


def test_import_lrsearch_never_loads_matplotlib() -> None:
    loaded = _loaded_after("import lrsearch; lrsearch.ScheduleLR; lrsearch.Schedule('cosine').curve(10)")
    assert "torch" in loaded and "matplotlib" not in loaded


def test_public_names_resolve() -> None:
    import lrsearch

    for name in lrsearch.__all__:
        assert getattr(lrsearch, name) is not None
    with pytest.raises(AttributeError):
        lrsearch.not_a_name  # noqa: B018


def test_library_code_never_prints() -> None:
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "lrsearch"
    offenders = [
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if p.parent.name != "cli" and ("print(" in p.read_text() or "sys.exit" in p.read_text())
    ]
    assert offenders == []


def test_no_module_is_a_god_file() -> None:
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1] / "lrsearch"
    sizes = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in root.rglob("*.py")}
    assert max(sizes.values()) <= 320, sizes
