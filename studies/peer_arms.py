"""Two peer search systems as benchmark arms: NePS PriorBand (here) and Ray Tune
PopulationBasedTraining (``peer_pbt.py``). They need the ``peers`` extra (``make peers``).

The contract, as ``search_arms``' ``run_*`` functions: ``run_priorband(task, budget, seed, rt)`` and
``peer_pbt.run_pbt(task, budget, seed, rt)`` take an ``lrsearch.Task`` (``harness.task_of``), a budget
in full runs (optimizer steps / ``task.full_steps()``), a search seed and ``harness.range_test``'s
result, and return a dict:

- ``trace``: ``[(full runs spent, best full-length validation loss so far)]`` after each evaluation
  (PriorBand) or synchronized interval (PBT); ``inf`` until a full-length run has finished, as
  ``lrsearch.SearchResult.spent_trace``. ``spent`` <= ``budget``: no evaluation passes it.
- ``best``: the winner as data to retrain from scratch, in ``search_arms``' shape
  (``{"kind": "schedule", "optimizer": None, "schedule": Schedule.to_dict()}``, so that
  ``search_arms.retrain_test`` takes it too); PBT's adds ``trajectory``, its piecewise-constant LR
  as ``[(fraction of the run, lr)]``, and its ``schedule`` is that trajectory as a ``piecewise``
  Schedule.
- ``seconds`` (wall), ``train_seconds`` (inside training), and details of the arm.

``retrain(task, best, seed, data)``: the winner trained from scratch at full length: its final
validation loss, and its test loss when ``data`` (the ``tasks.TaskData``) is given.

PriorBand uses the range test (its prior) and is charged its steps from the start, as lrsearch
is; PBT starts from the wide range as its users do, uses no range test and is charged none.

    PYTHONPATH=. .venv-peers/bin/python studies/peer_arms.py --quick
    PYTHONPATH=. .venv-peers/bin/python studies/peer_arms.py --task mnist1d-mlp --budget 8
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

import lrsearch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import EPS  # noqa: E402
from harness import load  # noqa: E402
from harness import quiet  # noqa: E402
from harness import range_test  # noqa: E402
from harness import score  # noqa: E402
from search_arms import SETUP  # noqa: E402
from search_arms import make_task  # noqa: E402
from search_arms import range_lrs  # noqa: E402


FAMILIES = ("cosine", "linear", "wsd", "onecycle", "constant")
WIDE = (1e-5, 1.0)  # the peak LR's log-uniform range, for both arms
DIVERGED = 1e9  # what a search is told for a non-finite loss (both rank it last)


def schedule_of(family: str, lr: float) -> lrsearch.Schedule:
    """``family`` at peak ``lr``, with a 5% linear warmup unless the family rises itself (one-cycle)."""
    return lrsearch.Schedule(family, lr=lr, warmup=None if family == "onecycle" else {"frac": 0.05})


def finite(value: float) -> float:
    return value if math.isfinite(value) else math.inf


def run_priorband(task: lrsearch.Task, budget: float, seed: int, rt: lrsearch.RangeTestResult,
                  eta: int = 3, wide: tuple[float, float] = WIDE) -> dict:
    """NePS PriorBand through ``neps.AskAndTell``: family x log peak LR, the prior at cosine and the
    range test's cosine LR (medium confidence), fidelity = the run's length in optimizer steps from
    1/eta^2 of a full run to a full run. An evaluation trains the whole schedule over that many
    steps (``lrsearch.train(total_steps=)``, a fresh training seed each) and is charged them."""
    import neps
    import numpy as np

    t0 = time.perf_counter()
    full = task.full_steps()
    prior_lr = min(max(range_lrs(rt)[0], wide[0]), wide[1])

    # the classic space: a PipelineSpace is converted to it with its choices through set(), in an
    # order that changes with PYTHONHASHSEED, and so would the families drawn from one seed
    space = neps.SearchSpace({
        "family": neps.HPOCategorical(choices=list(FAMILIES), prior="cosine", prior_confidence="medium"),
        "lr": neps.HPOFloat(lower=wide[0], upper=wide[1], log=True, prior=prior_lr, prior_confidence="medium"),
        "steps": neps.HPOInteger(lower=max(1, round(full / eta ** 2)), upper=full, is_fidelity=True)})
    np.random.seed(seed)  # NePS samples from the global generators
    torch.manual_seed(seed)
    searcher = neps.AskAndTell(neps.algorithms.priorband(space, eta=eta))
    spent = rt.iterations / full
    trace, evaluations, best, train_s = [(spent, math.inf)], [], math.inf, 0.0
    while True:
        trial = searcher.ask()
        family, lr, steps = trial.config["family"], float(trial.config["lr"]), int(trial.config["steps"])
        if spent + steps / full > budget + EPS:
            break  # the next evaluation would pass the budget
        t1 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):  # training reseeds torch; NePS's draws stay its own
            value = finite(lrsearch.train(task, schedule_of(family, lr), seed=seed * 1000 + len(evaluations),
                                          total_steps=steps).final)
        train_s += time.perf_counter() - t1
        searcher.tell(trial, min(value, DIVERGED))
        spent += steps / full
        if steps == full:
            best = min(best, value)
        evaluations.append({"id": trial.id, "family": family, "lr": lr, "steps": steps, "val": value})
        trace.append((spent, best))
    top = max((e["steps"] for e in evaluations), default=None)
    pool = [e for e in evaluations if e["steps"] == top]
    win = min(pool, key=lambda e: e["val"]) if pool else {"family": "cosine", "lr": prior_lr, "steps": 0}
    seconds = time.perf_counter() - t0
    return {"trace": trace, "spent": spent, "trials": len(evaluations), "evaluations": evaluations,
            "best": {"kind": "schedule", "optimizer": None, "schedule": schedule_of(win["family"], win["lr"]).to_dict(),
                     "steps": win["steps"]},
            "seconds": seconds, "train_seconds": train_s, "overhead_seconds": seconds - train_s}


def retrain(task: lrsearch.Task, best: dict, seed: int = 0, data=None) -> dict:  # noqa: ANN001
    """Either arm's winner from scratch at full length: the final validation loss (and test loss)."""
    result = lrsearch.train(task, lrsearch.Schedule.from_dict(best["schedule"]), seed=seed)
    out = {"val": finite(result.final)}
    if data is not None:
        out["test_loss"] = score(result.model, data)["loss"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="regression-mlp, budget 2 (the smoke run)")
    parser.add_argument("--task", default="regression-mlp", choices=sorted(SETUP))
    parser.add_argument("--budget", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default="priorband,pbt")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.task, args.budget = "regression-mlp", 2.0
    import peer_pbt

    quiet()
    epochs, opt, _ = SETUP[args.task]
    task, data = make_task(args.task, epochs, opt, "cpu", load(args.task))
    rt = range_test(task, args.seed)
    arms = {"priorband": run_priorband, "pbt": peer_pbt.run_pbt}
    rows = []
    for name in args.arms.split(","):
        out = arms[name](task, args.budget, args.seed, rt)
        t1 = time.perf_counter()
        out["retrained"] = retrain(task, out["best"], seed=0, data=data)
        out["retrain_seconds"] = time.perf_counter() - t1
        rows.append({"arm": name, "task": args.task, "budget": args.budget, "seed": args.seed, **out})
        desc = lrsearch.Schedule.from_dict(out["best"]["schedule"]).describe()
        print(f"== {name} on {args.task}, budget {args.budget}, seed {args.seed}")
        print("  trace:", ", ".join(f"({s:.3f}, {b:.4f})" for s, b in out["trace"]))
        print(f"  spent {out['spent']:.3f}, trials {out['trials']}; winner {desc}")
        if "trajectory" in out["best"]:
            print("  trajectory:", ", ".join(f"({f:.3f}, {lr:.3g})" for f, lr in out["best"]["trajectory"]))
        print(f"  retrained: val {out['retrained']['val']:.4f}, test {out['retrained']['test_loss']:.4f}")
        print(f"  wall {out['seconds']:.1f} s: training {out['train_seconds']:.1f} s, overhead "
              f"{out['overhead_seconds']:.1f} s" + "".join(f", {k} {v:.1f} s" for k, v in out.get("timings", {}).items()))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
