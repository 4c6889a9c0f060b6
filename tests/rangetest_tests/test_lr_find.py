"""lr_find: exact restoration, loaders, param groups, accumulation, divergence, AMP, val modes."""

from __future__ import annotations

import copy
import random
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lrsearch
from lrsearch import RangeTestWarning
from lrsearch import TensorBatches
from lrsearch import lr_find


def _data(n: int = 256, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, :2].sum(1) > 0).long()
    return x, y


def _model(bn: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    layers = [torch.nn.Linear(8, 32)] + ([torch.nn.BatchNorm1d(32)] if bn else []) + [torch.nn.ReLU(), torch.nn.Linear(32, 2)]
    return torch.nn.Sequential(*layers)


def _trained(opt_kind: str = "sgd", bn: bool = True):
    """A model and optimizer with non-trivial state (momentum buffers, BN statistics, grads)."""
    model = _model(bn)
    if opt_kind == "adam":
        opt = torch.optim.Adam([{"params": model[0].parameters()}, {"params": model[-1].parameters(), "lr": 1e-4}], lr=1e-3)
    else:
        opt = torch.optim.SGD([{"params": model[0].parameters()}, {"params": model[-1].parameters(), "lr": 0.01}],
                              lr=0.1, momentum=0.9)
    x, y = _data()
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(x[:32]), y[:32]).backward()
        opt.step()
    model.eval()  # a mode to restore, too
    return model, opt


def _state(model, opt):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [None if p.grad is None else p.grad.clone() for p in model.parameters()],
        [m.training for m in model.modules()],
        copy.deepcopy(opt.state_dict()),  # state_dict() holds live references
        (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()),
    )


def _assert_same(a, b) -> None:
    (sa, ga, ma, oa, ra), (sb, gb, mb, ob, rb) = a, b
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert all((x is None and y is None) or torch.equal(x, y) for x, y in zip(ga, gb))
    assert ma == mb
    assert oa["param_groups"] == ob["param_groups"]
    assert oa["state"].keys() == ob["state"].keys()
    for k in oa["state"]:
        for name, v in oa["state"][k].items():
            w = ob["state"][k][name]
            assert torch.equal(v, w) if isinstance(v, torch.Tensor) else v == w
    assert ra[0] == rb[0] and np.array_equal(ra[1], rb[1]) and torch.equal(ra[2], rb[2])


def _find(model, opt, loader=None, **kw):
    kw.setdefault("verbose", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RangeTestWarning)
        return lr_find(model, opt, F.cross_entropy, loader or TensorBatches(*_data(), batch_size=32), **kw)


@pytest.mark.parametrize("opt_kind", ["sgd", "adam"])
@pytest.mark.parametrize("store", ["cpu", "disk"])
def test_model_optimizer_and_rng_are_bit_identical_afterwards(opt_kind: str, store: str) -> None:
    model, opt = _trained(opt_kind)
    before = _state(model, opt)
    r = _find(model, opt, snapshot=store, num_iter=60)
    assert r.iterations > 10
    _assert_same(before, _state(model, opt))


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_restored_after_an_exception_mid_test(error: type[BaseException]) -> None:
    model, opt = _trained()
    before = _state(model, opt)
    calls = []

    def loss_fn(out, target):
        calls.append(1)
        if len(calls) == 7:
            raise error("stop here")
        return F.cross_entropy(out, target)

    with pytest.raises(error):
        lr_find(model, opt, loss_fn, TensorBatches(*_data(), batch_size=32), verbose=False)
    assert len(calls) == 7
    _assert_same(before, _state(model, opt))


def test_sweeping_changed_the_model_while_it_ran() -> None:
    # guards the restoration tests: the sweep really trains
    model, opt = _trained()
    seen = []

    def loss_fn(out, target):
        seen.append(model[0].weight.detach().clone())
        return F.cross_entropy(out, target)

    with pytest.warns(RangeTestWarning):
        lr_find(model, opt, loss_fn, TensorBatches(*_data(), batch_size=32), num_iter=20, verbose=False, end_lr=1.0)
    assert not torch.equal(seen[0], seen[-1])


