"""Trials per hour: a population of K trials trained together vs the same trials one at a time.

The same tasks as ``bench_search.py`` (MNIST-1D MLP and 1D CNN, SGD with momentum 0.9, 9 epochs),
2 CPU threads, the same schedules and seed in both arms: "one at a time" is ``lrsearch.train`` per
trial (what ``optimize(task=...)`` runs), "population K" is ``lrsearch.train_population`` of K
trials at once (what ``optimize(task=..., population=K)`` runs). The arms alternate over rounds
and each reports its median over the rounds, in wall-clock time (trials per hour) and in this
process's CPU time (steadier on a shared machine). The agreement of the arms is the largest
difference of any evaluation value between a trial trained alone and the same trial in the
population, next to the yardstick of float noise: ``train`` against itself on 1 and 2 threads.

    python studies/bench_population.py                 # both tasks, K = 16 and 32, 3 rounds (~10 min)
    python studies/bench_population.py --rounds 1 --tasks mnist1d-mlp
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import harness  # noqa: E402
import lrsearch  # noqa: E402
from search_arms import SETUP  # noqa: E402  (bench_search's tasks)
from search_arms import make_task  # noqa: E402


FAMILIES = ("cosine", "linear", "wsd", "onecycle", "constant", "exponential", "cosine_restarts", "step")
SIZES = (16, 32)
SEQUENTIAL = {"mnist1d-mlp": 6, "mnist1d-cnn": 3}  # trials timed one at a time per round
THREADS = 2


def schedules(n: int) -> list[lrsearch.Schedule]:
    """n schedules over the families and a decade of peak LRs around SGD's useful range."""
    return [lrsearch.Schedule(FAMILIES[i % len(FAMILIES)], lr=0.02 * 10 ** ((i * 7 % 11) / 10)) for i in range(n)]


def timed(fn) -> tuple[float, float, object]:  # noqa: ANN001
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def bench(name: str, rounds: int) -> dict:
    epochs, opt, _ = SETUP[name]
    task, _ = make_task(name, epochs, opt, "cpu")
    task.threads = THREADS
    scheds = schedules(max(SIZES))
    n_seq = SEQUENTIAL[name]
    per_trial: dict[str, list[tuple[float, float]]] = {"one at a time": [], **{f"population {k}": [] for k in SIZES}}
    alone: list = []
    together: list = []
    for r in range(rounds):
        wall, cpu, runs = timed(lambda: [lrsearch.train(task, s, seed=0) for s in scheds[:n_seq]])
        per_trial["one at a time"].append((wall / n_seq, cpu / n_seq))
        alone = alone or runs
        for k in SIZES:
            wall, cpu, results = timed(lambda k=k: lrsearch.train_population(task, scheds[:k], 0, population=k))
            per_trial[f"population {k}"].append((wall / k, cpu / k))
            together = together or results
        print(f"  {name} round {r + 1}/{rounds}: " + ", ".join(
            f"{arm} {v[-1][0] * 1000:.0f} ms" for arm, v in per_trial.items()), flush=True)
    gap = max(abs(u - v) for a, p in zip(alone, together) for u, v in zip(a.values, p.values))
    final_gap = max(abs(a.final - p.final) for a, p in zip(alone, together))
    task.threads = 1  # the yardstick: the reference loop against itself on another thread count
    one_thread = [lrsearch.train(task, s, seed=0) for s in scheds[:n_seq]]
    own_gap = max(abs(u - v) for a, p in zip(alone, one_thread) for u, v in zip(a.values, p.values))
    base_wall = statistics.median(w for w, _ in per_trial["one at a time"])
    base_cpu = statistics.median(c for _, c in per_trial["one at a time"])
    arms = {}
    for arm, times in per_trial.items():
        wall, cpu = statistics.median(w for w, _ in times), statistics.median(c for _, c in times)
        arms[arm] = {"wall_s_per_trial": wall, "cpu_s_per_trial": cpu, "trials_per_hour": 3600 / wall,
                     "ratio_wall": base_wall / wall, "ratio_cpu": base_cpu / cpu, "rounds": times}
    return {"task": name, "epochs": epochs, "optimizer": opt, "steps": task.full_steps(), "arms": arms,
            "compared_trials": len(alone), "max_abs_value_gap": gap, "max_abs_final_gap": final_gap,
            "train_1_vs_2_threads_gap": own_gap}


def table(results: list[dict]) -> str:
    arms = list(results[0]["arms"])
    lines = ["| task | " + " | ".join(arms) + " | curve agreement |", "|---|" + "---|" * (len(arms) + 1)]
    for r in results:
        cells = []
        for arm in arms:
            a = r["arms"][arm]
            cells.append(f"{a['trials_per_hour']:.0f}/h, **{a['ratio_wall']:.1f}x** (CPU {a['ratio_cpu']:.1f}x)")
        lines.append(f"| {r['task']} ({r['steps']} steps) | " + " | ".join(cells)
                     + f" | max gap {r['max_abs_value_gap']:.1e} (final {r['max_abs_final_gap']:.1e}); train() "
                     f"itself, 1 vs 2 threads: {r['train_1_vs_2_threads_gap']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=list(SEQUENTIAL))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    torch.set_num_threads(THREADS)
    load = os.getloadavg()
    results = [bench(name, args.rounds) for name in args.tasks]
    text = table(results)
    print(text)
    command = harness.command(__file__, argv).strip()
    note = (f"Trials per hour on {THREADS} CPU threads (medians of {args.rounds} alternating rounds; ratio = "
            f"one at a time's time per trial / the arm's; CPU = this process's CPU time). Load average at "
            f"the start: {load[0]:.1f} on {os.cpu_count()} cores. No GPU was measured.")
    harness.write("bench_population", "# Population vs one at a time: trials per hour\n\n" + note + "\n\n" + text
                  + f"\n\nCommand: `{command}`\n", {"note": note, "results": results}, json_end="\n")


if __name__ == "__main__":
    main()
