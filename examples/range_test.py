"""The LR range test alone: sweep the LR, read the suggestions and a range, draw the curve.

``lr_find`` leaves the model and optimizer exactly as they were (weights, optimizer state, RNGs).
Data: scikit-learn's bundled digits (offline). Run: ``python examples/range_test.py`` (``--tiny``).
"""

import argparse
import warnings

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

import lrsearch


def main(tiny: bool) -> None:
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    batches = lrsearch.TensorBatches(x, y, batch_size=64)

    with warnings.catch_warnings(record=True) as caught:  # a short sweep may be flagged (never_diverged, ...)
        warnings.simplefilter("always", lrsearch.RangeTestWarning)
        result = lrsearch.lr_find(model, opt, F.cross_entropy, batches, num_iter=40 if tiny else 100,
                                  verbose=not tiny)
    for w in caught:
        print("warning:", w.message)
    low, high = result.search_range()
    print(f"search range {low:.3g} .. {high:.3g}")
    for name, lr in result.suggestions().items():
        print(f"  {name:>9}: {lr:.3g}")
    result.plot().savefig("range_test.png")
    print("plot: range_test.png")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a short sweep")
    main(parser.parse_args().tiny)
