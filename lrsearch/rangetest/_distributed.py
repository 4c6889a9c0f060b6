"""The range test across the ranks of a ``torch.distributed`` job (``torchrun``, DDP).

Every rank runs the sweep in lockstep on its own shard of the data (a DDP model averages the
gradients, so every rank takes the same step); each point's loss is the mean over the ranks
(all-reduced before it is recorded), so every rank draws the same curve and stops at the same
step, and with equal shards the curve is that of one process on the global batch. Rank 0's
result is broadcast at the end, so every rank holds the same ``RangeTestResult``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist


def across_ranks(model: torch.nn.Module, distributed: bool | None) -> bool:
    """Whether the test runs across ranks: ``distributed``, or by default whether ``model`` is a
    ``DistributedDataParallel`` (whose steps need every rank anyway) in a job of several ranks."""
    if distributed is not None and not isinstance(distributed, bool):
        raise ValueError(f"distributed must be a bool or None but got {distributed!r}.")
    ready = dist.is_available() and dist.is_initialized()
    if distributed is None:
        return (ready and dist.get_world_size() > 1
                and isinstance(model, torch.nn.parallel.DistributedDataParallel))
    if distributed and not ready:
        raise ValueError("distributed=True needs an initialised torch.distributed process group "
                         "(torch.distributed.init_process_group) but there is none.")
    return distributed


def mean_across(value: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` over the ranks (the same tensor on every rank)."""
    total = value.detach().float().clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total / dist.get_world_size()


def from_rank_zero(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