def test_loader_restarts_and_callers_iterators_are_untouched() -> None:
    x, y = _data(96)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)  # 3 batches
    mine = iter(loader)
    first = next(mine)
    model, opt = _trained()
    r = _find(model, opt, loader, num_iter=25, end_lr=0.01)
    assert r.iterations == 25
    assert torch.equal(next(mine)[0], x[32:64])  # my iterator was not advanced
    with pytest.raises(ValueError, match="train_loader must be re-iterable"):
        lr_find(model, opt, F.cross_entropy, iter(loader), verbose=False)
    assert first is not None


def test_param_groups_keep_their_ratio_and_follow_the_ladder() -> None:
    model, opt = _trained()
    seen = []

    def loss_fn(out, target):
        seen.append([g["lr"] for g in opt.param_groups])
        return F.cross_entropy(out, target)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RangeTestWarning)
        lr_find(model, opt, loss_fn, TensorBatches(*_data(), batch_size=32), start_lr=1e-4, end_lr=1e-1,
                num_iter=31, verbose=False)
    seen = np.array(seen)
    np.testing.assert_allclose(seen[:, 0], np.logspace(-4, -1, 31), rtol=1e-12)
    np.testing.assert_allclose(seen[:, 0] / seen[:, 1], 10.0, rtol=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]


def test_linear_step_mode() -> None:
    model, opt = _trained()
    r = _find(model, opt, start_lr=0.001, end_lr=0.1, num_iter=11, step_mode="linear", diverge_th=1e9)
    np.testing.assert_allclose(r.lrs, np.linspace(0.001, 0.1, 11), rtol=1e-12)


def test_accumulation_equals_one_big_batch() -> None:
    x, y = _data(256)
    kw = dict(start_lr=1e-3, end_lr=0.5, num_iter=20, diverge_th=1e9)
    model, opt = _trained(bn=False)
    big = _find(model, opt, TensorBatches(x, y, batch_size=64, shuffle=False), **kw)
    small = _find(model, opt, TensorBatches(x, y, batch_size=16, shuffle=False), accumulation_steps=4, **kw)
    np.testing.assert_allclose(small.losses, big.losses, rtol=1e-5)
    np.testing.assert_allclose(small.lrs, big.lrs)
    assert small.config["accumulation_steps"] == 4


@pytest.mark.parametrize("end_lr", [1e4, 0.05])
def test_batched_host_reads_record_the_same_curve(end_lr: float) -> None:
    # check_every > 1 is what CUDA runs: points are read in batches, those past a divergence dropped
    model, opt = _trained(bn=False)
    every = _find(model, opt, start_lr=1e-3, end_lr=end_lr, num_iter=120, check_every=1)
    batched = _find(model, opt, start_lr=1e-3, end_lr=end_lr, num_iter=120, check_every=7)
    np.testing.assert_array_equal(batched.lrs, every.lrs)
    np.testing.assert_allclose(batched.losses, every.losses, rtol=1e-6)
    assert batched.stop_reason == every.stop_reason
    assert batched.iterations >= every.iterations and batched.iterations - every.iterations < 7


def test_divergence_stops_early() -> None:
    model, opt = _trained()
    r = _find(model, opt, start_lr=1e-3, end_lr=1e4, num_iter=200)
    assert r.stop_reason == "diverged" and r.iterations < 200
    assert r.smoothed[-1] > 5.0 * np.nanmin(r.smoothed)


def test_non_finite_loss_stops_at_once() -> None:
    model, opt = _trained()
    calls = []

    def loss_fn(out, target):
        calls.append(1)
        loss = F.cross_entropy(out, target)
        return loss * float("nan") if len(calls) == 12 else loss

    with pytest.warns(RangeTestWarning):
        r = lr_find(model, opt, loss_fn, TensorBatches(*_data(), batch_size=32), verbose=False, num_iter=50)
    assert r.stop_reason == "non_finite" and len(r.lrs) == 12 and np.isnan(r.losses[-1])
    assert all(torch.isfinite(p).all() for p in model.parameters())  # restored, NaN step undone


