"""The CLI (the only code that prints) and the plots (ax=None returns the figure)."""

from __future__ import annotations

import json

import matplotlib
import pytest

from lrsearch import Schedule
from lrsearch.cli import main
from lrsearch.reports._plots import plot_family_gallery
from lrsearch.reports._plots import plot_schedules
from lrsearch.schedules import families


matplotlib.use("Agg")


def test_plot_schedules_returns_a_figure_and_draws_each_curve() -> None:
    fig = plot_schedules({"a": Schedule("cosine", lr=0.1), "b": Schedule("onecycle", lr=0.2)}, 300, log_scale=True)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    ydata = ax.get_lines()[1].get_ydata()
    assert len(ydata) == 300 and max(ydata) == pytest.approx(0.2)
    assert ax.get_yscale() == "log"


def test_plot_on_a_given_axes_uses_its_figure() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot()
    assert plot_schedules(Schedule("step"), 100, ax=ax, relative=True) is fig
    assert max(ax.get_lines()[0].get_ydata()) == 1.0


def test_plot_rejects_non_schedules() -> None:
    with pytest.raises(ValueError, match="schedules must hold Schedule objects"):
        plot_schedules({"x": 3}, 10)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="schedules must not be empty"):
        plot_schedules([], 10)


def test_gallery_has_a_panel_per_family() -> None:
    fig = plot_family_gallery(200)
    assert len(fig.axes) == len(families())


def test_cli_schedule_from_family_with_params(tmp_path, capsys) -> None:
    out = tmp_path / "s.png"
    code = main(["schedule", "multistep", "--lr", "0.3", "--param", "milestones=[0.4,0.8]",
                 "--warmup", "frac=0.05", "--steps", "200", "--out", str(out)])
    assert code == 0 and out.stat().st_size > 1000
    printed = capsys.readouterr().out
    spec = json.loads(printed[: printed.rindex("}") + 1])
    assert Schedule.from_dict(spec) == Schedule("multistep", 0.3, {"milestones": [0.4, 0.8]}, {"frac": 0.05})


def test_cli_schedule_from_json_spec(tmp_path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(Schedule("wsd", lr=0.01).to_json())
    out = tmp_path / "w.png"
    assert main(["schedule", str(spec), "--out", str(out)]) == 0 and out.exists()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["schedule", "cosinee"], "family must be one of"),
        (["schedule", "cosine", "--param", "k"], "--param must look like KEY=VALUE but got 'k'"),
        (["schedule", "cosine", "--param", "k=-1"], "params.k must be in (0, inf) but got -1.0"),
        (["schedule", "missing.json"], "spec file 'missing.json' does not exist"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_families_and_gallery(tmp_path, capsys) -> None:
    assert main(["families"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in families())
    out = tmp_path / "gallery.png"
    assert main(["gallery", "--steps", "100", "--out", str(out)]) == 0 and out.exists()


def test_cli_schedule_draws_an_exported_spec_at_the_run_length_it_was_chosen_for(tmp_path, monkeypatch,
                                                                                  capsys) -> None:
    import lrsearch.reports as plots  # the name the CLI reads

    drawn = []
    real = plots.plot_schedules
    monkeypatch.setattr(plots, "plot_schedules", lambda named, steps, **kw: drawn.append(steps) or real(named, steps, **kw))
    spec = tmp_path / "best_3x.json"
    spec.write_text(json.dumps({**Schedule("wsd", lr=0.01).to_dict(), "chosen_for": {"total_steps": 2400, "by": "rule"}}))
    assert main(["schedule", str(spec), "--out", str(tmp_path / "a.png")]) == 0
    assert main(["schedule", str(spec), "--steps", "300", "--out", str(tmp_path / "b.png")]) == 0  # asked: kept
    assert main(["schedule", "wsd", "--out", str(tmp_path / "c.png")]) == 0  # no spec file: 1000
    assert drawn == [2400, 300, 1000]
    assert "2400 optimizer steps (the run length the spec was chosen for)" in capsys.readouterr().out
