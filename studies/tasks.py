"""Offline tasks shared by the example studies and benchmarks (public lrsearch API only).

Every data set is bundled with a package or generated offline: scikit-learn's ``load_digits`` and
``load_breast_cancer``, MNIST-1D from ``mnist1d.data.make_dataset`` (never its downloading
``get_dataset``), a synthetic regression, and the English text of Python's own documentation
(the stdlib's ``pydoc_data.topics``) for a character-level language model. Each tabular task splits
train / validation / test with a fixed seed and standardises features on the training split; the
language model splits its text into contiguous blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class TaskData:
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    model_fn: Callable[[], torch.nn.Module]
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    batch_size: int
    epochs: int
    classification: bool = True
    clip_grad_norm: float | None = None  # lrsearch.Task's, passed on by harness.task_of
    eval_every: int | None = None  # likewise: evaluate every so many steps instead of once an epoch


def _split(x: np.ndarray, y: np.ndarray, fractions=(0.6, 0.2), seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(x))
    a, b = int(fractions[0] * len(x)), int((fractions[0] + fractions[1]) * len(x))
    parts = order[:a], order[a:b], order[b:]
    mean, std = x[parts[0]].mean(0), x[parts[0]].std(0) + 1e-8
    out = []
    for idx in parts:
        out += [torch.tensor((x[idx] - mean) / std, dtype=torch.float32), torch.tensor(y[idx])]
    return out


def mlp(sizes: list[int]) -> Callable[[], torch.nn.Module]:
    def make() -> torch.nn.Module:
        layers: list[torch.nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    return make


def mnist1d_mlp() -> TaskData:
    """MNIST-1D (4000 + 1000 samples, 40 features, 10 classes): separates schedules clearly."""
    from mnist1d.data import get_dataset_args
    from mnist1d.data import make_dataset

    d = make_dataset(get_dataset_args())
    x = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
    y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    parts = _split(x, y, (0.64, 0.16))
    return TaskData("mnist1d-mlp", *parts, mlp([40, 100, 100, 10]), F.cross_entropy, 128, 10)


def mnist1d_cnn() -> TaskData:
    """MNIST-1D with a small 1D CNN."""
    base = mnist1d_mlp()

    def make() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 40)),
            torch.nn.Conv1d(1, 16, 5, padding=2), torch.nn.ReLU(),
            torch.nn.Conv1d(16, 32, 5, padding=2, stride=2), torch.nn.ReLU(),
            torch.nn.Conv1d(32, 32, 3, padding=1, stride=2), torch.nn.ReLU(),
            torch.nn.Flatten(), torch.nn.Linear(32 * 10, 10),
        )

    return TaskData("mnist1d-cnn", base.x_train, base.y_train, base.x_val, base.y_val, base.x_test,
                    base.y_test, make, F.cross_entropy, 128, 10)


def mnist1d_cnn_bn() -> TaskData:
    """MNIST-1D with the 1D CNN of ``mnist1d_cnn`` plus BatchNorm after every conv (conv -> BN -> ReLU)."""
    base = mnist1d_mlp()

    def make() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 40)),
            torch.nn.Conv1d(1, 16, 5, padding=2), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
            torch.nn.Conv1d(16, 32, 5, padding=2, stride=2), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
            torch.nn.Conv1d(32, 32, 3, padding=1, stride=2), torch.nn.BatchNorm1d(32), torch.nn.ReLU(),
            torch.nn.Flatten(), torch.nn.Linear(32 * 10, 10),
        )

    return TaskData("mnist1d-cnn-bn", base.x_train, base.y_train, base.x_val, base.y_val, base.x_test,
                    base.y_test, make, F.cross_entropy, 128, 10)


def digits_mlp() -> TaskData:
    """scikit-learn's digits (1797 8x8 images): a smoke test, every sane schedule gets ~97%."""
    from sklearn.datasets import load_digits

    d = load_digits()
    parts = _split(d.data.astype(np.float32), d.target.astype(np.int64))
    return TaskData("digits-mlp", *parts, mlp([64, 128, 10]), F.cross_entropy, 64, 10)


