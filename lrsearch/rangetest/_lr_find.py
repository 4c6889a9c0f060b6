"""``lr_find``: the LR range test (Smith 2015; fastai, torch-lr-finder), restored exactly afterwards.

One global multiplier is swept from ``start_lr`` to ``end_lr`` over ``num_iter`` optimizer steps
(``lr_i = start * (end / start) ** (i / (num_iter - 1))`` in ``exp`` mode, so both ends are hit);
every param group runs at the multiplier times its ratio to the optimizer's default LR, so groups
keep their ratios. Losses are recorded raw and smoothed with a bias-corrected EMA; the test stops
when the smoothed loss exceeds ``diverge_th`` times its best, or a loss is not finite.

On CUDA the host reads the losses only every ``check_every`` steps (one synchronisation for a batch
of points, batches move with ``non_blocking=True``), so the test does not stall the device each
step; points past a divergence found late are dropped.
"""

from __future__ import annotations

import contextlib
import math
import sys
import warnings
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lrsearch._checks import check_choice
from lrsearch._checks import check_float
from lrsearch._checks import check_int
from lrsearch.training import cycle
from lrsearch.training import eval_mean
from lrsearch.training import to_device
from lrsearch.training import unpack
from lrsearch.rangetest._distributed import across_ranks
from lrsearch.rangetest._distributed import from_rank_zero
from lrsearch.rangetest._distributed import mean_across
from lrsearch.rangetest._result import RangeTestResult
from lrsearch.rangetest._snapshot import Snapshot
from lrsearch.training import scales_of


class RangeTestWarning(UserWarning):
    """A range test's curve looks unreliable (never diverged, flat, diverged at once)."""


_AMP = {None: None, "fp16": torch.float16, "bf16": torch.bfloat16}
_FLOAT32_MAX = float(torch.finfo(torch.float32).max)  # the largest LR an optimizer step can take


class _Curve:
    """Host-side record: smoothing and the stop rule, one point at a time."""

    def __init__(self, smooth_f: float, diverge_th: float) -> None:
        self.f, self.th = smooth_f, diverge_th
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.train: list[float] = []
        self.smoothed: list[float] = []
        self.v, self.k, self.best = 0.0, 0, math.inf

    def add(self, lr: float, loss: float, train_loss: float) -> str | None:
        """Record a point; return why to stop, if the test should stop here."""
        self.lrs.append(lr)
        self.losses.append(loss)
        self.train.append(train_loss)
        if not (math.isfinite(loss) and math.isfinite(train_loss)):
            self.smoothed.append(math.nan)
            return "non_finite"
        self.k += 1
        self.v = (1.0 - self.f) * self.v + self.f * loss
        # the bias correction 1 - (1 - f)^k, exact even for a tiny f (where the naive form is 0)
        smooth = self.v / -math.expm1(self.k * math.log1p(-self.f)) if self.f < 1 else self.v
        self.smoothed.append(smooth)
        self.best = min(self.best, smooth)
        # a ratio to the best only means something for a positive loss
        return "diverged" if self.best > 0 and smooth > self.th * self.best else None


