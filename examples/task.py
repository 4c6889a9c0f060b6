"""Let lrsearch run the loop: a ``Task`` (model, data, loss, epochs) searched on a budget.

The reference loop steps the schedule once per optimizer step, evaluates once per epoch, reports
to the pruner and trains a short or full run as the search asks. Data: scikit-learn's bundled wine
set (offline). Run: ``python examples/task.py`` (``--tiny`` for a seconds-long check).
"""

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_wine

import lrsearch


def main(tiny: bool) -> None:
    x, y = load_wine(return_X_y=True)
    x = torch.tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32)
    y = torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, val = (x[order[:130]], y[order[:130]]), (x[order[130:]], y[order[130:]])

    task = lrsearch.Task(
        model_fn=lambda: torch.nn.Sequential(torch.nn.Linear(13, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3)),
        train_data=train,
        val_data=val,
        loss_fn=F.cross_entropy,
        epochs=3 if tiny else 15,
        batch_size=16,
        optimizer_fn=lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    )
    result = lrsearch.optimize(task=task, budget=2 if tiny else 10, study_name="task",
                               show_progress_bar=not tiny)
    print(result.table(5))
    trained = lrsearch.train(task, result.best_schedule)  # retrain the winner, keep the model
    print("best:", result.best_schedule.describe(), "final validation loss", trained.values[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds: tiny budget and runs")
    main(parser.parse_args().tiny)
