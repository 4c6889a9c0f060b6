"""The reference training loop (no Optuna): ``Task``, ``train``, the torch scheduler adapter
``ScheduleLR``, batches, the averaging tail's model and the CPU thread rule."""

from lrsearch.training._averaging import Averager
from lrsearch.training._data import TensorBatches
from lrsearch.training._task import Task
from lrsearch.training._loop import TrainResult
from lrsearch.training._loop import train
from lrsearch.training._scheduler import ScheduleLR
# for the other rooms (rangetest, population, integrations), not the public API
from lrsearch.training._data import cycle
from lrsearch.training._data import eval_mean
from lrsearch.training._data import length_of
from lrsearch.training._data import shuffle_order
from lrsearch.training._data import to_device
from lrsearch.training._data import unpack
from lrsearch.training._task import eval_steps
from lrsearch.training._loop import new_run
from lrsearch.training._task import tensor_pair
from lrsearch.training._scheduler import scales_of
from lrsearch.training._threads import training_threads


__all__ = ["Averager", "ScheduleLR", "Task", "TensorBatches", "TrainResult", "train"]
