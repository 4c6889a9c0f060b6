"""Transfer: search on short runs, then train a run three times longer with the schedule chosen for it.

The best peak LR falls as runs get longer, so the best schedule of the search is not reused as is:
``SearchResult.schedule_for(total_steps)`` moves its peak LR for the new length (or, when the
study's own loss law passed its held-out check, lets the law rank the candidates), and
``choice_for`` says how it chose. Data: scikit-learn's bundled digits (offline). Run:
``python examples/transfer.py`` (``--tiny`` for a seconds-long check).
"""

import argparse
import dataclasses
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import lrsearch


def main(tiny: bool) -> None:
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = (x[order[:1400]], y[order[:1400]]), (x[order[1400:]], y[order[1400:]])
    task = lrsearch.Task(
        model_fn=lambda: torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)),
        train_data=train, val_data=val, loss_fn=F.cross_entropy, epochs=2 if tiny else 6, batch_size=100,
        optimizer_fn=lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9))

    result = lrsearch.optimize(task=task, budget=3 if tiny else 12, study_name="transfer",
                               show_progress_bar=not tiny)
    longer = dataclasses.replace(task, epochs=3 * task.epochs)          # the run you really want
    steps = longer.full_steps()
    choice = result.choice_for(steps)
    print(f"searched at {task.full_steps()} steps; for {steps} steps: {choice.schedule.describe()}")
    print(f"  how: {choice.how}")
    result.export_best("studies/transfer_best_3x.json", total_steps=steps)  # the spec + "chosen_for"

    schedule = lrsearch.Schedule.from_json(Path("studies/transfer_best_3x.json").read_text())
    run = lrsearch.train(longer, schedule)
    print(f"trained {run.steps} steps: final validation loss {run.final:.4f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds: tiny budget and runs")
    main(parser.parse_args().tiny)
