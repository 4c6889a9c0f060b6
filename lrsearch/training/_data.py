"""Batches: in-memory tensors sliced on the device, loader cycling, unpacking and device moves."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from typing import Any

import torch

from lrsearch._checks import check_bool
from lrsearch._checks import check_int
from lrsearch._checks import show


def length_of(data: Any) -> int | None:
    """``len(data)``, or ``None`` for a stream (a DataLoader over an ``IterableDataset``, a generator)."""
    try:
        return len(data)
    except TypeError:
        return None


class TensorBatches:
    """Re-iterable mini-batches sliced from in-memory tensors (no per-sample ``DataLoader``).

    Each pass draws a fresh permutation from its own generator (``seed`` + pass number), so it
    never touches the global RNG and two objects with the same seed give the same batches.

    Examples:
        >>> x, y = torch.randn(100, 3), torch.randint(0, 2, (100,))
        >>> [b[0].shape[0] for b in TensorBatches(x, y, batch_size=40)]
        [40, 40, 20]

    Args:
        tensors: Tensors with the same first dimension (e.g. inputs and targets).
        batch_size: Samples per batch, >= 1.
        shuffle: Shuffle each pass.
        drop_last: Drop a last, smaller batch.
        seed: Seed of the permutations.
        device: Move the tensors there once, up front (``"cuda"`` keeps the data on the GPU).
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
            raise ValueError("tensors must be one or more torch.Tensor objects.")
        n = tensors[0].shape[0] if tensors[0].dim() else 0
        if n < 1 or any(t.dim() == 0 or t.shape[0] != n for t in tensors):
            raise ValueError(f"tensors must share a first dimension >= 1 but got {[tuple(t.shape) for t in tensors]}.")
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.shuffle, self.drop_last = check_bool("shuffle", shuffle), check_bool("drop_last", drop_last)
        self.seed = check_int("seed", seed)
        if device is not None:
            device = check_device("device", device)
            try:
                tensors = tuple(t.to(device) for t in tensors)
            except (RuntimeError, AssertionError) as err:  # no such device here (torch asserts for CUDA)
                raise ValueError(f"device {str(device)!r} is not available here: {str(err)[:200]}") from None
        self.tensors = tuple(tensors)
        self.passes = 0

    def state_dict(self) -> dict[str, int]:
        """The shuffling state, for a checkpoint: the seed and how many passes have begun.

        The next pass draws the permutation of ``seed + passes``; a pass in progress (an iterator
        already drawing batches) is not part of it.
        """
        return {"seed": self.seed, "passes": self.passes}

    def load_state_dict(self, state_dict: Mapping[str, int]) -> None:
        """Continue from a ``state_dict()``: the next pass is the one that would have come next."""
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"state_dict must be a mapping from TensorBatches.state_dict() "
                             f"but got {type(state_dict).__name__}.")
        if set(state_dict) != {"seed", "passes"}:
            raise ValueError(f"state_dict must have the keys 'seed' and 'passes' but got {list(state_dict)}.")
        seed = check_int("state_dict['seed']", state_dict["seed"])
        self.passes = check_int("state_dict['passes']", state_dict["passes"], low=0)
        self.seed = seed

    def __len__(self) -> int:
        n = self.tensors[0].shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n = self.tensors[0].shape[0]
        order = shuffle_order(n, self.seed, self.passes).to(self.tensors[0].device) if self.shuffle else None
        self.passes += 1
        for i in range(len(self)):
            idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is None:
                yield tuple(t[idx] for t in self.tensors)
            else:
                yield tuple(t[order[idx]] for t in self.tensors)


def shuffle_order(n: int, seed: int, passes: int) -> torch.Tensor:
    """The permutation of ``n`` samples that pass ``passes`` (from 0) of a ``TensorBatches`` with
    ``seed`` draws, from its own generator (the global RNG is untouched)."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed + passes))


def cycle(loader: Iterable[Any], name: str) -> Iterator[Any]:
    """Endless batches: a fresh iterator over ``loader`` each time it is exhausted."""
    if isinstance(loader, Iterator):
        raise ValueError(
            f"{name} must be re-iterable (a DataLoader, TensorBatches or a list of batches), "
            f"not a one-shot iterator such as {type(loader).__name__}."
        )
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError(f"{name} yielded no batches.")


def check_device(name: str, device: Any) -> torch.device:
    """``device`` as a ``torch.device`` (a string like ``"cpu"``, ``"cuda:1"``, or a device)."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ValueError(f"{name} must be a torch device or its name (cpu, cuda, cuda:1, mps) but got {show(device)}.")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must be a torch device or its name (cpu, cuda, cuda:1, mps) "
                         f"but got {show(device)}.") from None


def unpack(batch: Any, batch_fn: Callable[[Any], tuple[Any, Any]] | None) -> tuple[Any, Any]:
    """``(inputs, target)`` from ``(x, y)`` tuples, ``{"image", "label"}`` dicts, or ``batch_fn``."""
    if batch_fn is not None:
        out = batch_fn(batch)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise ValueError(f"batch_fn must return (inputs, target) but returned {type(out).__name__}.")
        return out[0], out[1]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:  # the common case first
        return batch[0], batch[1]
    if isinstance(batch, Mapping) and "image" in batch and "label" in batch:
        return batch["image"], batch["label"]
    raise ValueError(
        "batches must be (inputs, target) tuples or dicts with 'image' and 'label' keys; "
        f"got {type(batch).__name__}: pass batch_fn=lambda batch: (inputs, target)."
    )


def to_device(obj: Any, device: torch.device) -> Any:
    """Move tensors (in tuples, lists and dicts too) to ``device`` without blocking the host."""
    if isinstance(obj, torch.Tensor):
        return obj if obj.device == device else obj.to(device, non_blocking=True)
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(o, device) for o in obj)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    return obj


def eval_mean(
    model: torch.nn.Module,
    batches: Iterable[Any],
    fn: Callable[[Any, Any], Any],
    device: torch.device,
    *,
    batch_fn: Callable[[Any], tuple[Any, Any]] | None = None,
    autocast: Callable[[], Any] = contextlib.nullcontext,
) -> torch.Tensor:
    """Sample-weighted mean of ``fn(model(inputs), targets)`` over ``batches``, in eval mode and
    without gradients; every module's train/eval flag is restored. The result stays on the device
    (no host sync)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    total, count = torch.zeros((), device=device), 0
    try:
        with torch.no_grad(), autocast():
            for batch in batches:
                inputs, target = unpack(batch, batch_fn)
                inputs, target = to_device(inputs, device), to_device(target, device)
                n = target.shape[0] if isinstance(target, torch.Tensor) and target.dim() else 1
                total = total + torch.as_tensor(fn(model(inputs), target), device=device).detach().float() * n
                count += n
    finally:
        for module, mode in modes:
            module.training = mode
    if count == 0:
        raise ValueError("the validation batches yielded no batches.")
    return total / count
