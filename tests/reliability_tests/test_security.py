"""Security: no eval/exec, no unpickling of files, torch.load only with weights_only=True."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("lrsearch/**/*.py"), *ROOT.glob("studies/*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_code_from_data(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if isinstance(node.func, ast.Name):  # the builtins; model.eval() is fine
                assert name not in ("eval", "exec", "compile", "__import__"), f"{path.name}:{node.lineno} {name}"
            if name == "load" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "torch":
                kw = {k.arg: k.value for k in node.keywords}
                assert isinstance(kw.get("weights_only"), ast.Constant) and kw["weights_only"].value is True, \
                    f"{path.name}:{node.lineno} torch.load without weights_only=True"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n and n.split(".")[0] in ("pickle", "dill", "cloudpickle", "marshal") for n in names), \
                f"{path.name}:{node.lineno} imports a pickler"
