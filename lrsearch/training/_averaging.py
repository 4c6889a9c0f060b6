"""The averaged model of a schedule's tail (SWA or EMA), kept with torch's ``swa_utils``.

A schedule with a ``tail`` (``lrsearch.schedules._tail``) asks the loop to average the weights from
a fraction of the run on: ``Averager.step(t)`` after every optimizer step ``t`` updates the average
at the tail's cadence, and ``Averager.model(live)`` is what to evaluate: the live model until the
first update, the averaged one after it. The integrations, which cannot swap the model a framework
evaluates, copy the averaged weights into the live module for an evaluation (``swap_in`` /
``swap_out``) and for good at the end of training (``load_into_live``).

- The average is a ``torch.optim.swa_utils.AveragedModel`` with ``get_swa_multi_avg_fn`` (equal
  average) or ``get_ema_multi_avg_fn(decay)``; its first update copies the weights. The update
  counts on the host, so no update waits for the device (torch's own ``update_parameters`` reads
  ``n_averaged`` back twice per call; its buffer is still kept, as a device-side count).
- BatchNorm: the equal average's BN statistics are recomputed with ``swa_utils.update_bn`` over
  the training batches before the averaged model is evaluated (once per change of the average), as
  the SWA recipe does; EMA averages the BN buffers along with the weights (``use_buffers=True``, as
  timm's ``ModelEmaV3``), which needs no extra pass over the data.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel
from torch.optim.swa_utils import get_ema_multi_avg_fn
from torch.optim.swa_utils import get_swa_multi_avg_fn
from torch.optim.swa_utils import update_bn

from lrsearch.schedules import Schedule
from lrsearch.schedules import is_update_step
from lrsearch.schedules import tail_every
from lrsearch.schedules import tail_start


def has_batchnorm(model: torch.nn.Module) -> bool:
    """Whether ``model`` has a BatchNorm layer (whose statistics ``update_bn`` recomputes)."""
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


class HostCountedAverage(AveragedModel):
    """``AveragedModel`` whose ``update_parameters`` counts updates on the host (no device sync)."""

    updates: int = 0

    @torch.no_grad()
    def update_parameters(self, model: torch.nn.Module) -> None:
        def tensors(m: torch.nn.Module) -> list[torch.Tensor]:
            return [*m.parameters(), *(m.buffers() if self.use_buffers else ())]

        ours = [t.detach() for t in tensors(self.module)]
        theirs = [t.detach().to(o.device) for t, o in zip(tensors(model), ours, strict=True)]
        if self.updates == 0:
            torch._foreach_copy_(ours, theirs)
        else:
            groups: dict[tuple[torch.device, torch.dtype], tuple[list, list]] = {}
            for o, t in zip(ours, theirs, strict=True):
                mine, yours = groups.setdefault((o.device, o.dtype), ([], []))
                mine.append(o)
                yours.append(t)
            for mine, yours in groups.values():
                self.multi_avg_fn(mine, yours, self.updates)
        if not self.use_buffers:  # the buffers follow the live model's (update_bn replaces BN's)
            for b_avg, b_model in zip(self.module.buffers(), model.buffers(), strict=True):
                b_avg.detach().copy_(b_model.detach().to(b_avg.device))
        self.n_averaged += 1
        self.updates += 1


class Averager:
    """Keeps the averaged model of ``tail`` over a ``total_steps`` run of ``live``.

    Args:
        live: The model being trained.
        tail: A normalised tail spec (``Schedule.tail``).
        total_steps: Optimizer steps of the run.
        bn_inputs: Called to get an iterable of input batches (on the model's device) for
            ``update_bn``; needed only when the model has BatchNorm and the tail is an SWA. A
            batch that is a dict is passed as keyword arguments (``model(**batch)``).
    """

    def __init__(
        self, live: torch.nn.Module, tail: Mapping[str, Any], total_steps: int,
        bn_inputs: Callable[[], Iterable[Any]] | None = None,
    ) -> None:
        self.tail, self.total = tail, total_steps
        self.start, self.every = tail_start(tail, total_steps), tail_every(tail, total_steps)
        ema = tail["kind"] == "ema"
        self.needs_bn = not ema and has_batchnorm(live)
        if self.needs_bn and bn_inputs is None:
            raise ValueError("bn_inputs must be given for an SWA tail on a model with BatchNorm.")
        self.bn_inputs = bn_inputs
        self.live = live
        self.average: HostCountedAverage | None = None  # built at the first update
        self._bn_fresh = False
        self._saved: list[torch.Tensor] | None = None  # the live weights while swapped out

    @classmethod
    def of(cls, schedule: Schedule, live: torch.nn.Module, total_steps: int,
           bn_inputs: Callable[[], Iterable[Any]] | None = None) -> Averager | None:
        """The averager of ``schedule``'s tail, or ``None`` when it has none."""
        return None if schedule.tail is None else cls(live, schedule.tail, total_steps, bn_inputs)

    @property
    def updates(self) -> int:
        return 0 if self.average is None else self.average.updates

    def step(self, step: int) -> None:
        """Call after optimizer step ``step`` (from 0): update the average if it is due."""
        if not is_update_step(step, self.start, self.every, self.total):
            return
        if self.average is None:
            ema = self.tail["kind"] == "ema"
            fn = get_ema_multi_avg_fn(self.tail["decay"]) if ema else get_swa_multi_avg_fn()
            self.average = HostCountedAverage(self.live, multi_avg_fn=fn, use_buffers=ema)
        self.average.update_parameters(self.live)
        self._bn_fresh = False

    def model(self) -> torch.nn.Module:
        """The model to evaluate: the averaged weights once updated (BN statistics recomputed
        for an SWA), else the live model."""
        if self.average is None:
            return self.live
        if self.needs_bn and not self._bn_fresh:
            with torch.no_grad():
                update_bn(self.bn_inputs(), _Forward(self.average.module))  # type: ignore[misc]
            self._bn_fresh = True
        return self.average.module

    def _tensors(self, model: torch.nn.Module) -> list[torch.Tensor]:
        return [t.detach() for t in (*model.parameters(), *model.buffers())]

    def swap_in(self) -> bool:
        """Copy the averaged weights and buffers into the live model, keeping the live ones to put
        back with ``swap_out``; ``False`` (nothing done) before the first update or if swapped in."""
        if self.average is None or self._saved is not None:
            return False
        live = self._tensors(self.live)
        self._saved = [t.clone() for t in live]
        torch._foreach_copy_(live, self._tensors(self.model()))
        return True

    def swap_out(self) -> None:
        """Put the live weights back after ``swap_in`` (nothing if not swapped in)."""
        if self._saved is not None:
            torch._foreach_copy_(self._tensors(self.live), self._saved)
            self._saved = None

    def load_into_live(self) -> bool:
        """Copy the averaged weights into the live model for good (the end of training); ``False``
        (nothing done) before the first update."""
        done = self.swap_in() or self._saved is not None
        self._saved = None
        return done


class _Forward(torch.nn.Module):
    """``module(batch)``, or ``module(**batch)`` for a dict batch (Hugging Face), for ``update_bn``."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, batch: Any) -> Any:
        return self.module(**batch) if isinstance(batch, Mapping) else self.module(batch)
