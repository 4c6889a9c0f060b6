"""Your own training loop, searched: a range test seeds the search, then a plain Optuna objective.

The glue is three calls: ``suggest_schedule`` (the trial's schedule), ``run_length`` (how many
optimizer steps this trial trains: a short screening run or the full one) and ``report`` (each
evaluation, so the pruner can stop a run heading for a poor end). Data: scikit-learn's bundled
digits (offline). Run: ``python examples/own_loop.py`` (``--tiny`` for a seconds-long check).
"""

import argparse

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import lrsearch


def data():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def make_model():
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def main(tiny: bool) -> None:
    x_tr, y_tr, x_val, y_val = data()
    epochs, batch = (3, 100) if tiny else (10, 50)

    # 1. the range test: a range of peak LRs for the search, and seeds at its suggested points
    model = make_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = lrsearch.TensorBatches(x_tr, y_tr, batch_size=batch)
    found = lrsearch.lr_find(model, opt, F.cross_entropy, batches, num_iter=30 if tiny else 100, verbose=False)

    # 2. the objective: your loop, plus three calls
    def objective(trial):
        schedule = lrsearch.suggest_schedule(trial)
        steps = lrsearch.run_length(trial, epochs * (len(x_tr) // batch))
        torch.manual_seed(trial.number)
        model = make_model()
        opt = torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=0.9)
        sched = schedule.build(opt, total_steps=steps)
        evals = [round((k + 1) * steps / epochs) for k in range(epochs)]  # one evaluation per epoch
        for step in range(steps):
            i = step * batch % (len(x_tr) - batch + 1)
            loss = F.cross_entropy(model(x_tr[i:i + batch]), y_tr[i:i + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if step + 1 in evals:
                with torch.no_grad():
                    val = F.cross_entropy(model(x_val), y_val).item()
                lrsearch.report(trial, val, evals.index(step + 1), scheduler=sched, n_evals=epochs)
        return val

    result = lrsearch.optimize(objective, budget=3 if tiny else 12, seed_from=found,
                               study_name="own_loop", show_progress_bar=not tiny)
    print(result.table(5))
    print("best:", result.best_schedule.describe(), "->", result.export_best("studies/own_loop_best.json"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds: tiny budget and runs")
    main(parser.parse_args().tiny)
