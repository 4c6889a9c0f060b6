"""The optimizer spec, layer groups and Novograd (parity with MONAI's algorithm)."""

from __future__ import annotations

import json

import pytest
import torch

from lrsearch import Schedule
from lrsearch.optim import OPTIMIZERS
from lrsearch.optim import Novograd
from lrsearch.optim import OptimizerSpec
from lrsearch.optim import param_groups


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))


def _monai_novograd_step(params, state, lr, betas, eps, wd, grad_averaging, amsgrad):  # noqa: ANN001
    """MONAI 1.6.1 ``Novograd.step`` transcribed (monai/optimizers/novograd.py), on clones."""
    beta1, beta2 = betas
    for p in params:
        grad = p.grad.clone()
        st = state.setdefault(id(p), {})
        if not st:
            st["exp_avg"] = torch.zeros_like(p)
            st["exp_avg_sq"] = torch.zeros([])
            st["max"] = torch.zeros([])
        norm = torch.sum(torch.pow(grad, 2))
        if st["exp_avg_sq"] == 0:
            st["exp_avg_sq"].copy_(norm)
        else:
            st["exp_avg_sq"].mul_(beta2).add_(norm, alpha=1 - beta2)
        if amsgrad:
            torch.max(st["max"], st["exp_avg_sq"], out=st["max"])
            denom = st["max"].sqrt().add_(eps)
        else:
            denom = st["exp_avg_sq"].sqrt().add_(eps)
        grad.div_(denom)
        if wd != 0:
            grad.add_(p.data, alpha=wd)
        if grad_averaging:
            grad.mul_(1 - beta1)
        st["exp_avg"].mul_(beta1).add_(grad)
        p.data.add_(st["exp_avg"], alpha=-lr)


@pytest.mark.parametrize("options", [dict(), dict(weight_decay=0.01, grad_averaging=True),
                                     dict(amsgrad=True, betas=(0.8, 0.9))])
def test_novograd_matches_monai_step_for_step(options: dict) -> None:
    ours, ref = _net(), _net()
    opt = Novograd(ours.parameters(), lr=0.02, **options)
    state: dict = {}
    x, y = torch.randn(32, 5, generator=torch.Generator().manual_seed(1)), torch.arange(32) % 3
    for step in range(25):
        for net in (ours, ref):
            net.zero_grad()
            torch.nn.functional.cross_entropy(net(x * (1 + step / 10)), y).backward()
        grads = [p.grad.clone() for p in ours.parameters()]
        opt.step()
        _monai_novograd_step(list(ref.parameters()), state, 0.02, options.get("betas", (0.9, 0.98)), 1e-8,
                             options.get("weight_decay", 0.0), options.get("grad_averaging", False),
                             options.get("amsgrad", False))
        for g, p in zip(grads, ours.parameters()):
            assert torch.equal(g, p.grad)  # MONAI divides p.grad in place; ours leaves it alone
    for a, b in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert not torch.equal(next(ours.parameters()), next(_net().parameters()))  # it trained


def test_novograd_matches_monai_itself_when_installed() -> None:
    monai_opt = pytest.importorskip("monai.optimizers")
    ours, ref = _net(), _net()
    a = Novograd(ours.parameters(), lr=0.01, weight_decay=1e-3)
    b = monai_opt.Novograd(ref.parameters(), lr=0.01, weight_decay=1e-3)
    x, y = torch.randn(16, 5), torch.arange(16) % 3
    for _ in range(10):
        for net, opt in ((ours, a), (ref, b)):
            net.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(lr=-1.0), "lr must be >= 0"), (dict(betas=(0.9, 1.0)), r"betas\[1\] must be in \[0, 1\)"),
    (dict(betas=0.9), "betas must be a pair"), (dict(eps=float("nan")), "eps must be finite"),
])
def test_novograd_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Novograd(_net().parameters(), **kwargs)


