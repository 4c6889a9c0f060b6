"""The demo task: an MLP on MNIST-1D, generated offline (``mnist1d.data.make_dataset``; never its
downloading ``get_dataset``). Needs the ``studies`` extra: ``pip install 'lrsearch[studies]'``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lrsearch.training import Task


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (outputs.argmax(dim=1) == targets).float().mean()


def mnist1d_split(seed: int = 0) -> tuple[torch.Tensor, ...]:
    """MNIST-1D's 5000 samples split 64/16/20 into train/val/test, standardised on train."""
    try:
        from mnist1d.data import get_dataset_args
        from mnist1d.data import make_dataset
    except ImportError:
        raise ImportError("the demo needs MNIST-1D: pip install 'lrsearch[studies]'") from None
    d = make_dataset(get_dataset_args())
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    a, b = int(0.64 * len(x)), int(0.8 * len(x))
    mean, std = x[order[:a]].mean(0), x[order[:a]].std(0) + 1e-8
    out = []
    for idx in (order[:a], order[a:b], order[b:]):
        out += [torch.tensor((x[idx] - mean) / std), torch.tensor(y[idx])]
    return tuple(out)


def mnist1d_task(epochs: int = 12, device: str = "auto") -> tuple[Task, tuple[torch.Tensor, torch.Tensor]]:
    """The demo ``Task`` (validation loss, minimised) and the held-out test split."""
    x_tr, y_tr, x_va, y_va, x_te, y_te = mnist1d_split()

    def model() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100),
                                   torch.nn.ReLU(), torch.nn.Linear(100, 10))

    def sgd(params):  # noqa: ANN001, ANN202
        return torch.optim.SGD(params, lr=0.1, momentum=0.9)

    task = Task(model, (x_tr, y_tr), (x_va, y_va), F.cross_entropy, epochs=epochs, optimizer_fn=sgd,
                batch_size=128, device=device)
    return task, (x_te, y_te)