def _model_device(model: torch.nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    if first is None:
        first = next(model.buffers(), None)
    return torch.device("cpu") if first is None else first.device


def lr_find(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Any, Any], torch.Tensor],
    train_loader: Iterable[Any],
    *,
    val_loader: Iterable[Any] | None = None,
    probe_batches: int | None = None,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_iter: int = 100,
    step_mode: str = "exp",
    smooth_f: float = 0.05,
    diverge_th: float = 5.0,
    accumulation_steps: int = 1,
    clip_grad_norm: float | None = None,
    amp: str | None = None,
    grad_scaler: Any = None,
    device: str | torch.device | None = None,
    batch_fn: Callable[[Any], tuple[Any, Any]] | None = None,
    snapshot: str = "cpu",
    check_every: int | None = None,
    verbose: bool | None = None,
    distributed: bool | None = None,
) -> RangeTestResult:
    """Run an LR range test and leave what it touched exactly as it was, even when interrupted.

    Restored bit for bit: the model's parameters, buffers, gradients and train/eval flags; every
    tensor the optimizer steps, wherever it lives (a loss's learnable temperature, say), with its
    gradient and ``requires_grad``; ``loss_fn``'s parameters and buffers when it is an ``nn.Module``
    (a plain function wrapping a module does not expose them); the optimizer's and the scaler's
    state; torch's (CPU and initialised CUDA), numpy's and python's global RNG; and the position of
    a ``TensorBatches`` ``train_loader``/``val_loader`` (its next pass is the one it would have been).
    Other loaders are iterated afresh and not rewound: a ``DataLoader`` shuffling from the global RNG
    (no ``generator=``) gives the same next epoch, since that RNG is restored; a ``generator`` of your
    own (on the DataLoader or its sampler) is advanced, as is any state of a custom iterable, its
    dataset or persistent workers; a list is never changed.

    Example:
        >>> result = lrsearch.lr_find(model, opt, torch.nn.functional.cross_entropy, batches)
        >>> low, high = result.search_range()      # seeds lrsearch.SearchSpace
        >>> result.suggestion("valley")

    Args:
        model, optimizer, loss_fn: Any model, optimizer and ``loss_fn(model(inputs), target)``.
        train_loader: Re-iterable batches (a DataLoader, ``lrsearch.TensorBatches``, a list);
            restarted when exhausted; the caller's own iterators are never advanced.
        val_loader: Record a held-out loss instead of the training loss (Leslie Smith's mode):
            the whole loader after every step, or only its first ``probe_batches`` batches (a
            cheap, fixed probe kept on the device).
        start_lr, end_lr: The swept multiplier's ends, ``0 < start_lr < end_lr <= 3.4e38``.
        num_iter: Optimizer steps, >= 2 (fewer if the loss diverges).
        step_mode: ``"exp"`` (log-spaced, default) or ``"linear"``.
        smooth_f: EMA weight of the newest loss, in (0, 1]; 1 means no smoothing.
        diverge_th: Stop when the smoothed loss exceeds this multiple of its best, > 1.
        accumulation_steps: Micro-batches per optimizer step; each loss is divided by it, and a
            point's loss is the mean over its micro-batches.
        clip_grad_norm: Clip the gradient norm to this before each step, as the training it stands
            for does (``Task(clip_grad_norm=...)``): clipping lets a run take LRs an unclipped test
            diverges at, so a test without it places the range too low.
        amp: ``None``, ``"bf16"`` or ``"fp16"`` (autocast; fp16 adds a GradScaler). Steps the
            scaler skips are counted in ``skipped_steps`` and are not points.
        grad_scaler: Your ``torch.amp.GradScaler``, if you have one; its state is restored.
        device: Where batches go; defaults to (and must be) the model's device.
        batch_fn: ``batch -> (inputs, target)`` for batches of any other shape.
        snapshot: ``"cpu"`` (default; no second copy on the GPU) or ``"disk"``.
        check_every: Read losses on the host every this many steps (default 1 on CPU, 10 on GPU).
        verbose: Show a progress bar on stderr; ``None`` (default): only when stderr is a terminal
            (so not into a log file).
        distributed: Run across the ranks of a ``torch.distributed`` job, every rank on its own
            shard of the data: each point is the mean loss over the ranks, every rank gets rank
            0's result and is restored. Default: on for a ``DistributedDataParallel`` model.
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module but got {type(model).__name__}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(f"optimizer must be a torch.optim.Optimizer but got {type(optimizer).__name__}.")
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be callable but got {loss_fn!r}.")
    start_lr, end_lr = check_float("start_lr", start_lr), check_float("end_lr", end_lr)
    if not 0 < start_lr < end_lr:
        raise ValueError(f"start_lr and end_lr must satisfy 0 < start_lr < end_lr but got {start_lr!r}, {end_lr!r}.")
    if end_lr > _FLOAT32_MAX:  # an optimizer step turns the LR into a float32 scalar: past this it overflows
        raise ValueError(f"end_lr must be at most {_FLOAT32_MAX:.4g} (float32's largest) but got {end_lr!r}.")
    num_iter = check_int("num_iter", num_iter, low=2)
    check_choice("step_mode", step_mode, ("exp", "linear"))
    smooth_f = check_float("smooth_f", smooth_f)
    if not 0 < smooth_f <= 1:
        raise ValueError(f"smooth_f must be in (0, 1] but got {smooth_f!r}.")
    diverge_th = check_float("diverge_th", diverge_th)
    if diverge_th <= 1:
        raise ValueError(f"diverge_th must be > 1 but got {diverge_th!r}.")
    accumulation_steps = check_int("accumulation_steps", accumulation_steps, low=1)
    if clip_grad_norm is not None and not check_float("clip_grad_norm", clip_grad_norm) > 0:
        raise ValueError(f"clip_grad_norm must be > 0 or None but got {clip_grad_norm!r}.")
    amp_dtype = _AMP[check_choice("amp", amp, tuple(_AMP))]
    synced = across_ranks(model, distributed)
    if probe_batches is not None:
        probe_batches = check_int("probe_batches", probe_batches, low=1)
        if val_loader is None:
            raise ValueError("probe_batches needs a val_loader to take the probe batches from.")
    model_device = _model_device(model)
    device = model_device if device is None else torch.device(device)
    if device != model_device:
        raise ValueError(f"device must be the model's device ({model_device}) but got {device}: move the model first.")
    on_cpu = device.type == "cpu"
    check_every = check_int("check_every", check_every if check_every is not None else (1 if on_cpu else 10), low=1)
    scaler = grad_scaler
    if scaler is None and amp == "fp16":
        scaler = torch.amp.GradScaler(device.type)
    batches = cycle(train_loader, "train_loader")
    scales = scales_of(optimizer)

    def autocast() -> Any:
        if amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=amp_dtype)

    frac = np.arange(num_iter) / (num_iter - 1)
    ladder = start_lr * (end_lr / start_lr) ** frac if step_mode == "exp" else start_lr + (end_lr - start_lr) * frac
    curve = _Curve(smooth_f, diverge_th)
    stop, iterations, skipped = "completed", 0, 0
    snap = Snapshot(model, optimizer, scaler, snapshot, loss_fn=loss_fn, loaders=(train_loader, val_loader))
    # even a disabled tqdm costs a fraction of a millisecond to build: only make one when shown
    shown = sys.stderr.isatty() if verbose is None else verbose
    progress = tqdm(total=num_iter, desc="lr_find", unit="step", leave=False, file=sys.stderr) if shown else None
    try:
        probe = None
        if val_loader is not None and probe_batches is not None:
            source = cycle(val_loader, "val_loader")
            probe = [to_device(next(source), device) for _ in range(probe_batches)]
        model.train()
        pending: list[tuple[float, torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = []
        for i, lr in enumerate(ladder.tolist()):
            for group, scale in zip(optimizer.param_groups, scales):
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr * scale)
                else:
                    group["lr"] = lr * scale
            optimizer.zero_grad(set_to_none=True)
            step_loss: torch.Tensor | None = None
            for _ in range(accumulation_steps):
                inputs, target = unpack(next(batches), batch_fn)
                inputs, target = to_device(inputs, device), to_device(target, device)
                with autocast():
                    loss = loss_fn(model(inputs), target)
                if i == 0 and (not isinstance(loss, torch.Tensor) or loss.dim() != 0):
                    raise ValueError(f"loss_fn must return a scalar tensor but returned {type(loss).__name__}"
                                     f"{'' if not isinstance(loss, torch.Tensor) else tuple(loss.shape)}.")
                scaled = loss / accumulation_steps if accumulation_steps > 1 else loss
                (scaler.scale(scaled) if scaler is not None else scaled).backward()
                step_loss = loss.detach() if step_loss is None else step_loss + loss.detach()
            was_skipped = None
            if clip_grad_norm is not None:
                if scaler is not None:
                    scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], clip_grad_norm)
            if scaler is not None:
                # the scaler lowers its scale exactly when it skips a step (a disabled one has none)
                before = None if scaler._scale is None else scaler._scale.clone()
                scaler.step(optimizer)
                scaler.update()
                was_skipped = None if before is None else scaler._scale < before
            else:
                optimizer.step()
            iterations += 1
            eval_loss = None
            if val_loader is not None:
                eval_loss = eval_mean(model, probe if probe is not None else val_loader, loss_fn, device,
                                      batch_fn=batch_fn, autocast=autocast)
            if accumulation_steps > 1:
                step_loss = step_loss / accumulation_steps
            if synced:  # the ranks' mean: every rank records the same point and stops with the others
                step_loss = mean_across(step_loss)
                eval_loss = None if eval_loss is None else mean_across(eval_loss)
            if progress is not None:
                progress.update(1)
            if check_every == 1 and on_cpu:  # fast path: a CPU scalar is read at no cost
                reason = None
                if was_skipped is not None and was_skipped.item():
                    skipped += 1
                else:
                    train = step_loss.item()
                    reason = curve.add(lr, train if eval_loss is None else eval_loss.item(), train)
                if reason is not None:
                    stop = reason
                    break
                continue
            pending.append((lr, step_loss, eval_loss, was_skipped))
            if len(pending) >= check_every or i == num_iter - 1:
                reason, n_skipped = _flush(pending, curve)
                skipped += n_skipped
                pending.clear()
                if reason is not None:
                    stop = reason
                    break
    finally:
        if progress is not None:
            progress.close()
        snap.restore()
    mode = "train" if val_loader is None else ("probe" if probe_batches is not None else "val")
    result = RangeTestResult(
        np.asarray(curve.lrs), np.asarray(curve.losses), np.asarray(curve.smoothed), np.asarray(curve.train),
        {"start_lr": start_lr, "end_lr": end_lr, "num_iter": num_iter, "step_mode": step_mode,
         "smooth_f": smooth_f, "diverge_th": diverge_th, "accumulation_steps": accumulation_steps,
         "clip_grad_norm": clip_grad_norm, "amp": amp, "mode": mode},
        stop, iterations, skipped,
    )
    if synced:
        result = from_rank_zero(result)
    for message in result.warnings:
        warnings.warn(message, RangeTestWarning, stacklevel=2)
    return result


def _flush(pending: list[tuple[float, Any, Any, Any]], curve: _Curve) -> tuple[str | None, int]:
    """Read pending points with one host synchronisation; feed the curve until it says stop."""
    # one device-to-host copy for the whole batch of points (the same code on CPU and GPU, so the
    # CPU tests exercise what CUDA runs)
    zero = pending[0][1].new_zeros(())
    cells = [t.float() for _, train, ev, sk in pending
             for t in (train, zero if ev is None else ev, zero if sk is None else sk)]
    flat = torch.stack(cells).tolist()
    values = [(flat[i], flat[i + 1] if pending[i // 3][2] is not None else None, flat[i + 2])
              for i in range(0, len(flat), 3)]
    skipped = 0
    for (lr, *_), (train, loss, was_skipped) in zip(pending, values):
        if was_skipped:
            skipped += 1
            continue
        reason = curve.add(lr, train if loss is None else loss, train)
        if reason is not None:
            return reason, skipped
    return None, skipped
