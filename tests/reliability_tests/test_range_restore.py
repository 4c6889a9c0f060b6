"""lr_find restores what it touched beyond the model: parameters the optimizer owns elsewhere (a
loss's temperature), a loss module's parameters and buffers, the caller's TensorBatches position,
and torch's global RNG -- also when the test is interrupted half-way."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F

from lrsearch import RangeTestWarning
from lrsearch import TensorBatches
from lrsearch import lr_find
from tests.rangetest_tests.test_lr_find import _assert_same
from tests.rangetest_tests.test_lr_find import _data
from tests.rangetest_tests.test_lr_find import _model
from tests.rangetest_tests.test_lr_find import _state


class TemperedLoss(torch.nn.Module):
    """Cross-entropy of ``out / temperature`` with a running mean of the loss (a buffer moved in
    train mode) and a parameter the optimizer does not own (it only gathers a gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.temperature = torch.nn.Parameter(torch.tensor(1.5))
        self.bias = torch.nn.Parameter(torch.zeros(2))  # not given to the optimizer
        self.register_buffer("running", torch.zeros(()))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(out / self.temperature + self.bias, target)
        if self.training:
            with torch.no_grad():
                self.running.mul_(0.9).add_(0.1 * loss)
                self.calls += 1
        return loss


def _setup(layout: str):
    """A model, a TemperedLoss and an Adam that steps the temperature too, all with state."""
    model, criterion = _model(), TemperedLoss()
    if layout == "extra_group":
        opt = torch.optim.Adam([{"params": model.parameters()},
                                {"params": [criterion.temperature], "lr": 1e-2}], lr=1e-3)
    else:  # the temperature in the model's own group
        opt = torch.optim.Adam([*model.parameters(), criterion.temperature], lr=1e-3)
    x, y = _data()
    for _ in range(3):
        opt.zero_grad()
        criterion(model(x[:32]), y[:32]).backward()
        opt.step()
    return model, criterion, opt


def _loss_state(criterion: torch.nn.Module):
    tensors = {**dict(criterion.named_parameters()), **dict(criterion.named_buffers())}
    return ({k: v.detach().clone() for k, v in tensors.items()},
            {k: None if p.grad is None else p.grad.clone() for k, p in criterion.named_parameters()},
            {k: p.requires_grad for k, p in criterion.named_parameters()},
            criterion.training)


def _assert_loss_same(a, b) -> None:
    (va, ga, ra, ta), (vb, gb, rb, tb) = a, b
    assert va.keys() == vb.keys() and all(torch.equal(va[k], vb[k]) for k in va), "loss tensors changed"
    assert all((ga[k] is None) == (gb[k] is None) for k in ga), "loss grads appeared or vanished"
    assert all(ga[k] is None or torch.equal(ga[k], gb[k]) for k in ga), "loss grads changed"
    assert ra == rb and ta == tb


def _run(model, opt, loss_fn, loader, **kw):
    kw.setdefault("verbose", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RangeTestWarning)
        return lr_find(model, opt, loss_fn, loader, **kw)


@pytest.mark.parametrize("layout", ["extra_group", "same_group"])
@pytest.mark.parametrize("store", ["cpu", "disk"])
def test_parameters_the_optimizer_owns_outside_the_model_are_restored(layout: str, store: str) -> None:
    model, criterion, opt = _setup(layout)
    before, loss_before = _state(model, opt), _loss_state(criterion)
    seen = []
    criterion.register_forward_pre_hook(lambda m, args: seen.append(m.temperature.detach().clone()))
    r = _run(model, opt, criterion, TensorBatches(*_data(), batch_size=32), snapshot=store, num_iter=30, end_lr=1.0)
    assert r.iterations > 5 and not torch.equal(seen[0], seen[-1])  # the sweep did move it
    _assert_same(before, _state(model, opt))
    _assert_loss_same(loss_before, _loss_state(criterion))


def test_a_loss_module_changed_while_running_is_restored() -> None:
    # a loss whose parameter nobody steps still gathers gradients; its buffers move in train mode;
    # and a loss_fn may freeze a parameter (requires_grad) on the way
    model, criterion, opt = _setup("extra_group")
    criterion.temperature.grad = None
    before, loss_before = _state(model, opt), _loss_state(criterion)
    calls = []

    def freeze_on_the_third_call(module, args):
        calls.append(1)
        if len(calls) == 3:
            module.temperature.requires_grad_(False)

    criterion.register_forward_pre_hook(freeze_on_the_third_call)
    _run(model, opt, criterion, TensorBatches(*_data(), batch_size=32), num_iter=10)
    assert len(calls) == 10
    _assert_same(before, _state(model, opt))
    _assert_loss_same(loss_before, _loss_state(criterion))


def _batches(tb: TensorBatches, passes: int) -> list[torch.Tensor]:
    return [b[0] for _ in range(passes) for b in tb]


@pytest.mark.parametrize("consumed", [0, 1])
def test_the_callers_tensor_batches_continue_as_if_lr_find_never_ran(consumed: int) -> None:
    x, y = _data(96)
    mine, twin = TensorBatches(x, y, batch_size=32, seed=3), TensorBatches(x, y, batch_size=32, seed=3)
    val, val_twin = TensorBatches(x, y, batch_size=48, seed=5), TensorBatches(x, y, batch_size=48, seed=5)
    _batches(mine, consumed)
    _batches(twin, consumed)
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    _run(model, opt, F.cross_entropy, mine, val_loader=val, num_iter=10)  # 3+ passes over each
    _run(model, opt, F.cross_entropy, mine, val_loader=val, probe_batches=3, num_iter=4)
    assert mine.state_dict() == twin.state_dict() and val.state_dict() == val_twin.state_dict()
    assert all(torch.equal(a, b) for a, b in zip(_batches(mine, 3), _batches(twin, 3), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(_batches(val, 2), _batches(val_twin, 2), strict=True))


def test_tensor_batches_state_dict_round_trip() -> None:
    x, y = _data(50)
    tb = TensorBatches(x, y, batch_size=16, seed=7)
    _batches(tb, 2)
    state = tb.state_dict()
    assert state == {"seed": 7, "passes": 2}
    expected = _batches(tb, 2)
    other = TensorBatches(x, y, batch_size=16)  # another seed, loaded from the checkpoint
    other.load_state_dict(copy.deepcopy(state))
    assert all(torch.equal(a, b) for a, b in zip(_batches(other, 2), expected, strict=True))
    tb.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(_batches(tb, 2), expected, strict=True))


@pytest.mark.parametrize(("state", "message"), [
    ([2], "state_dict must be a mapping"),
    ({"passes": 2}, "state_dict must have the keys"),
    ({"seed": 0, "passes": -1}, r"state_dict\['passes'\] must be >= 0 but got -1"),
    ({"seed": 1.5, "passes": 0}, r"state_dict\['seed'\] must be an integer but got 1.5"),
])
def test_tensor_batches_load_state_dict_rejects_bad_states(state, message: str) -> None:
    tb = TensorBatches(*_data(10), batch_size=4)
    with pytest.raises(ValueError, match=message):
        tb.load_state_dict(state)
    assert tb.state_dict() == {"seed": 0, "passes": 0}


def test_global_rng_consumed_by_dropout_and_a_shuffling_loader_is_restored() -> None:
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Dropout(0.3), torch.nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(96)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    state = torch.get_rng_state()
    expected = [b[0] for b in loader]  # the next epoch without lr_find
    torch.set_rng_state(state)
    moved = []

    def loss_fn(out, target):
        moved.append(not torch.equal(torch.get_rng_state(), state))
        return F.cross_entropy(out, target)

    _run(model, opt, loss_fn, loader, num_iter=8)
    assert any(moved)  # the test consumed the global RNG ...
    assert torch.equal(torch.get_rng_state(), state)  # ... and gave it back
    assert all(torch.equal(a, b[0]) for a, b in zip(expected, loader, strict=True))  # same next epoch


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("at", [1, 9])
def test_everything_is_restored_when_interrupted(error: type[BaseException], at: int) -> None:
    model, criterion, opt = _setup("extra_group")
    model.insert(2, torch.nn.Dropout(0.2))
    x, y = _data(96)
    mine, twin = TensorBatches(x, y, batch_size=32, seed=1), TensorBatches(x, y, batch_size=32, seed=1)
    before, loss_before, rng = _state(model, opt), _loss_state(criterion), torch.get_rng_state()
    calls = []

    def raise_on_call_at(module, args):
        calls.append(1)
        if len(calls) == at:
            raise error("interrupted")

    criterion.register_forward_pre_hook(raise_on_call_at)
    with pytest.raises(error):
        _run(model, opt, criterion, mine, num_iter=20)
    assert len(calls) == at
    _assert_same(before, _state(model, opt))
    _assert_loss_same(loss_before, _loss_state(criterion))
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(a, b) for a, b in zip(_batches(mine, 2), _batches(twin, 2), strict=True))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rng_and_outside_parameters_are_restored() -> None:
    model, criterion, opt = _setup("extra_group")
    model.insert(2, torch.nn.Dropout(0.2))
    model.cuda(), criterion.cuda()
    opt.load_state_dict(opt.state_dict())  # moves the state next to the parameters
    x, y = _data(512)
    before, loss_before = _state(model, opt), _loss_state(criterion)
    cuda_rng = torch.cuda.get_rng_state_all()
    _run(model, opt, criterion, TensorBatches(x, y, batch_size=64, device="cuda"), num_iter=20)
    _assert_same(before, _state(model, opt))
    _assert_loss_same(loss_before, _loss_state(criterion))
    assert all(torch.equal(a, b) for a, b in zip(cuda_rng, torch.cuda.get_rng_state_all(), strict=True))
