"""Two held-out language-model tasks (issue 23), registered in ``tasks.TASKS``: an LSTM character
LM trained with SGD + momentum and gradient clipping (``lstm-sgd``), and the pydoc character
transformer trained for one pass over fresh text (``onepass-lm``). Public lrsearch API only.
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import numpy as np
import torch

from tasks import CharTransformer
from tasks import TaskData
from tasks import _token_cross_entropy


def _windows(text: str, context: int, min_count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``text`` as ids (characters seen fewer than ``min_count`` times share one UNK id), cut into
    non-overlapping ``context``-character windows and their one-character-shifted targets; the vocab."""
    counts = Counter(text)
    chars = sorted(c for c, n in counts.items() if n >= min_count)
    index = {c: i for i, c in enumerate(chars)}
    ids = np.array([index.get(c, len(chars)) for c in text], dtype=np.int64)
    n = (len(ids) - 1) // context
    at = np.arange(n)[:, None] * context + np.arange(context)
    return ids[at], ids[at + 1], len(chars) + 1


def _blocks(x: np.ndarray, y: np.ndarray, caps: tuple[int | None, ...]) -> list[torch.Tensor]:
    """Contiguous 80/10/10 train / validation / test blocks of windows, ``caps[i]`` windows (``None``:
    all) taken evenly spaced across block ``i``."""
    n = len(x)
    bounds = (0, int(0.8 * n), int(0.9 * n), n)
    out = []
    for (lo, hi), cap in zip(zip(bounds, bounds[1:]), caps):
        count = hi - lo if cap is None else min(cap, hi - lo)
        pick = np.unique(np.linspace(lo, hi - 1, count).round().astype(np.int64))
        out += [torch.from_numpy(x[pick].copy()), torch.from_numpy(y[pick].copy())]
    return out


def stdlib_text(chars: int = 400_000) -> str:
    """The first ``chars`` characters of the running interpreter's standard-library ``*.py`` files
    (its stdlib directory, not sub-packages), joined in sorted file-name order: the same text on
    any install of one CPython version (on 3.11: ``__future__.py`` .. ``_pyio.py``, 12 files)."""
    import sysconfig
    from pathlib import Path

    parts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        parts.append(path.read_text(encoding="utf-8"))
        total += len(parts[-1])
        if total >= chars:
            break
    return "".join(parts)[:chars]


class CharLSTM(torch.nn.Module):
    """Embedding -> ``layers``-layer LSTM -> linear head: ``[B, T]`` ids to ``[B, T, vocab]`` logits."""

    def __init__(self, vocab: int, embed: int = 64, hidden: int = 160, layers: int = 2) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, layers, batch_first=True)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(self.embed(ids))[0])


def lstm_sgd(context: int = 64, batch_size: int = 16, max_train: int = 1280, max_val: int = 128,
             max_test: int = 128, epochs: int = 3, min_count: int = 20) -> TaskData:
    """A 2-layer LSTM character LM on Python source (``stdlib_text()``: 400k characters of the
    stdlib), meant for SGD with momentum 0.9 (``optimizer_for("sgd")``) and gradient clipping at
    norm 0.25 (``clip_grad_norm``, which ``harness.task_of`` passes to ``lrsearch.Task``).

    Characters seen fewer than ``min_count`` times share one UNK id; the text is
    cut into non-overlapping windows of ``context`` characters (target: shifted by one), split into
    contiguous 80/10/10 train / validation / test blocks, ``max_*`` windows taken evenly spaced in
    each. Model: ``CharLSTM`` (embedding 64, 2 LSTM layers of 160, linear head); loss: token
    cross-entropy in nats (92 ids: ln 92 = 4.52 at chance).

    A full run: 1280 train windows, batch 16 = 80 steps an epoch, 3 epochs = 240 optimizer steps,
    evaluated every 40 steps (``eval_every``: 6 evaluations). A full run costs ~5.7 s on one CPU
    thread (the range test ~3.7 s); cosine with 5% warmup, seed 0, reaches validation 2.61 / 2.21 / 1.99
    nats at peak LR 0.3 / 1 / 3.
    """
    x, y, vocab = _windows(stdlib_text(), context, min_count)
    parts = _blocks(x, y, (max_train, max_val, max_test))
    return TaskData("lstm-sgd", *parts, partial(CharLSTM, vocab), _token_cross_entropy, batch_size, epochs,
                    classification=False, clip_grad_norm=0.25, eval_every=40)


def onepass_lm(context: int = 32, batch_size: int = 8, steps: int = 1000, max_val: int = 256,
               max_test: int = 256, eval_every: int = 100, min_count: int = 20) -> TaskData:
    """The character transformer of ``tasks.char_lm`` on the same pydoc text, trained for ONE pass:
    ``steps * batch_size`` train windows (8000), each seen once (``epochs=1``), so every optimizer
    step sees fresh text; evaluated every ``eval_every`` steps (10 evaluations). Context 32
    (``CharTransformer``'s d_model 64, 2 blocks, 4 heads, FF 256); the text's windows split
    80/10/10 in contiguous blocks like ``char_lm`` (the train block holds ~11.6k windows of 32; 8000
    are taken evenly spaced). Meant for AdamW (``optimizer_for("adamw")``). 96 ids (ln 96 = 4.56 at
    chance). A full run costs ~5.5 s on one CPU thread (a step on 8 windows of 32 is ~5 ms); cosine
    with 5% warmup, seed 0, reaches validation 2.08 / 1.98 / 2.36 nats at peak LR 1e-3 / 3e-3 / 1e-2.
    """
    from pydoc_data.topics import topics

    x, y, vocab = _windows("".join(topics[k] for k in sorted(topics)), context, min_count)
    parts = _blocks(x, y, (steps * batch_size, max_val, max_test))
    return TaskData("onepass-lm", *parts, partial(CharTransformer, vocab, context), _token_cross_entropy,
                    batch_size, 1, classification=False, eval_every=eval_every)


HELDOUT = {"lstm-sgd": lstm_sgd, "onepass-lm": onepass_lm}
