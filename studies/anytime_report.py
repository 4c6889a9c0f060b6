"""``bench_anytime.py``'s figures: one per task, regret against budget with a line per method."""

from __future__ import annotations

import math
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
        ax.set(xscale="log", xlabel="budget (full runs)", ylabel="regret vs grid best (val loss, symlog)", title=name)
        # the small regrets readable beside a peer's 1.0; the linear part ends on a decade, so no tick crowds 0
        ax.set_yscale("symlog", linthresh=10 ** math.floor(math.log10(max(noise, 0.01))))
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
        ax.set_xticks([], minor=True)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(OUT / f"bench_anytime_{name}.png", dpi=100)
        plt.close(fig)


PEERS = ("priorband", "pbt", "tpe-hyperband", "schedulefree", "default")


def goals(regret: dict, names: list[str], grid_best: Callable) -> str:
    """Issue 23's goals, counted from the medians: lrsearch below every peer at B = 4 and 8, within the
    grid's seed noise at B = 8, never worse than the default beyond noise at B = 2."""
    def med(name: str, method: str, budget: float) -> float | None:
        xs = regret.get(f"{name}|{method}|{budget:g}")
        return statistics.median(xs) if xs else None

    lines = ["| goal | tasks met | of | where missed |", "|---|---|---|---|"]
    for budget in (4.0, 8.0):
        met, ran, missed = 0, 0, []
        for name in names:
            mine = med(name, "lrsearch", budget)
            peers = {p: med(name, p, budget) for p in PEERS if med(name, p, budget) is not None}
            if mine is None or len(peers) < len(PEERS):
                continue
            ran += 1
            best_peer = min(peers, key=peers.get)
            if mine < peers[best_peer]:
                met += 1
            else:
                missed.append(f"{name} ({mine:+.3f} vs {best_peer} {peers[best_peer]:+.3f})")
        lines.append(f"| below every peer at B={budget:g} | {met} | {ran} | {'; '.join(missed)} |")
    for label, budget, ref in (("within the grid's noise at B=8", 8.0, None), ("B=2 not worse than the default "
                                                                                 "beyond noise", 2.0, "default")):
        met, ran, missed = 0, 0, []
        for name in names:
            mine, (_, noise) = med(name, "lrsearch", budget), grid_best(name)
            base = 0.0 if ref is None else med(name, ref, budget)
            if mine is None or base is None:
                continue
            ran += 1
            if mine <= base + noise:
                met += 1
            else:
                missed.append(f"{name} ({mine:+.3f} vs {base + noise:+.3f})")
        lines.append(f"| {label} | {met} | {ran} | {'; '.join(missed)} |")
    return "\n".join(lines) + "\n"
