"""Every Python block of the README runs as written (no exemptions): the front door's example is
complete. The bash blocks run elsewhere: `make demo`/`make test` in CI's `.ci/run`, the wheel's
build-and-install in `tests/test_wheel.py`."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import lrsearch


ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_the_readme_is_a_front_door() -> None:
    assert len(README.splitlines()) <= 250
    assert "make demo" in README and "make test" in README
    assert len(BLOCKS) >= 1


def test_the_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", README):
        assert (ROOT / target).exists(), target


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_readme_example_runs(block: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    if "export_best" in block:
        assert lrsearch.Schedule.from_json((tmp_path / "best.json").read_text())
