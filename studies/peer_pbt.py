"""Ray Tune PopulationBasedTraining as a benchmark arm (the contract is in ``peer_arms.py``).

A population of ``min(8, floor(budget))`` members each trains one full run (so the budget is spent
as whole runs, as a PBT user at a small budget would size the population rather than shorten the
runs), split into ``INTERVALS`` synchronized intervals of optimizer steps. At each interval's end
every member reports its validation loss and a checkpoint (Ray Tune's Checkpoint API); the bottom
25% copy a top-25% member's weights, optimizer state and LR history, and explore its LR (x0.8 or
x1.2, or with probability 0.25 a fresh draw from the wide log-uniform range). A member keeps its own
data order after an exploit (its batches are drawn from its own seed and the step count): copying
the donor's would make exact duplicates. Initial LRs are drawn log-uniform over the wide range.
The winner is the member with the best final validation loss; its LR trajectory, inherited history
included, is returned as a piecewise-constant ``piecewise`` Schedule to retrain from scratch.

Run here (2 cores, MNIST-1D MLP, budget 8, 2.2 s of training in all): ``reuse_actors=True`` is what
makes it usable (without it Ray restarts a worker at each of the 64 pauses: 435 s against 25 s);
``ray.init(num_cpus=1)`` was faster than 2 (25-28 s against 36-46 s: the two members in parallel
fought Ray's own processes for the cores), so 1 is the default. Ray also draws from the driver's
``random``, so two searches with one seed can explore differently (one LR draw differed in two).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import lrsearch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import EPS  # noqa: E402
from harness import evaluate  # noqa: E402
from peer_arms import DIVERGED  # noqa: E402
from peer_arms import WIDE  # noqa: E402
from peer_arms import finite  # noqa: E402

POPULATION = 8
INTERVALS = 8


def bounds_of(full: int, intervals: int = INTERVALS) -> list[int]:
    """The interval ends in optimizer steps: ``round(full * i / intervals)``, distinct, the last ``full``."""
    return sorted({max(1, round(full * i / intervals)) for i in range(1, intervals + 1)})


def member(config: dict, task: lrsearch.Task, bounds: list[int], seed: int) -> None:
    """One PBT member (a Ray Tune function trainable): trains to the next interval end, reports."""
    from ray import tune

    torch.set_num_threads(1)
    index = int(tune.get_context().get_trial_id().rsplit("_", 1)[1])
    data_seed = seed * 1000 + index  # this member's data order, kept across exploits
    device = task.resolve_device()
    torch.manual_seed(data_seed)
    model = task.model_fn().to(device)
    optimizer = task.optimizer_fn(model.parameters())
    step, history = 0, []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # resumed: its own, or after an exploit the donor's state
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "state.pt", weights_only=True)  # data only: tensors, numbers, lists
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
    (x, y), (x_val, y_val) = task.train_data, task.val_data
    n, size = len(x), task.batch_size
    per_epoch = math.ceil(n / size)
    order, order_epoch = None, -1
    for end in (b for b in bounds if b > step):
        t0 = time.perf_counter()
        lr = float(config["lr"])
        history.append((step, lr))
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        for s in range(step, end):
            epoch, pos = divmod(s, per_epoch)
            if epoch != order_epoch:
                order_epoch = epoch
                order = torch.randperm(n, generator=torch.Generator().manual_seed(data_seed * 100_003 + epoch))
            idx = order[pos * size:(pos + 1) * size]
            task.loss_fn(model(x[idx].to(device)), y[idx].to(device)).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        step = end
        value = finite(evaluate(model, x_val, y_val, task.loss_fn, size, False)["loss"])
        train_s = time.perf_counter() - t0
        folder = tempfile.mkdtemp(prefix="pbt-")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "history": history}, Path(folder) / "state.pt")
        tune.report({"val": min(value, DIVERGED), "step": step, "lr": lr, "train_s": train_s,
                     "data_seed": data_seed},
                    checkpoint=tune.Checkpoint.from_directory(folder))
        shutil.rmtree(folder, ignore_errors=True)  # report() copied it to the run's storage


def trajectory_of(history: list, full: int) -> list[tuple[float, float]]:
    """``[(start step, lr)]`` per interval -> ``[(fraction of the run, lr)]``, equal neighbours merged."""
    out: list[tuple[float, float]] = []
    for start, lr in history:
        if not out or out[-1][1] != lr:
            out.append((start / full, float(lr)))
    return out


def piecewise(trajectory: list[tuple[float, float]]) -> lrsearch.Schedule:
    """A piecewise-constant LR trajectory as an lrsearch ``piecewise`` Schedule (peak = its largest LR)."""
    peak = max(lr for _, lr in trajectory)
    ends = [f for f, _ in trajectory[1:]] + [1.0]
    phases = [{"frac": end - f, "anneal": "linear", "start": lr / peak, "end": lr / peak}
              for (f, lr), end in zip(trajectory, ends)]
    return lrsearch.Schedule("piecewise", lr=peak, params={"phases": phases})


def run_pbt(task: lrsearch.Task, budget: float, seed: int, rt: lrsearch.RangeTestResult | None = None,
            cpus: int = 1, wide: tuple[float, float] = WIDE) -> dict:
    """PBT within ``budget`` full runs (``rt`` is not used: see the module's docstring)."""
    import random

    t0 = time.perf_counter()
    population = min(POPULATION, math.floor(budget + EPS))
    if population < 1:
        raise ValueError(f"PBT trains whole runs: budget must be >= 1 but got {budget}.")
    full = task.full_steps()
    bounds = bounds_of(full)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(seed)  # PBT's explore draws from the driver's ``random``
    rng = np.random.default_rng(seed)
    lrs = [float(v) for v in np.exp(rng.uniform(math.log(wide[0]), math.log(wide[1]), population))]
    storage = tempfile.mkdtemp(prefix="pbt-runs-")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    t1 = time.perf_counter()
    try:
        pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=1,
                                      hyperparam_mutations={"lr": tune.loguniform(*wide)}, quantile_fraction=0.25,
                                      resample_probability=0.25, perturbation_factors=(1.2, 0.8), synch=True)
        seen: list[dict] = []

        class Collect(tune.Callback):  # every report, in the driver (no loggers write files)
            def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001, ANN003
                seen.append({k: result[k] for k in ("step", "val", "train_s", "data_seed")})

        tuner = tune.Tuner(
            tune.with_parameters(member, task=task, bounds=bounds, seed=seed),
            param_space={"lr": tune.grid_search(lrs)},
            tune_config=tune.TuneConfig(scheduler=pbt, metric="val", mode="min", num_samples=1,
                                        reuse_actors=True),
            run_config=tune.RunConfig(storage_path=storage, name="pbt", verbose=0, callbacks=[Collect()]))
        grid = tuner.fit()
        t2 = time.perf_counter()
        train_s, reported = sum(r["train_s"] for r in seen), {}
        for r in seen:  # the best value any member reported at each interval end (not full-length runs)
            reported[int(r["step"])] = min(reported.get(int(r["step"]), math.inf), float(r["val"]))
        finals, histories = {}, {}
        for result in grid:
            if result.error:
                raise RuntimeError(f"a PBT member failed: {result.error}")
            key = result.path
            finals[key] = float(result.metrics["val"]) if result.metrics["step"] == full else math.inf
            with result.checkpoint.as_directory() as folder:
                histories[key] = torch.load(Path(folder) / "state.pt", weights_only=True)["history"]
    finally:
        t3 = time.perf_counter()
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
    winner = min(finals, key=lambda k: finals[k])
    best = finals[winner] if finals[winner] < DIVERGED else math.inf
    trace = [(population * b / full, math.inf) for b in bounds[:-1]] + [(float(population), best)]
    trajectory = trajectory_of(histories[winner], full)
    seconds = time.perf_counter() - t0
    return {"trace": trace, "spent": float(population), "trials": population, "population": population,
            "initial_lrs": lrs, "reported_best": sorted(reported.items()),
            # distinct data orders among the members at each interval end (the population's size: no duplicates)
            "data_orders": [len({r["data_seed"] for r in seen if r["step"] == b}) for b in bounds],
            "best": {"kind": "schedule", "optimizer": None, "schedule": piecewise(trajectory).to_dict(),
                     "trajectory": trajectory},
            "seconds": seconds, "train_seconds": train_s, "overhead_seconds": seconds - train_s,
            "timings": {"ray start": t1 - t0, "tune": t2 - t1, "ray stop": time.perf_counter() - t3}}
