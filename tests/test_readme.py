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


def _results_quoting(command: str) -> str | None:
    """The committed result file that quotes ``command`` (its backticked part) verbatim, if one does."""
    quoted = re.search(r"`([^`]+)`", command)
    for path in sorted((ROOT / "studies" / "results").glob("*.md")) if quoted else ():
        text = path.read_text()
        if f"`{quoted.group(1)}`" in text:
            return text
    return None


@pytest.mark.parametrize("section", ["Headline numbers", "Transfer"])
def test_the_readme_numbers_are_the_committed_results(section: str) -> None:
    table = README.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in table.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) >= 4
    previous = ""
    for row in rows:
        _, claim, number, command, _ = (c.strip() for c in row.split("|"))
        command = previous if command == "same" else command
        previous = command
        numbers = re.findall(r"\d+\.\d+(?:e-\d+)?", number)
        bench = re.search(r"studies/(bench_\w+)\.py", command)
        if bench:
            results = _results_quoting(command) or (ROOT / "studies" / "results" / f"{bench.group(1)}.md").read_text()
        else:  # the parity table of the docs, which `python -m tests.training_tests.test_torch_parity` prints
            assert "tests.training_tests.test_torch_parity" in command
            results = (ROOT / "docs" / "parity.md").read_text()
            errors = [float(e) for e in re.findall(r"^\| [A-Z]\w+.*\| (\d\.\de[+-]\d+) \|$", results, flags=re.M)]
            assert f"({len(errors)} configurations" in claim and max(errors) == float(numbers[0])
        for n in numbers:
            assert n in results, f"{n} ({claim}) is not in the results of {command}"


def test_the_readmes_shell_commands_run_in_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    wheel_test = (ROOT / "tests" / "test_wheel.py").read_text()
    commands = [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S)
                for line in block.splitlines() if line.strip()]
    assert commands
    for command in commands:
        if command.startswith("make "):
            assert command in ci, command
        else:  # the wheel: built, installed with the demo extra in a fresh venv, demo run
            assert command.split()[0] in ("python", "pip"), command
            assert '"-m", "build"' in wheel_test and "[demo]" in wheel_test and '"demo"' in wheel_test
    assert "tests/test_wheel.py" in ci


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_readme_example_runs(block: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})  # noqa: S102 - our own README
    if "export_best" in block:
        assert lrsearch.Schedule.from_json((tmp_path / "best.json").read_text())
