"""``train_population``: K runs of one ``Task`` trained at once, each as ``train`` would train it.

Members step together: at every optimizer step each member draws its own batch (its own seed's
permutation, as ``TensorBatches``), the stacked models run in one ``vmap``-ed forward and backward,
and ``FlatOptimizer`` applies each member's LR (its schedule's peak times its ratio at that step,
times its plateau reduction). A member evaluates at its own steps (``task.eval_steps`` of its own
run length), its ``on_eval`` may raise to stop it, and a member that is done or
stopped leaves: its row is dropped from every stacked tensor, so it costs no more compute.

On CUDA nothing per step waits for the host (the LR tables live on the device); evaluations read
their values, as ``train`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.func import vmap

from lrsearch.training import shuffle_order
from lrsearch.training import to_device
from lrsearch.training import unpack
from lrsearch.training import training_threads
from lrsearch.training import Task
from lrsearch.population._batched import member_losses
from lrsearch.population._members import Member
from lrsearch.population._members import MemberResult
from lrsearch.population._members import make_members
from lrsearch.population._members import one_by_one
from lrsearch.population._members import schedule_reason
from lrsearch.population._members import task_reason
from lrsearch.population._optim import FlatOptimizer
from lrsearch.population._optim import NotStackable
from lrsearch.population._stack import MAX_POPULATION
from lrsearch.population._stack import Stack
from lrsearch.population._stack import free_bytes
from lrsearch.population._stack import member_bytes
from lrsearch.population._stack import population_size
from lrsearch.population._stack import why_not_stackable
from lrsearch.schedules import Schedule


OnExit = Callable[[int, MemberResult], None]


def _trained(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for g in optimizer.param_groups for p in g["params"]}


def _momentum_default(optimizer: torch.optim.Optimizer) -> float:
    d = optimizer.defaults
    return float(d["betas"][0]) if "betas" in d else float(d.get("momentum", 0.0))


class _Population:
    """One batch of members trained together (at most the population size)."""

    def __init__(self, task: Task, device: torch.device, members: list[Member], first: int) -> None:
        self.task, self.device, self.first = task, device, first
        self.members = [m.build(task, device, schedule=False) for m in members]
        opt = members[0].optimizer
        momentum = _momentum_default(opt)  # before a scheduler cycles it
        self.stack = Stack([m.model for m in members], _trained(opt))
        groups = {id(p): g for g, group in enumerate(opt.param_groups) for p in group["params"]}
        named = dict(members[0].model.named_parameters())
        cols = torch.cat([torch.full((size,), groups[id(named[n])], dtype=torch.long)
                          for n, size in zip(self.stack.names, self.stack.sizes)])
        self.optimizer = FlatOptimizer(opt, cols, [1.0] * len(opt.param_groups))
        for m in members:
            m.scheduler = m.schedule.build(m.optimizer, m.total)
        self.optimizer.lr_scale = FlatOptimizer._per_column(members[0].scheduler.group_scales, cols)
        self.optimizer.to(device, self.stack.flat.dtype)
        longest = max(m.total for m in members)
        self.ratio = self._table([m.schedule.multipliers(np.arange(m.total), m.total) for m in members], longest)
        curves = [m.schedule.momentum_curve(m.total) for m in members]
        self.momentum = None if all(c is None for c in curves) else self._table(
            [np.full(m.total, momentum) if c is None else c for m, c in zip(members, curves)], longest)
        self.peak = torch.tensor([m.schedule.lr for m in members], dtype=torch.float64, device=device)
        self.plateau = torch.ones(len(members), dtype=torch.float64, device=device)
        self.rows = list(range(len(members)))  # member index of each row still training
        self.values: list[list[float]] = [[] for _ in members]
        self.evals = [m.evals(task) for m in members]
        self.errors: list[Exception | None] = [None] * len(members)
        seeds = {m.seed for m in members}
        self.shared = len(seeds) == 1  # one data order for all: the batch is not copied K times
        self.x, self.y = (t.to(device) for t in task.train_data)
        self.batch_size = task.batch_size
        self.batches = -(-self.x.shape[0] // self.batch_size)
        self.vmap_metric: bool | None = None
        self.plain_targets = self.y.dtype == torch.long and bool((self.y >= 0).all())  # no ignore_index
        self.order: torch.Tensor | None = None  # this pass's permutation per row (one row if shared)

    def _table(self, curves: list[np.ndarray], longest: int) -> torch.Tensor:
        rows = [np.concatenate([c, np.full(longest - len(c), c[-1])]) for c in curves]
        return torch.tensor(np.stack(rows), dtype=torch.float64, device=self.device)

    def _orders(self, epoch: int) -> torch.Tensor:
        """Each row's permutation for this pass over the data (``TensorBatches``'s)."""
        n = self.x.shape[0]
        seeds = [self.members[self.rows[0]].seed] if self.shared else [self.members[r].seed for r in self.rows]
        perms = [shuffle_order(n, s, epoch) for s in seeds]
        return torch.stack(perms).to(self.device)

    def run(self, on_exit: OnExit | None) -> list[MemberResult]:
        results: dict[int, MemberResult] = {}
        step = 0
        loss_fn = self.task.loss_fn
        self.stack.module.train()
        while self.rows:
            epoch, b = divmod(step, self.batches)
            if b == 0 or self.order is None:
                self.order = self._orders(epoch)
            idx = self.order[:, b * self.batch_size:(b + 1) * self.batch_size]
            idx = idx[0] if self.shared else idx
            x, y = self.x[idx], self.y[idx]
            out = self.stack.forward(self.stack.flat, self.stack.fixed, x, self.shared)
            losses = member_losses(loss_fn, out, y, self.shared) if self.plain_targets else None
            if losses is None:
                losses = vmap(loss_fn, in_dims=(0, None if self.shared else 0))(out, y)
            (grad,) = torch.autograd.grad(losses.sum(), self.stack.flat)
            if self.task.clip_grad_norm is not None:
                norms = grad.norm(dim=1)
                grad = grad * (self.task.clip_grad_norm / (norms + 1e-6)).clamp(max=1.0)[:, None]
            lr = self.peak * self.ratio[:, step] * self.plateau
            momentum = None if self.momentum is None else self.momentum[:, step]
            self.optimizer.step(self.stack.flat, grad, lr, momentum)
            step += 1
            self._evaluate_due(step)
            leaving = [i for i, r in enumerate(self.rows)
                       if self.errors[r] is not None or step >= self.members[r].total]
            if leaving:
                self._leave(leaving, step, results, on_exit)
        return [results[i] for i in range(len(self.members))]

    def _evaluate_due(self, step: int) -> None:
        due = [i for i, r in enumerate(self.rows) if step in self.evals[r][len(self.values[r]):]]
        if not due:
            return
        values = self._evaluate(due).tolist()
        for i, value in zip(due, values):
            r = self.rows[i]
            member = self.members[r]
            while len(self.values[r]) < len(self.evals[r]) and self.evals[r][len(self.values[r])] == step:
                self.values[r].append(value)
                if member.scheduler.accepts_metric and math.isfinite(value):
                    member.scheduler.step(value)
                    self.plateau[i] = member.scheduler.plateau_scale
                if member.on_eval is not None:
                    try:
                        member.on_eval(len(self.values[r]) - 1, value)
                    except Exception as err:  # this member stops; the others go on
                        self.errors[r] = err
                        break

    def _evaluate(self, due: list[int]) -> torch.Tensor:
        """The metric of the rows ``due`` over the validation data (``eval_mean``'s weighting)."""
        rows = torch.tensor(due, device=self.device)
        flat = self.stack.flat.detach()
        fixed = self.stack.fixed
        if len(due) < len(self.rows):
            flat, fixed = flat.index_select(0, rows), {n: v.index_select(0, rows) for n, v in fixed.items()}
        fn = self.task.metric or self.task.loss_fn
        total, count = torch.zeros(len(due), device=self.device), 0
        val = self.task.batches(self.task.val_data, self.device, shuffle=False, seed=0)
        self.stack.module.eval()
        try:
            with torch.no_grad():
                for batch in val:
                    inputs, target = unpack(batch, None)
                    inputs, target = to_device(inputs, self.device), to_device(target, self.device)
                    out = self.stack.forward(flat, fixed, inputs, shared=True)
                    n = target.shape[0] if isinstance(target, torch.Tensor) and target.dim() else 1
                    total = total + self._metric(fn, out, target).detach().float() * n
                    count += n
        finally:
            self.stack.module.train()
        return total / count

    def _metric(self, fn: Callable[[Any, Any], Any], out: Any, target: Any) -> torch.Tensor:
        if self.vmap_metric is not False:
            try:
                value = vmap(fn, in_dims=(0, None))(out, target)
                self.vmap_metric = True
                return torch.as_tensor(value, device=self.device).reshape(-1)
            except Exception:
                if self.vmap_metric:
                    raise
                self.vmap_metric = False  # a metric vmap cannot batch: one call per member
        return torch.stack([torch.as_tensor(fn(o, target), device=self.device).reshape(()) for o in out])

    def _leave(self, leaving: list[int], step: int, results: dict[int, MemberResult],
               on_exit: OnExit | None) -> None:
        for i in leaving:
            r = self.rows[i]
            member = self.members[r]
            self.stack.write_back(i, member.model)
            results[r] = MemberResult(self.values[r], step, str(self.device), member.model, error=self.errors[r])
        keep = [i for i in range(len(self.rows)) if i not in leaving]
        rows = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.stack.keep(rows)
        self.optimizer.keep(rows)
        self.ratio, self.peak, self.plateau = (t.index_select(0, rows) for t in (self.ratio, self.peak, self.plateau))
        if self.momentum is not None:
            self.momentum = self.momentum.index_select(0, rows)
        if self.order is not None and not self.shared:
            self.order = self.order.index_select(0, rows)
        gone = [self.rows[i] for i in leaving]
        self.rows = [self.rows[i] for i in keep]
        if on_exit is not None:
            for r in gone:
                on_exit(self.first + r, results[r])


def _plan(task: Task, device: torch.device, first: Member, population: int | str, members: int) -> tuple[int, str | None]:
    """How many members to train at once, and why they cannot be batched (``None`` if they can)."""
    reason = task_reason(task)
    if reason is not None:
        return 1, reason
    probe = Member(first.schedule, first.seed, first.total, None).build(task, device)
    x = task.train_data[0][:task.batch_size].to(device)
    y = task.train_data[1][:task.batch_size].to(device)
    trained = _trained(probe.optimizer)
    try:
        FlatOptimizer(probe.optimizer, torch.zeros(0, dtype=torch.long), [1.0])
    except NotStackable as err:
        return 1, str(err)
    reason = why_not_stackable(probe.model, trained, x, y, task.loss_fn)
    if reason is not None:
        return 1, reason
    if isinstance(population, int):
        return population, None
    slots = 2 if "betas" in probe.optimizer.defaults else 1
    return population_size(member_bytes(probe.model, trained, x, slots), free_bytes(device), members), None


def population_plan(task: Task, population: int | str = "auto", schedule: Schedule | None = None,
                    seed: int = 0) -> tuple[int, str | None]:
    """``(size, reason)``: how many runs of ``task`` ``train_population`` trains at once
    (``"auto"``: what fits in memory, at most ``MAX_POPULATION``), and why it must train them one at
    a time instead (``None`` when it need not)."""
    members = make_members(task, [schedule or Schedule("constant", lr=1e-3)], seed, None, None)
    device = task.resolve_device()
    with training_threads(device, task.threads):
        return _plan(task, device, members[0], check_population(population), MAX_POPULATION)


def check_population(population: Any, *, none_ok: bool = False) -> int | str | None:
    """A population size: ``"auto"`` or an integer >= 1 (or ``None`` when ``none_ok``)."""
    if population is None and none_ok:
        return None
    if not (population == "auto" or (isinstance(population, int) and not isinstance(population, bool)
                                     and population >= 1)):
        allowed = "None, 'auto'" if none_ok else "'auto'"
        raise ValueError(f"population must be {allowed} or an integer >= 1 but got {population!r}.")
    return population


def train_population(
    task: Task,
    schedules: Sequence[Schedule],
    seeds: int | Sequence[int] = 0,
    *,
    on_eval: Sequence[Callable[[int, float], None] | None] | None = None,
    total_steps: int | Sequence[int] | None = None,
    population: int | str = "auto",
    on_exit: OnExit | None = None,
    optimizers: Sequence[Any] | None = None,
) -> list[MemberResult]:
    """Train one run of ``task`` per schedule, many at once; member ``i`` is ``train(task,
    schedules[i], seed=seeds[i], total_steps=total_steps[i], on_eval=on_eval[i])``.

    Example:
        >>> results = lrsearch.train_population(task, [Schedule("cosine", lr=lr) for lr in lrs])
        >>> [r.final for r in results]

    Args:
        task: The ``Task`` (tensor training data; no AMP or accumulation).
        schedules: One schedule per member.
        seeds: One seed for all members or one per member (initial weights and data order).
        on_eval: One ``on_eval(index, value)`` per member (or ``None``); one that raises stops
            that member only, whose result keeps the exception as ``error``.
        total_steps: Each member's run length (one for all, or one each); default a full run.
        population: Members trained at once, ``"auto"`` (what fits in memory, at most 32), or an int.
        on_exit: ``on_exit(member, result)`` as soon as a member finishes or stops.
        optimizers: One ``OptimizerSpec`` (or ``None``: ``task.optimizer_fn``) per member, as
            ``train``'s ``optimizer``; searched optimizers are trained one at a time.

    Returns one ``MemberResult`` per schedule, in order. A model that cannot be stacked
    (BatchNorm in train mode, control flow ``vmap`` cannot batch), an optimizer without a batched
    version (not Adam, AdamW or SGD), or a feature the population does not batch (AMP,
    accumulation, averaging tails, per-group schedules) trains the members one at a time with
    ``train``, with a ``PopulationWarning`` saying why. Curves equal ``train``'s within float
    rounding (dropout draws differ: ``vmap`` draws each member's own masks).
    """
    if not isinstance(task, Task):
        raise ValueError(f"task must be a lrsearch.Task but got {type(task).__name__}.")
    population = check_population(population)
    members = make_members(task, schedules, seeds, total_steps, on_eval)
    specs = list(optimizers) if optimizers is not None else [None] * len(members)
    if len(specs) != len(members):
        raise ValueError(f"optimizers must have one entry per schedule ({len(members)}) but got {len(specs)}.")
    device = task.resolve_device()
    with training_threads(device, task.threads):
        reason = schedule_reason(schedules) or (
            "searched optimizers (OptimizerSpec) are trained one at a time" if any(specs) else None)
        size = 1
        if reason is None:
            size, reason = _plan(task, device, members[0], population, len(members))
        if reason is not None:
            return one_by_one(task, members, reason, on_exit, specs)
        results: list[MemberResult] = []
        for start in range(0, len(members), size):
            results += _Population(task, device, members[start:start + size], start).run(on_exit)
        return results
