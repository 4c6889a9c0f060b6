"""The averaging tail in the loop: EMA and SWA by hand, BatchNorm statistics, what is evaluated."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lrsearch import Schedule
from lrsearch import Task
from lrsearch import train
from lrsearch.training._averaging import Averager
from lrsearch.training._data import eval_mean


def _tail(**kw):
    return Schedule("constant", tail=kw).tail


def _perturb(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_swa_is_the_mean_of_the_snapshots_at_the_update_steps() -> None:
    live = torch.nn.Linear(3, 2)
    avg = Averager(live, _tail(kind="swa", start=0.5, every=0.2), total_steps=10)  # S = 5, K = 2
    snaps = []
    for t in range(10):
        _perturb(live, t)
        avg.step(t)
        if t in (6, 8, 9):  # (t - 5 + 1) % 2 == 0, and the last step
            snaps.append(_flat(live))
        assert avg.updates == len(snaps)
    assert avg.average.n_averaged.item() == 3  # torch's own counter still counts
    torch.testing.assert_close(_flat(avg.model()), torch.stack(snaps).mean(0), rtol=1e-6, atol=1e-6)
    assert avg.model() is not live


def test_ema_with_decay_zero_is_the_live_model_and_ema_is_the_recursion() -> None:
    live = torch.nn.Linear(3, 2)
    zero = Averager(live, _tail(kind="ema", decay=0.0, start=0.3), total_steps=10)
    ema = Averager(live, _tail(kind="ema", decay=0.9, start=0.3), total_steps=10)
    assert zero.model() is live  # no update yet: the live model is evaluated
    want = None
    for t in range(10):
        _perturb(live, 100 + t)
        zero.step(t)
        ema.step(t)
        if t >= 3:
            want = _flat(live) if want is None else 0.9 * want + 0.1 * _flat(live)
            torch.testing.assert_close(_flat(zero.model()), _flat(live), rtol=0, atol=0)
    torch.testing.assert_close(_flat(ema.model()), want, rtol=1e-6, atol=1e-6)


def _bn_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))


def test_swa_recomputes_batchnorm_statistics_of_the_averaged_weights() -> None:
    live = _bn_model()
    xs = [torch.randn(8, 4, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    avg = Averager(live, _tail(kind="swa", start=0.5), total_steps=4, bn_inputs=lambda: iter(xs))
    for t in range(4):
        _perturb(live, t)
        live.train()
        live(xs[t])  # the live model's running statistics move as in training
        avg.step(t)
    averaged = avg.model()
    want = averaged[0](torch.cat(xs)).mean(0).detach()  # momentum None: the mean over all batches
    torch.testing.assert_close(averaged[1].running_mean, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(averaged[1].running_mean, live[1].running_mean)
    assert averaged[1].momentum == live[1].momentum  # update_bn puts the momentum back


def test_swa_on_batchnorm_needs_inputs_and_ema_averages_the_buffers() -> None:
    with pytest.raises(ValueError, match="bn_inputs must be given"):
        Averager(_bn_model(), _tail(kind="swa"), total_steps=4)
    live = _bn_model()
    ema = Averager(live, _tail(kind="ema", decay=0.5, start=0.5), total_steps=4)
    live.train()
    for t in range(4):
        before = live[1].running_mean.clone()
        live(torch.randn(8, 4) + t)
        ema.step(t)
    # two updates: the first copies, the second is the mean of the two live statistics
    torch.testing.assert_close(ema.model()[1].running_mean, (before + live[1].running_mean) / 2)


def _task(model_fn, epochs: int = 4) -> Task:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 6, generator=g)
    y = (x[:, 0] > 0).long()
    return Task(model_fn, (x[:192], y[:192]), (x[192:], y[192:]), F.cross_entropy, epochs=epochs,
                batch_size=32, optimizer_fn=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))


def _mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


def _mlp_bn() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 2))


@pytest.mark.parametrize("model_fn", [_mlp, _mlp_bn])
def test_evaluations_after_the_tail_start_use_the_averaged_weights(model_fn) -> None:
    base = Schedule("cosine", lr=0.1)
    plain = train(_task(model_fn), base, seed=1)
    swa = train(_task(model_fn), base.replace(tail={"kind": "swa", "start": 0.5}), seed=1)
    same = train(_task(model_fn), base.replace(tail={"kind": "ema", "decay": 0.0, "start": 0.5}), seed=1)
    # 4 evaluations of a 24-step run, tail from step 12: the first two judge the live model
    assert swa.values[:2] == plain.values[:2] and swa.values[2] != plain.values[2]
    assert same.values == plain.values  # decay 0: the average is the live model at each update
    x, y = _task(model_fn).val_data
    assert swa.final == pytest.approx(float(eval_mean(swa.model, [(x, y)], F.cross_entropy, x.device)))
    live_final = float(eval_mean(plain.model, [(x, y)], F.cross_entropy, x.device))
    assert swa.final != pytest.approx(live_final)  # and the result's model is the averaged one


def test_swap_in_out_and_load_into_live() -> None:
    live = torch.nn.Linear(3, 2)
    avg = Averager(live, _tail(kind="swa", start=0.5), total_steps=4)
    assert not avg.swap_in() and not avg.load_into_live()  # nothing averaged yet
    snaps = []
    for t in range(4):
        _perturb(live, t)
        avg.step(t)
        snaps.append(_flat(live))
    mean = torch.stack(snaps[2:]).mean(0)
    assert avg.swap_in() and not avg.swap_in()  # the second call does nothing
    torch.testing.assert_close(_flat(live), mean)
    avg.swap_out()
    torch.testing.assert_close(_flat(live), snaps[-1], rtol=0, atol=0)
    assert avg.load_into_live()
    avg.swap_out()  # nothing to put back: the average stays
    torch.testing.assert_close(_flat(live), mean)


class _Keywords(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.bn = torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)

    def forward(self, x, labels=None):
        return self.bn(self.lin(x))


def test_update_bn_passes_dict_batches_as_keywords() -> None:
    torch.manual_seed(0)
    live = _Keywords()
    batches = [{"x": torch.randn(8, 4), "labels": torch.zeros(8)} for _ in range(3)]
    avg = Averager(live, _tail(kind="swa", start=0.5), total_steps=2, bn_inputs=lambda: iter(batches))
    for t in range(2):
        _perturb(live, t)
        avg.step(t)
    averaged = avg.model()
    want = averaged.lin(torch.cat([b["x"] for b in batches])).mean(0).detach()
    torch.testing.assert_close(averaged.bn.running_mean, want, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", ["swa", "ema"])
def test_updates_do_not_wait_for_the_device(kind: str) -> None:
    live = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.BatchNorm1d(64)).cuda()
    inputs = [torch.randn(8, 64).cuda()]
    avg = Averager(live, _tail(kind=kind, start=0.1), total_steps=20, bn_inputs=lambda: inputs)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any host-device synchronisation raises
    try:
        for t in range(20):
            avg.step(t)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert avg.updates == 18
