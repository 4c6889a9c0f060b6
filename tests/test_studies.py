"""The example studies run end to end at a tiny size (they import only public lrsearch names)."""

from __future__ import annotations

import ast
import math
import warnings
from pathlib import Path

import pytest

import lrsearch


STUDIES = Path(__file__).resolve().parents[1] / "studies"


@pytest.fixture(autouse=True)
def _studies_on_path(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(STUDIES))


def test_range_test_study_saves_its_plot(tmp_path) -> None:
    import range_test_mnist1d

    out = tmp_path / "rt.png"
    result = range_test_mnist1d.run("adam", str(out), num_iter=40, verbose=False)
    assert out.stat().st_size > 10_000
    low, high = result.search_range()
    assert 0 < low < high and result.iterations <= 40


def test_bench_lr_find_quick(capsys) -> None:
    import bench_lr_find

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrsearch.RangeTestWarning)
        bench_lr_find.main(["--quick", "--skip-overhead"])
    out = capsys.readouterr().out
    assert "lrsearch range covers both" in out and "torch-lr-finder steepest" in out


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.py")), ids=lambda p: p.name)
def test_studies_import_only_public_names(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lrsearch"):
            assert node.module == "lrsearch", f"{path.name} imports from {node.module}"
            assert all(a.name in lrsearch.__all__ for a in node.names), path.name
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "lrsearch":
            assert node.attr in lrsearch.__all__, f"{path.name}: lrsearch.{node.attr}"


def test_no_study_file_over_320_lines() -> None:
    """Like the package: the benchmarks share harness.py instead of growing copies of it."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in STUDIES.glob("*.py")}
    assert max(sizes.values()) <= 320, sizes


@pytest.mark.parametrize("name", ["mnist1d_schedules", "digits_schedules", "regression_schedules"])
def test_example_studies_run_tiny(name: str, tmp_path, monkeypatch, capsys) -> None:
    import importlib

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = module.run(trials=3, epochs=1, quiet=True)
    assert len(result.study.trials) >= 3 and (tmp_path / "studies" / f"{name}.db").exists()
    assert "best:" in capsys.readouterr().out


def test_bench_search_quick(capsys) -> None:
    import bench_search

    bench_search.main(["--quick", "--workers", "1"])
    out = capsys.readouterr().out
    for method in bench_search.METHODS:  # every method ran and is in the table
        assert f"| {bench_search.LABEL[method]} |" in out


def test_bench_grid_quick(capsys) -> None:
    import bench_grid

    results = bench_grid.main(["--quick"])  # regression-mlp, 2 LRs, 1 seed: prints, writes nothing
    best = results["regression-mlp"]["best"]
    assert best["family"] in ("cosine", "onecycle") and 0 < best["val"] < 1
    assert "| cosine |" in capsys.readouterr().out
    tiny = 2.2250738585072014e-308  # the smallest normal double: half of it is subnormal, not 0,
    assert tiny / 2 > 0  # unless flush-to-zero was left on (it broke later tests' float code)


def test_bench_anytime_quick(capsys) -> None:
    import bench_anytime

    out = bench_anytime.main(["--quick", "--tasks", "regression-mlp"])  # 3 methods at budget 2, writes nothing
    searches = out["searches"]
    assert {s["method"] for s in searches} == {"lrsearch", "tpe-hyperband", "default"}
    for s in searches:
        assert s["spent"] <= s["budget"] + 1e-9 and s["winner"]["kind"] == "schedule"
        retrained = [out["retrains"][f"regression-mlp|{bench_anytime._key(s['winner'])}|{seed}"] for seed in (0, 1)]
        assert all(math.isfinite(v) for v in retrained)
    assert "B=2" in capsys.readouterr().out


def test_bench_overhead_gives_its_three_tables_from_one_command(tmp_path, capsys) -> None:
    import bench_overhead

    data = bench_overhead.main(["--trials", "4", "--repeats", "1", "--storages", "memory,sqlite", "--growth",
                                "journal:6", "--workers", "2", "--worker-trials", "4", "--worker-storages", "journal",
                                "--budget", "1", "--out", str(tmp_path / "bo")])
    text = (tmp_path / "bo.md").read_text()
    assert "## Cost per trial" in text and "## Growth" in text and "## 2 worker processes" in text
    assert set(data["overhead"]["rows"]["sqlite"]["median"]) == {"optuna", "optuna-hb", "lrsearch"}
    runs = data["workers"]["rows"]["journal"]["runs"]
    ran = {arm: sum(n for state, n in runs[arm]["states"].items() if state != "WAITING") for arm in runs}
    assert ran == {"optuna": 4, "lrsearch": 4}  # the seeds are the workers' 4 trials; a promotion may wait
    assert runs["lrsearch"]["seeds_ran"] and set(runs["lrsearch"]["seeds_ran"].values()) == {1}
