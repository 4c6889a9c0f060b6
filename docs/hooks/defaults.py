"""mkdocs hook: every default a page quotes is read from the code when the site is built.

A page writes ``{{ lrsearch.search.DEFAULT_BUDGET }}`` (a module attribute),
``{{ lrsearch.rangetest._lr_find.lr_find.diverge_th }}`` (a parameter's default) or
``{{ lrsearch.search.Rungs.fractions | fractions }}`` (with a format), and the built page shows the
value. An unknown name stops the build. ``tests/test_docs.py`` renders every page through
``render`` too, so ``make test`` catches a renamed constant without mkdocs installed.
"""

from __future__ import annotations

import importlib
import inspect
import re
from fractions import Fraction
from typing import Any


TOKEN = re.compile(r"\{\{\s*([A-Za-z_][\w.]*(?:\(\s*[\w.]+\s*\))?)\s*(?:\|\s*(\w+)\s*)?\}\}")


def _fraction(x: float) -> str:
    f = Fraction(x).limit_denominator(1000)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def seeds(budget: float) -> int:
    """How many range-test seeds ``optimize(budget=B, seed_from=...)`` enqueues with the default rungs
    and the default space (one per family at most)."""
    from lrsearch.search import DEFAULT_FAMILIES
    from lrsearch.search._fidelity import SEED_SHARE
    from lrsearch.search._fidelity import Rungs
    return min(len(DEFAULT_FAMILIES), max(1, int(SEED_SHARE * budget / Rungs().fractions[0] + 1e-9)))


FORMATS = {
    "pct": lambda v: f"{100 * v:g}%",
    "fraction": _fraction,
    "fractions": lambda v: "(" + ", ".join(_fraction(x) for x in v) + ")",
    "g": lambda v: f"{v:g}",
    "repr": repr,
    "names": lambda v: ", ".join(f"`{x}`" for x in v),
}


def cli_default(command: str, dest: str) -> Any:
    """The default of ``lrsearch COMMAND --DEST``, from the CLI's own parser."""
    import argparse

    from lrsearch.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[command]._actions:
        if action.dest == dest:
            return action.default
    raise KeyError(f"lrsearch {command} has no option {dest!r}")


def resolve(name: str) -> Any:
    """The value ``name`` stands for: a module attribute, a class attribute, a parameter default,
    ``cli.COMMAND.OPTION`` (the CLI's default) or ``seeds(B)``."""
    if name.startswith("cli."):
        _, command, dest = name.split(".", 2)
        return cli_default(command, dest)
    call = re.fullmatch(r"seeds\(\s*([\w.]+)\s*\)", name)
    if call:
        arg = call.group(1)
        return seeds(float(arg) if re.fullmatch(r"[\d.]+", arg) else resolve(arg))
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for i, attr in enumerate(parts[cut:], start=cut):
            if attr.isdigit() and isinstance(obj, (tuple, list)):
                obj = obj[int(attr)]
            elif hasattr(obj, attr):
                obj = getattr(obj, attr)
            elif callable(obj) and i == len(parts) - 1:
                param = inspect.signature(obj).parameters.get(attr)
                if param is None or param.default is inspect.Parameter.empty:
                    raise KeyError(f"{name}: {attr!r} is not a parameter with a default")
                return param.default
            else:
                raise KeyError(f"{name}: no attribute {attr!r}")
        return obj
    raise KeyError(f"{name}: no such module")


def render(markdown: str) -> str:
    """``markdown`` with every ``{{ name | format }}`` replaced by the code's value."""
    def one(m: re.Match[str]) -> str:
        value = resolve(m.group(1))
        fmt = m.group(2)
        if fmt is not None and fmt not in FORMATS:
            raise KeyError(f"unknown format {fmt!r} in {m.group(0)}")
        return FORMATS[fmt](value) if fmt else (f"{value:g}" if isinstance(value, float) else str(value))
    return TOKEN.sub(one, markdown)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return render(markdown)