def breast_cancer_mlp() -> TaskData:
    """scikit-learn's breast cancer (569 samples, 30 features, binary): a small tabular task."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    parts = _split(d.data.astype(np.float32), d.target.astype(np.int64))
    return TaskData("breast-cancer-mlp", *parts, mlp([30, 64, 2]), F.cross_entropy, 32, 15)


def wine_mlp() -> TaskData:
    """scikit-learn's wine (178 samples, 13 features, 3 classes): a tiny tabular task."""
    from sklearn.datasets import load_wine

    d = load_wine()
    parts = _split(d.data.astype(np.float32), d.target.astype(np.int64))
    return TaskData("wine-mlp", *parts, mlp([13, 32, 3]), F.cross_entropy, 16, 20)


def diabetes_mlp() -> TaskData:
    """scikit-learn's diabetes (442 samples, 10 features): a small, noisy regression (MSE)."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    y = (d.target - d.target.mean()) / d.target.std()
    parts = _split(d.data.astype(np.float32), y.astype(np.float32)[:, None])
    return TaskData("diabetes-mlp", *parts, mlp([10, 64, 1]), F.mse_loss, 32, 20, classification=False)


def regression_mlp(n: int = 2000, seed: int = 0) -> TaskData:
    """A synthetic non-linear regression (16 features, MSE)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 16)).astype(np.float32)
    w = rng.standard_normal(16)
    y = (np.sin(x @ w / 2) + 0.5 * x[:, 0] * x[:, 1] + 0.1 * rng.standard_normal(n)).astype(np.float32)
    parts = _split(x, y[:, None])

    return TaskData("regression-mlp", *parts, mlp([16, 64, 64, 1]), F.mse_loss, 64, 15, classification=False)


class CharTransformer(torch.nn.Module):
    """A small pre-norm causal transformer over characters: token + learned position embeddings,
    ``layers`` ``TransformerEncoderLayer`` blocks under a causal mask, a final LayerNorm and a linear
    head. ``forward`` takes ``[B, T]`` int64 ids (``T <= context``) and returns ``[B, T, vocab]`` logits."""

    def __init__(self, vocab: int, context: int = 64, d_model: int = 64, layers: int = 2, heads: int = 4,
                 ff: int = 256) -> None:
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d_model)
        self.pos = torch.nn.Embedding(context, d_model)
        torch.nn.init.normal_(self.tok.weight, std=0.02)
        torch.nn.init.normal_(self.pos.weight, std=0.02)
        self.blocks = torch.nn.ModuleList(
            torch.nn.TransformerEncoderLayer(d_model, heads, dim_feedforward=ff, dropout=0.0,
                                             batch_first=True, norm_first=True)
            for _ in range(layers)
        )
        self.norm = torch.nn.LayerNorm(d_model)
        self.head = torch.nn.Linear(d_model, vocab)
        self.register_buffer("mask", torch.nn.Transformer.generate_square_subsequent_mask(context),
                             persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        t = ids.shape[1]
        h = self.tok(ids) + self.pos(torch.arange(t, device=ids.device))
        mask = self.mask[:t, :t]
        for block in self.blocks:
            h = block(h, src_mask=mask, is_causal=True)
        return self.head(self.norm(h))


def _token_cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every token: ``outputs`` ``[B, T, V]``, ``targets`` ``[B, T]``."""
    return F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets.reshape(-1))


def char_lm(context: int = 64, batch_size: int = 8, max_train: int = 192, max_val: int = 64,
            max_test: int | None = None, epochs: int = 9, min_count: int = 20) -> TaskData:
    """A character-level transformer LM on the English text of Python's docs (``pydoc_data.topics``).

    The topics' texts, joined in sorted-key order (~465k characters), are mapped to ids (characters
    seen fewer than ``min_count`` times share one UNK id: 96 ids in all) and cut into non-overlapping
    windows of ``context`` characters; the target is the window shifted by one character. The
    windows split into contiguous blocks of text: the first 80% train, the next 10% validation, the
    last 10% test, so validation and test are held-out text. ``max_train`` / ``max_val`` /
    ``max_test`` windows (``None``: all) are taken evenly spaced across each block. Model:
    ``CharTransformer`` (d_model 64, 2 pre-norm blocks, 4 heads, FF 256, no dropout); loss: token
    cross-entropy in nats (ln 96 = 4.56 at chance). Meant for AdamW (``optimizer_for("adamw", ...)``).

    Sized for one CPU thread: a step on 8 windows costs ~17 ms there (32 windows: ~70 ms), so the
    defaults (8 windows a batch, 24 steps an epoch, 9 epochs = 216 steps) make a full run ~4 s and
    reach ~2.55 nats at cosine 3e-3; ``batch_size=32, max_train=1024`` is the larger variant (288
    steps, ~20 s, ~2.3 nats).
    """
    from collections import Counter

    from pydoc_data.topics import topics

    text = "".join(topics[k] for k in sorted(topics))
    counts = Counter(text)
    chars = sorted(c for c, n in counts.items() if n >= min_count)
    index = {c: i for i, c in enumerate(chars)}
    unk = len(chars)
    ids = np.array([index.get(c, unk) for c in text], dtype=np.int64)
    n = (len(ids) - 1) // context
    starts = np.arange(n) * context
    cols = np.arange(context)
    x_all, y_all = ids[starts[:, None] + cols], ids[starts[:, None] + cols + 1]
    a, b = int(0.8 * n), int(0.9 * n)

    def take(lo: int, hi: int, cap: int | None) -> list[torch.Tensor]:
        count = hi - lo if cap is None else min(cap, hi - lo)
        pick = np.unique(np.linspace(lo, hi - 1, count).round().astype(np.int64))
        return [torch.from_numpy(x_all[pick].copy()), torch.from_numpy(y_all[pick].copy())]

    parts = take(0, a, max_train) + take(a, b, max_val) + take(b, n, max_test)
    return TaskData("char-lm", *parts, partial(CharTransformer, unk + 1, context), _token_cross_entropy,
                    batch_size, epochs, classification=False)


TASKS = {
    "mnist1d-mlp": mnist1d_mlp,
    "mnist1d-cnn": mnist1d_cnn,
    "mnist1d-cnn-bn": mnist1d_cnn_bn,
    "digits-mlp": digits_mlp,
    "breast-cancer-mlp": breast_cancer_mlp,
    "regression-mlp": regression_mlp,
    "wine-mlp": wine_mlp,
    "diabetes-mlp": diabetes_mlp,
    "char-lm": char_lm,
}


from tasks_heldout import HELDOUT  # noqa: E402  (after TASKS: it imports this module's names)

TASKS.update(HELDOUT)


def optimizer_for(name: str, params, lr: float = 1e-3) -> torch.optim.Optimizer:  # noqa: ANN001
    """SGD with momentum 0.9, Adam, or AdamW (weight decay 0.01); the schedule replaces the LR anyway."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    raise ValueError(f"optimizer must be 'sgd', 'adam' or 'adamw' but got {name!r}.")


