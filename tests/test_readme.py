"""The README's self-contained Python examples run as written."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import lrsearch


README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)
# blocks that need your own model and data (make_model_and_optimizer, train_one_epoch, ...) are prose
RUNNABLE = [b for b in BLOCKS if "make_model_and_optimizer" not in b and "studies/demo_" not in b
            and "continuing the search example" not in b]


def test_the_readme_has_runnable_examples() -> None:
    assert len(RUNNABLE) >= 2


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.splitlines()[0][:40])
def test_readme_example_runs(block: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
