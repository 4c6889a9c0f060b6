"""The documentation's quoted defaults are the code's.

Pages write defaults as ``{{ name }}`` tokens that ``docs/hooks/defaults.py`` fills in from the code
when mkdocs builds the site (CI builds it with ``--strict``); here every page is rendered through
the same hook, so a renamed or removed constant fails ``make test`` too, and the families table
(written out by hand) is compared with each family's defaults in the schedule library.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
from fractions import Fraction
from pathlib import Path

import pytest

import lrsearch.search

from lrsearch import lr_find
from lrsearch import schedules


ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
_spec = importlib.util.spec_from_file_location("docs_defaults_hook", DOCS / "hooks" / "defaults.py")
hook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hook)  # type: ignore[union-attr]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_every_default_token_resolves(page: Path) -> None:
    rendered = hook.render(page.read_text())
    assert re.search(r"\{\{\s*[A-Za-z_]", rendered) is None  # JSON's "}}" in code is fine


def test_tokens_render_the_codes_values() -> None:
    from lrsearch.cli import build_parser
    from lrsearch.search import _fidelity

    assert hook.render("{{ lrsearch.search.DEFAULT_BUDGET }}") == f"{_fidelity.DEFAULT_BUDGET:g}"
    fractions = [str(Fraction(f).limit_denominator(1000)) for f in _fidelity.Rungs().fractions]
    assert hook.render("{{ lrsearch.search.Rungs.fractions | fractions }}") == f"({', '.join(fractions)})"
    assert hook.render("{{ lrsearch.search._fidelity.SEED_SHARE | pct }}") == f"{100 * _fidelity.SEED_SHARE:g}%"
    assert hook.render("{{ cli.demo.budget }}") == f"{build_parser().parse_args(['demo']).budget:g}"
    diverge_th = inspect.signature(lr_find).parameters["diverge_th"].default
    assert hook.render("{{ lrsearch.rangetest._lr_find.lr_find.diverge_th }}") == f"{diverge_th:g}"
    # the seeds a budget buys, as optimize counts them: one per family of the default space at most
    share = max(1, int(_fidelity.SEED_SHARE * 20 / _fidelity.Rungs().fractions[0] + 1e-9))
    assert hook.seeds(20) == min(share, len(lrsearch.search.DEFAULT_FAMILIES))
    with pytest.raises(KeyError):
        hook.render("{{ lrsearch.search.NO_SUCH_DEFAULT }}")


def _value(text: str):
    text = text.strip().strip("`")
    if text in ("True", "False"):
        return text == "True"
    if text.startswith("["):
        return tuple(float(v) for v in text.strip("[]").split(","))
    try:
        return float(text)
    except ValueError:
        return text


def test_the_families_table_quotes_each_familys_defaults() -> None:
    page = (DOCS / "schedules.md").read_text()
    rows = re.findall(r"^\| `(\w+)` \| (.+?) \| .*\|$", page, flags=re.M)
    assert len(rows) >= 14
    checked = 0
    for family, params in rows:
        defaults = schedules.get_family(family).defaults
        for name, quoted in re.findall(r"`(\w+)` \(([^)]*\]?)\)", params):
            assert name in defaults, f"{family}: the page names {name!r}, which the family does not have"
            first = quoted.split(", ")[0] if not quoted.startswith("[") else quoted
            expected = defaults[name]
            got = _value(first)
            if isinstance(expected, (tuple, list)):
                expected = tuple(float(v) for v in expected)
            assert got == expected or (isinstance(got, float) and got == float(expected)), \
                f"{family}.{name}: the page says {quoted!r}, the code's default is {defaults[name]!r}"
            checked += 1
    assert checked >= 30


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    nav = set(re.findall(r"^\s+- (?:[^:\n]+: )?([\w/.-]+\.md)\s*$", config, flags=re.M))
    pages = {str(p.relative_to(DOCS)) for p in PAGES}
    assert nav == pages
    assert "architecture.md" in nav  # the lead's page keeps its slot


def test_the_layout_tables_paths_exist() -> None:
    table = (DOCS / "development.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    checked = 0
    for row in (r for r in table.splitlines() if r.startswith("| `")):
        folder = ROOT
        for path in re.findall(r"`([\w/.]+)`", row.split(" | ")[0]):
            if "/" in path:
                target = ROOT / path
                folder = target if path.endswith("/") else target.parent
            else:  # a file of the row's last folder
                target = folder / path
            assert target.exists(), f"docs/development.md names {path}, which does not exist"
            checked += 1
    assert checked >= 15


def test_the_parity_table_is_what_the_parity_code_measures() -> None:
    from tests.training_tests.test_torch_parity import parity_table

    page = (DOCS / "parity.md").read_text()
    quoted = dict(re.findall(r"^\| ((?:[A-Z]\w+)[^|]*?) \| (\d\.\de[+-]\d+) \|$", page, flags=re.M))
    measured = dict(parity_table())
    assert set(quoted) == set(measured)
    for name, error in measured.items():  # the same within a factor 2 (last-digit rounding of other builds)
        q = float(quoted[name])
        assert (q < 1e-15 and error < 1e-15) or 0.5 <= q / max(error, 1e-300) <= 2, (name, q, error)
