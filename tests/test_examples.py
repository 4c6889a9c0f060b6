"""Every script in examples/ runs on its tiny settings (``--tiny``), as a user would copy it.

Most run in this process (``main(tiny=True)``, sharing the imports) in a temporary folder; the
parallel-workers example runs as a script, since it starts processes of its own.
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest

import lrsearch


ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
IN_PROCESS = ["own_loop", "task", "range_test", "transfer", "lightning_loop", "huggingface"]
NEEDS = {"lightning_loop": "lightning.pytorch", "huggingface": "transformers"}


def test_every_example_is_tested_and_listed() -> None:
    scripts = sorted(p.stem for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(IN_PROCESS + ["workers"])
    listed = (EXAMPLES / "README.md").read_text()
    assert all(f"{name}.py" in listed for name in scripts)


@pytest.mark.parametrize("name", IN_PROCESS)
def test_example_runs_tiny(name: str, tmp_path, monkeypatch, capsys) -> None:
    if name in NEEDS:
        pytest.importorskip(NEEDS[name])
    monkeypatch.chdir(tmp_path)
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")
    with warnings.catch_warnings():
        # a seconds-long range test may be flagged (never diverged); the frameworks' advice for real jobs
        # (loader workers, log intervals) and Lightning's use of a torch pytree class torch 2.13 deprecates
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", category=FutureWarning)
        namespace["main"](True)
    out = capsys.readouterr().out
    if name == "range_test":
        low, high = (float(v) for v in out.split("search range ")[1].split()[0:3:2])
        assert 0 < low < high
        assert (tmp_path / "range_test.png").stat().st_size > 0
    elif name != "transfer":
        assert "| # | trial | family |" in out  # the search's table of its best runs
    if name == "own_loop":
        lrsearch.Schedule.from_json((tmp_path / "studies/own_loop_best.json").read_text())
    if name == "transfer":
        spec = json.loads((tmp_path / "studies/transfer_best_3x.json").read_text())
        assert spec["chosen_for"]["total_steps"] == 3 * 14 * 2  # 3x the searched run of 2 epochs x 14 batches
        assert "trained 84 steps" in out


@pytest.mark.parametrize("storage", ["journal", "postgresql"])
def test_workers_example_shares_one_storage(storage: str, tmp_path) -> None:
    args = ["--tiny"]
    if storage == "postgresql":  # CI starts one on loopback (.ci/postgres)
        url = os.environ.get("LRSEARCH_PG_URL")
        if not url:
            pytest.skip("no PostgreSQL: set LRSEARCH_PG_URL (CI's .ci/postgres does)")
        args += ["--storage", url, "--study", f"workers_example_{uuid.uuid4().hex[:8]}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("EXAMPLE_EPOCHS", None)
    run = subprocess.run([sys.executable, str(EXAMPLES / "workers.py"), *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    line = next(ln for ln in run.stdout.splitlines() if "trials from 2 workers" in ln)
    assert "complete" in line and "fail" not in line
    assert (tmp_path / "studies/workers.log").exists() == (storage == "journal")
