"""``bench_anytime.py``'s figures: one per task, regret against budget with a line per method."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from harness import OUT


def plot(regret: dict, names: list[str], budgets: list[float], grid_best: Callable, methods: tuple) -> None:
    """``bench_anytime_<task>.png``: median regret against budget, a line per method, the grid's seed noise shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in names:
        _, noise = grid_best(name)
        fig, ax = plt.subplots(figsize=(6, 4))
        for m in methods:
            pts = [(b, statistics.median(regret[f"{name}|{m}|{b:g}"])) for b in budgets if f"{name}|{m}|{b:g}" in regret]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=m, lw=2.5 if m == "lrsearch" else 1.2)
        ax.axhspan(0, noise, color="grey", alpha=0.2, label="grid seed noise")
        ax.set(xscale="log", xlabel="budget (full runs)", ylabel="regret vs grid best (val loss)", title=name)
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
        ax.set_xticks([], minor=True)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / f"bench_anytime_{name}.png", dpi=100)
        plt.close(fig)
