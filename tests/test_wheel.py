"""The package as a user gets it: ``python -m build`` makes a wheel and an sdist that pass
``twine check``, and the wheel installs into a fresh virtual environment (no system site
packages, no source tree on the path) and runs ``lrsearch demo``.

Minutes and network (the venv's dependencies come from the registry), so these run where
``LRSEARCH_WHEEL_TEST=1``: CI's ``.ci/run`` sets it. torch is installed first at the version of the
running interpreter (from the local wheel when pip finds one, as ``.ci/install`` does) and pinned,
so pip never pulls another build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
import torch


ROOT = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.wheel,
    pytest.mark.skipif(os.environ.get("LRSEARCH_WHEEL_TEST") != "1",
                       reason="builds and installs the wheel (minutes, network): set LRSEARCH_WHEEL_TEST=1 (CI does)"),
]


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: int = 1200) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", str(out), str(ROOT))
    return out


def test_wheel_and_sdist_pass_twine_check_with_complete_metadata(dist: Path) -> None:
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
    assert "PASSED" in run(sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist))
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "lrsearch/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "studies/", "examples/")) for n in names)
    for field in ("License-Expression: MIT", "Keywords: ", "Classifier: Development Status", "Requires-Python: >=3.10",
                  "Description-Content-Type: text/markdown", "Provides-Extra: demo"):
        assert field in meta, field
    with tarfile.open(sdist) as t:
        members = {m.split("/", 1)[1] for m in t.getnames() if "/" in m}
    assert {"LICENSE", "README.md", "pyproject.toml", "lrsearch/__init__.py"} <= members


def test_the_wheel_installs_in_a_fresh_venv_and_runs_the_demo(dist: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = str(env_dir / "bin" / "python")
    # nothing of the source tree or the test venv may leak in (pip would take a source checkout on
    # PYTHONPATH for an installed lrsearch)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    pip = (python, "-m", "pip", "install", "--disable-pip-version-check", "-q")
    pin = "torch==" + torch.__version__.split("+")[0]
    try:  # the local torch wheel, offline, as .ci/install does; its dependencies from the registry
        run(*pip, "--no-index", "--no-deps", pin, env=env)
    except AssertionError:
        pass
    run(*pip, pin, env=env)
    (tmp_path / "constraints.txt").write_text(pin + "\n")
    wheel = next(dist.glob("*.whl"))
    run(*pip, "-c", str(tmp_path / "constraints.txt"), f"{wheel}[demo]", cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    where = run(python, "-c", "import lrsearch, torch; print(lrsearch.__file__, torch.__version__)", cwd=work, env=env)
    assert str(env_dir) in where and str(ROOT) not in where
    out = run(str(env_dir / "bin" / "lrsearch"), "demo", cwd=work, env=env)
    assert "best validation loss" in out
    assert (work / "studies" / "demo.db").exists() and (work / "studies" / "demo_best_schedule.json").exists()