def test_grad_scaler_skipped_steps_are_not_points() -> None:
    model, opt = _trained(bn=False)
    # 2**127 * 10 overflows float32 in backward: the scaler skips and halves until it fits
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**127, growth_interval=10_000)
    state = scaler.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RangeTestWarning)
        r = lr_find(model, opt, lambda o, t: 10 * F.cross_entropy(o, t), TensorBatches(*_data(), batch_size=32),
                    grad_scaler=scaler, num_iter=40, end_lr=0.1, verbose=False)
    assert 2 <= r.skipped_steps <= 6 and len(r.lrs) == r.iterations - r.skipped_steps == 40 - r.skipped_steps
    assert r.lrs[0] > 1e-7  # the first ladder steps were skipped, not recorded
    assert scaler.state_dict() == state


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cpu(amp: str) -> None:
    model, opt = _trained(bn=False)
    before = _state(model, opt)
    r = _find(model, opt, amp=amp, num_iter=30, end_lr=1.0)
    assert len(r.lrs) > 5 and np.all(np.isfinite(r.losses[:5]))
    _assert_same(before, _state(model, opt))


def test_validation_and_probe_modes() -> None:
    model, opt = _trained()
    val = TensorBatches(*_data(128, seed=1), batch_size=64, shuffle=False)
    full = _find(model, opt, val_loader=val, num_iter=20, end_lr=0.1)
    probe = _find(model, opt, val_loader=val, probe_batches=1, num_iter=20, end_lr=0.1)
    assert full.config["mode"] == "val" and probe.config["mode"] == "probe"
    assert not np.allclose(full.losses, full.train_losses)
    np.testing.assert_allclose(full.train_losses, probe.train_losses, rtol=1e-6)
    assert not np.allclose(full.losses, probe.losses)  # the probe sees half of the held-out data
    with pytest.raises(ValueError, match="probe_batches needs a val_loader"):
        _find(model, opt, probe_batches=2)


def test_dict_batches_and_batch_fn() -> None:
    x, y = _data()
    dicts = [{"image": x[i:i + 32], "label": y[i:i + 32]} for i in range(0, 256, 32)]
    model, opt = _trained()
    assert len(_find(model, opt, dicts, num_iter=10, end_lr=0.01).lrs) == 10
    triples = [(y[i:i + 32], "meta", x[i:i + 32]) for i in range(0, 256, 32)]
    r = _find(model, opt, triples, num_iter=10, end_lr=0.01, batch_fn=lambda b: (b[2], b[0]))
    assert len(r.lrs) == 10
    with pytest.raises(ValueError, match="batches must be \\(inputs, target\\) tuples"):
        _find(model, opt, [x[:32]], num_iter=3)


def test_progress_bar_only_when_verbose(capsys) -> None:
    model, opt = _trained()
    _find(model, opt, num_iter=10, end_lr=0.01, verbose=True)
    assert "lr_find" in capsys.readouterr().err
    _find(model, opt, num_iter=10, end_lr=0.01, verbose=False)
    assert capsys.readouterr().err == ""


