"""Hugging Face Trainer: search the schedule with one callback; the Trainer keeps its own loop.

The callback makes the Trainer's scheduler follow the trial's schedule for the run length the
search asks, reports each evaluation and stops a short run at its end. Any ``torch.nn.Module``
that returns a dict with ``loss`` works in the Trainer; a small MLP keeps this offline (no model
download). Needs ``pip install 'lrsearch[transformers]'``. Run: ``python examples/huggingface.py``
(``--tiny`` for a seconds-long check).
"""

import argparse
import tempfile

import torch
import transformers

import lrsearch
from lrsearch.integrations.transformers import LRSearchCallback


class Classifier(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))

    def forward(self, x, labels=None):
        logits = self.net(x)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def dataset(n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    labels = (x[:, :2] > 0).long() @ torch.tensor([1, 2])  # 4 classes from two signs
    return [{"x": x[i], "labels": labels[i]} for i in range(n)]


def main(tiny: bool) -> None:
    train, val = dataset(128 if tiny else 2048, 0), dataset(64 if tiny else 512, 1)
    out = tempfile.mkdtemp(prefix="hf_example_")
    args = transformers.TrainingArguments(
        output_dir=out, num_train_epochs=3 if tiny else 10, eval_strategy="epoch",
        per_device_train_batch_size=32, learning_rate=1e-3,  # the schedule's peak LR replaces it
        save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True)

    def objective(trial):
        search = LRSearchCallback(trial, metric="eval_loss")
        transformers.Trainer(model=Classifier(), args=args, train_dataset=train, eval_dataset=val,
                             callbacks=[search]).train()
        return search.value

    result = lrsearch.optimize(objective, budget=2 if tiny else 10, study_name="huggingface",
                               show_progress_bar=not tiny)
    print(result.table(5))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a few seconds: tiny budget and runs")
    main(parser.parse_args().tiny)
