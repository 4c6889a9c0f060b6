"""``Snapshot``: everything a range test may change, saved once and restored bit for bit.

Saved: the model's and the loss module's parameters and buffers (BatchNorm running statistics
included) and every tensor the optimizer steps (a loss's temperature, say) with their gradients
and ``requires_grad`` flags, each module's train/eval flag, the optimizer's state and param-group
settings, a GradScaler's state, the position of ``TensorBatches`` loaders, and the torch (CPU and
initialised CUDA devices), numpy and python RNG states. Tensors go to CPU memory by default (the GPU
copy is not doubled) or to a temporary file (``store="disk"``, read back with
``torch.load(weights_only=True)``); a tensor shared by several owners is saved once.
"""

from __future__ import annotations

import os
import random
import tempfile
from typing import Any

import numpy as np
import torch

from lrsearch._checks import check_choice
from lrsearch.training import TensorBatches


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


class Snapshot:
    """Capture ``model``, ``optimizer`` and RNG state now; ``restore()`` puts them back.

    ``loss_fn`` is saved too when it is an ``nn.Module``; ``loaders`` that are ``TensorBatches``
    get their position back (other loaders are left alone).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: Any = None,
        store: str = "cpu",
        *,
        loss_fn: Any = None,
        loaders: tuple[Any, ...] = (),
    ) -> None:
        check_choice("snapshot", store, ("cpu", "disk"))
        roots = [model, loss_fn] if isinstance(loss_fn, torch.nn.Module) else [model]
        unique: dict[int, torch.Tensor] = {}
        for root in roots:
            for t in [*root.parameters(), *root.buffers()]:
                unique.setdefault(id(t), t)  # tied weights are saved once
        for group in optimizer.param_groups:  # what the optimizer steps outside the modules
            for t in group["params"]:
                unique.setdefault(id(t), t)
        self._tensors = list(unique.values())
        self._requires_grad = [t.requires_grad for t in self._tensors]
        self._model, self._optimizer, self._scaler = model, optimizer, scaler
        self._modes = [(m, m.training) for root in roots for m in root.modules()]
        self._loaders = [(b, b.state_dict()) for b in loaders if isinstance(b, TensorBatches)]
        data = {
            "values": [t.detach().to("cpu", copy=True) for t in self._tensors],
            "grads": [None if t.grad is None else t.grad.detach().to("cpu", copy=True) for t in self._tensors],
            "optimizer": _to_cpu(optimizer.state_dict()),
        }
        self._path: str | None = None
        if store == "disk":
            fd, self._path = tempfile.mkstemp(prefix="lrsearch-snapshot-", suffix=".pt")
            os.close(fd)
            torch.save(data, self._path)
            self._data: dict[str, Any] | None = None
        else:
            self._data = data
        self._scaler_state = None if scaler is None else scaler.state_dict()
        self._rng = (
            random.getstate(),
            np.random.get_state(),
            torch.get_rng_state(),
            torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        )

    def restore(self) -> None:
        """Put everything back; the snapshot's temporary file, if any, is removed."""
        try:
            data = self._data if self._data is not None else torch.load(self._path, weights_only=True)
            with torch.no_grad():
                for t, value, grad, flag in zip(self._tensors, data["values"], data["grads"], self._requires_grad):
                    if t.requires_grad != flag:
                        t.requires_grad_(flag)
                    t.copy_(value)
                    if grad is None:
                        t.grad = None
                    elif t.grad is None:
                        t.grad = grad.to(t.device)
                    else:
                        t.grad.copy_(grad)
            self._optimizer.load_state_dict(data["optimizer"])
            for module, mode in self._modes:
                module.training = mode
            if self._scaler is not None:
                self._scaler.load_state_dict(self._scaler_state)
            for batches, state in self._loaders:
                batches.load_state_dict(state)
            py, np_state, torch_state, cuda_states = self._rng
            random.setstate(py)
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)
        finally:
            if self._path is not None and os.path.exists(self._path):
                os.remove(self._path)
