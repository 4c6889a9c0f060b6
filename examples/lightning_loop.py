"""Lightning: search the schedule of a ``LightningModule`` with one callback.

``LRSearchCallback`` builds the trial's schedule on the module's optimizer for the run length the
search asks (counted from the trainer's settings), steps it per optimizer step, reports each
validation and stops a short run at its end; ``lr_find`` runs the range test on the module itself.
Needs ``pip install 'lrsearch[lightning]'``. Synthetic data. Run: ``python examples/lightning_loop.py``
(``--tiny`` for a seconds-long check).
"""

import argparse
import warnings

import lightning.pytorch as L
import torch

import lrsearch
from lrsearch.integrations.lightning import LRSearchCallback
from lrsearch.integrations.lightning import lr_find


class Regressor(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)  # the schedule sets the LR


def loaders(n: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = torch.sin(x[:, :2].sum(1, keepdim=True)) + 0.1 * torch.randn(n, 1, generator=g)
    train = torch.utils.data.TensorDataset(x[: n * 3 // 4], y[: n * 3 // 4])
    val = torch.utils.data.TensorDataset(x[n * 3 // 4:], y[n * 3 // 4:])
    return torch.utils.data.DataLoader(train, batch_size=32, shuffle=True), torch.utils.data.DataLoader(val, batch_size=256)


def main(tiny: bool) -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")  # Lightning's advice for real jobs
    warnings.filterwarnings("ignore", ".*log_every_n_steps.*")
    train_loader, val_loader = loaders(256 if tiny else 2048)
    epochs = 3 if tiny else 10

    def objective(trial):
        search = LRSearchCallback(trial, monitor="val_loss")
        trainer = L.Trainer(max_epochs=epochs, callbacks=[search], accelerator="cpu", logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(Regressor(), train_loader, val_loader)
        return search.value

    found = lr_find(Regressor(), train_loader, num_iter=30 if tiny else 100, verbose=False)
    result = lrsearch.optimize(objective, budget=4 if tiny else 10, seed_from=found, study_name="lightning",
                               show_progress_bar=not tiny)
    print(result.table(5))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds: tiny budget and runs")
    main(parser.parse_args().tiny)