def make_optimizer(name: str, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    return optimizer_for(name, model.parameters(), lr)


def run_study(data: TaskData, study: str, *, trials: int, epochs: int | None = None, optimizer: str = "sgd",
              num_iter: int = 100, storage: str | None = None, out: str = "studies", quiet: bool = False):
    """Range test, then a seeded schedule search on ``data``; prints the top schedules.

    Returns the ``lrsearch.SearchResult``. The study lives in ``studies/<study>.db`` by default and
    resumes when run again.
    """
    import warnings
    from pathlib import Path

    import optuna

    import lrsearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    task = lrsearch.Task(data.model_fn, (data.x_train, data.y_train), (data.x_val, data.y_val), data.loss_fn,
                         epochs=epochs or data.epochs, batch_size=data.batch_size,
                         optimizer_fn=lambda params: optimizer_for(optimizer, params))
    torch.manual_seed(0)
    model = task.model_fn()
    batches = lrsearch.TensorBatches(data.x_train, data.y_train, batch_size=data.batch_size)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", lrsearch.RangeTestWarning)
        found = lrsearch.lr_find(model, task.optimizer_fn(model.parameters()), task.loss_fn, batches,
                                 num_iter=num_iter, verbose=not quiet)
    Path(out).mkdir(parents=True, exist_ok=True)
    found.plot().savefig(Path(out) / f"{study}_range_test.png", dpi=100)
    low, high = found.search_range()
    print(f"{data.name} / {optimizer}: range test {low:.3g} .. {high:.3g}"
          + "".join(f"\n  warning: {w.message}" for w in caught))
    result = lrsearch.optimize(task=task, n_trials=trials, study_name=study, seed_from=found,
                               storage=storage, show_progress_bar=not quiet)
    print(result.table(5, include_pruned=True))
    print(f"best: {result.best_schedule.describe()} (validation {result.best_value:.4g})")
    return result


def study_main(run, doc: str) -> None:  # noqa: ANN001
    """The command line every example study shares: --trials, --epochs, --storage."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--storage")
    args = parser.parse_args()
    run(args.trials, args.epochs, args.storage)
