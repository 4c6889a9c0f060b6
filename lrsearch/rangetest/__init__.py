"""The LR range test: the sweep (``lr_find``), its result and suggestion rules, the exact snapshot.

``RangeTestResult`` and the suggestion rules are numpy only; ``lr_find`` and ``RangeTestWarning``
need torch and are imported on first use, so ``import lrsearch`` stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

from lrsearch.rangetest._result import RangeTestResult


if TYPE_CHECKING:
    from lrsearch.rangetest._lr_find import RangeTestWarning
    from lrsearch.rangetest._lr_find import lr_find

_LAZY = {"lr_find": "lrsearch.rangetest._lr_find", "RangeTestWarning": "lrsearch.rangetest._lr_find"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lrsearch.rangetest' has no attribute {name!r}")


__all__ = ["RangeTestResult", "RangeTestWarning", "lr_find"]
