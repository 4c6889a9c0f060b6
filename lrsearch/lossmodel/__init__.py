"""A loss model over schedules: pure math over (schedule, step, run length, observed curves).

``LossModel().fit(curves)`` fits a loss law (Tissue et al. 2024's forward and annealing areas, or
Luo et al. 2025's multi-power law, each with a peak-LR term) to observed runs; it then predicts any
schedule's loss at any step of a run of any length, with an uncertainty, and the peak LR a
schedule wants at a given length. numpy only: no torch, no Optuna.
"""

from lrsearch.lossmodel._laws import LAWS
from lrsearch.lossmodel._model import Curve
from lrsearch.lossmodel._model import LossModel
from lrsearch.lossmodel._model import Prediction
from lrsearch.lossmodel._model import predictable


__all__ = ["LAWS", "Curve", "LossModel", "Prediction", "predictable"]