def test_param_groups_first_match_others_and_ratios() -> None:
    net = _net()
    groups = param_groups(net, {"head": "2.*", "biases": ["*.bias"]}, {"head": 0.1, "others": 2.0}, lr=0.01,
                          weight_decay=0.5)
    by_name = {g["name"]: g for g in groups}
    assert [g["name"] for g in groups] == ["head", "biases", "others"]
    assert [p.shape for p in by_name["head"]["params"]] == [torch.Size([3, 8]), torch.Size([3])]
    assert [p.shape for p in by_name["biases"]["params"]] == [torch.Size([8])]  # 2.bias went to head first
    assert by_name["head"]["lr"] == pytest.approx(1e-3) and by_name["others"]["lr"] == pytest.approx(0.02)
    assert by_name["biases"]["lr"] == pytest.approx(0.01) and all(g["weight_decay"] == 0.5 for g in groups)
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


@pytest.mark.parametrize(("groups", "ratios", "match"), [
    ({"head": "9.*"}, None, r"groups\['head'\] matches no trainable parameter.*'0.weight'"),
    ({"head": []}, None, r"groups\['head'\] must be a pattern or a non-empty list"),
    ({"others": "2.*"}, None, "groups must have non-empty string names other than 'others'"),
    ({"head": "2.*"}, {"tail": 0.1}, "ratios has an unknown group 'tail'"),
    ({"head": "2.*"}, {"head": 0.0}, r"ratios\['head'\] must be in \(0, 1000\] .* but got 0.0"),
    ("2.*", None, "groups must be a dict"),
])
def test_param_groups_errors(groups: object, ratios: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        param_groups(_net(), groups, ratios)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_spec_builds_each_family_and_round_trips(name: str) -> None:
    spec = OptimizerSpec(name, weight_decay=1e-4, ratios={"head": 0.5})
    assert OptimizerSpec.from_dict(json.loads(spec.to_json())) == spec and hash(spec) == hash(OptimizerSpec.from_dict(spec.to_dict()))
    opt = spec.build(_net(), lr=0.1, groups={"head": "2.*"})
    assert isinstance(opt, OPTIMIZERS[name].cls)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.05, 0.1])
    assert all(g["weight_decay"] == 1e-4 for g in opt.param_groups)
    if name in ("sgd", "nesterov"):
        assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] == (name == "nesterov")


def test_spec_default_weight_decay_is_the_optimizers() -> None:
    assert OptimizerSpec("adamw").build(_net()).defaults["weight_decay"] == 0.01
    assert OptimizerSpec("sgd").build(_net()).defaults["weight_decay"] == 0.0


def test_group_ratios_hold_under_every_schedule_step() -> None:
    opt = OptimizerSpec("sgd", ratios={"head": 0.1}).build(_net(), lr=0.3, groups={"head": "2.*"})
    sched = Schedule("onecycle", lr=0.8).build(opt, 50)
    for _ in range(50):
        head, rest = (g["lr"] for g in opt.param_groups)
        assert head == pytest.approx(0.1 * rest, rel=1e-12)
        opt.step()
        sched.step()
    assert rest < 0.8 / 25  # the schedule moved the LRs (one-cycle ends far below its peak)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(name="lamb"), "name must be one of 'adamw', 'adam', 'sgd', 'nesterov', 'novograd' but got 'lamb'"),
    (dict(weight_decay=-1e-3), r"weight_decay must be in \[0, 10\] but got -0.001"),
    (dict(ratios={"head": -1}), r"ratios\['head'\] must be in \(0, 1000\]"),
    (dict(ratios=[0.1]), "ratios must be a dict"),
])
def test_spec_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        OptimizerSpec(**kwargs)


def test_spec_build_refuses_ratio_of_an_undefined_group_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match="ratios names the group 'head' but groups defines none"):
        OptimizerSpec("adamw", ratios={"head": 0.1}).build(_net())
    with pytest.raises(ValueError, match="unknown key 'lr'"):
        OptimizerSpec.from_dict({"name": "adamw", "lr": 1.0})
