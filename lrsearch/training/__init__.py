"""The reference training loop (no Optuna): ``Task``, ``train``, the torch scheduler adapter
``ScheduleLR``, batches, the averaging tail's model and the CPU thread rule."""

from lrsearch.training._averaging import Averager
from lrsearch.training._data import TensorBatches
from lrsearch.training._loop import Task
from lrsearch.training._loop import TrainResult
from lrsearch.training._loop import train
from lrsearch.training._scheduler import ScheduleLR


__all__ = ["Averager", "ScheduleLR", "Task", "TensorBatches", "TrainResult", "train"]