def test_result_plots_and_warns_about_a_short_range() -> None:
    model, opt = _trained()
    with pytest.warns(RangeTestWarning) as caught:
        r = lr_find(model, opt, F.cross_entropy, TensorBatches(*_data(), batch_size=32), end_lr=1e-5,
                    num_iter=40, verbose=False)
    assert any("never diverged" in str(w.message) for w in caught)
    fig = r.plot()
    assert fig.axes[0].get_xscale() == "log"


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"start_lr": 1.0, "end_lr": 0.1}, "start_lr and end_lr must satisfy 0 < start_lr < end_lr but got 1.0, 0.1"),
        ({"start_lr": 0.0}, "0 < start_lr < end_lr"),
        ({"end_lr": float("inf")}, "end_lr must be finite"),
        ({"step_mode": "linear", "end_lr": 1.7e40}, "end_lr must be at most 3.403e+38 (float32's largest) but got 1.7e+40"),
        ({"num_iter": 1}, "num_iter must be >= 2 but got 1"),
        ({"step_mode": "log"}, "step_mode must be one of 'exp', 'linear' but got 'log'"),
        ({"smooth_f": 0.0}, "smooth_f must be in (0, 1] but got 0.0"),
        ({"diverge_th": 1.0}, "diverge_th must be > 1 but got 1.0"),
        ({"accumulation_steps": 0}, "accumulation_steps must be >= 1 but got 0"),
        ({"clip_grad_norm": 0.0}, "clip_grad_norm must be > 0 or None but got 0.0"),
        ({"clip_grad_norm": "1"}, "clip_grad_norm must be"),
        ({"amp": "fp8"}, "amp must be one of None, 'fp16', 'bf16' but got 'fp8'"),
        ({"snapshot": "gpu"}, "snapshot must be one of 'cpu', 'disk' but got 'gpu'"),
        ({"device": "meta"}, "device must be the model's device (cpu) but got meta"),
        ({"check_every": 0}, "check_every must be >= 1 but got 0"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    model, opt = _trained()
    before = _state(model, opt)
    with pytest.raises(ValueError) as info:
        _find(model, opt, **kwargs)
    assert message in str(info.value)
    _assert_same(before, _state(model, opt))


def test_bad_objects() -> None:
    model, opt = _trained()
    with pytest.raises(ValueError, match="model must be a torch.nn.Module"):
        lr_find("m", opt, F.cross_entropy, [])
    with pytest.raises(ValueError, match="optimizer must be a torch.optim.Optimizer"):
        lr_find(model, "o", F.cross_entropy, [])
    per_sample = lambda o, t: F.cross_entropy(o, t, reduction="none")  # noqa: E731
    with pytest.raises(ValueError, match="loss_fn must return a scalar tensor"):
        lr_find(model, opt, per_sample, TensorBatches(*_data(), batch_size=32), verbose=False)
    with pytest.raises(ValueError, match="train_loader yielded no batches"):
        lr_find(model, opt, F.cross_entropy, [], verbose=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_cuda_path(amp) -> None:
    model = _model().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = _data(4096)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    r = lr_find(model, opt, F.cross_entropy, TensorBatches(x, y, batch_size=256, device="cuda"),
                amp=amp, verbose=False, num_iter=80)
    assert r.stop_reason in ("diverged", "completed", "non_finite") and len(r.lrs) > 20
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.cuda.memory_allocated() < 50 * 2**20
    assert lrsearch.RangeTestResult.from_dict(r.to_dict()) == r


def test_the_progress_bar_is_drawn_only_on_a_terminal_unless_asked(capsys, monkeypatch) -> None:
    model, opt = _trained("sgd")
    _find(model, opt, num_iter=20, verbose=None)  # stderr is a pipe here, as in a log file: no bar
    assert "lr_find" not in capsys.readouterr().err
    _find(model, opt, num_iter=20, verbose=True)  # asked for: drawn anyway
    assert "lr_find" in capsys.readouterr().err
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)  # a terminal: drawn by default
    _find(model, opt, num_iter=20, verbose=None)
    assert "lr_find" in capsys.readouterr().err


def test_clipping_as_training_does_moves_the_range_up_and_restores_the_model() -> None:
    """SGD on a model trained with gradient clipping: a test that clips the same way reaches LRs an
    unclipped one diverges at, so its range sits higher; the model comes back as it was."""
    x, y = _data(512)
    batches = TensorBatches(x, y * 10.0 - 5.0, batch_size=64, seed=0)  # large targets: large gradients

    def run(clip):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        before = copy.deepcopy(model.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RangeTestWarning)
            r = lr_find(model, opt, lambda out, t: F.mse_loss(out.squeeze(1), t), batches, start_lr=1e-5,
                        end_lr=100.0, num_iter=80, verbose=False, clip_grad_norm=clip)
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
        return r

    free, clipped = run(None), run(0.25)
    assert clipped.config["clip_grad_norm"] == 0.25 and free.config["clip_grad_norm"] is None
    assert clipped.lrs[-1] > 3 * free.lrs[-1]  # it diverged later (or not at all)
    assert clipped.search_range()[1] > free.search_range()[1]
