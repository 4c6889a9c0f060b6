"""ForecastPruner in a plain Optuna study: search an LR schedule for a small regression MLP.

Run: ``python example.py`` (needs ``pip install optunahub lrsearch``).
"""

import optuna
import optunahub
import torch


module = optunahub.load_module(package="pruners/lrsearch_forecast")
ForecastPruner, suggest_schedule, report = module.ForecastPruner, module.suggest_schedule, module.report

g = torch.Generator().manual_seed(0)
x = torch.randn(512, 8, generator=g)
y = torch.sin(x[:, :2].sum(1, keepdim=True))
x_val = torch.randn(256, 8, generator=g)
y_val = torch.sin(x_val[:, :2].sum(1, keepdim=True))
STEPS, N_EVALS = 200, 8


def objective(trial: optuna.Trial) -> float:
    schedule = suggest_schedule(trial)  # family, peak LR, warmup, parameters; stored on the trial
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    opt = torch.optim.SGD(model.parameters(), lr=schedule.lr, momentum=0.9)
    sched = schedule.build(opt, total_steps=STEPS)  # a torch LRScheduler, stepped per optimizer step
    for step in range(STEPS):
        i = step * 32 % len(x)
        loss = torch.nn.functional.mse_loss(model(x[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (step + 1) % (STEPS // N_EVALS) == 0:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x_val), y_val).item()
            report(trial, val, (step + 1) // (STEPS // N_EVALS) - 1, n_evals=N_EVALS)  # may raise TrialPruned
    return val


study = optuna.create_study(pruner=ForecastPruner(), sampler=optuna.samplers.TPESampler(seed=0))
study.optimize(objective, n_trials=30)
print(f"best {study.best_value:.4f}: {study.best_trial.user_attrs['schedule']}")
pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
print(f"{len(pruned)} of {len(study.trials)} trials pruned; first reason: "
      f"{pruned[0].user_attrs.get('prune_reason') if pruned else '-'}")
