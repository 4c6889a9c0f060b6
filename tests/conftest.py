from __future__ import annotations

import os
import random

import numpy as np
import pytest


# One CPU thread for torch here and in every subprocess a test starts: the suite runs next to other
# work on shared 2-core machines, where torch's thread-per-core default oversubscribes the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("LRSEARCH_THREADS", "1")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
