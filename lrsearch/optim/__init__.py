"""Optimizers as data: ``OptimizerSpec`` (a family, weight decay, layer-group LR ratios), ``param_groups``
(named groups by parameter-name patterns), ``Novograd``, and ``ScheduleFree`` / ``schedule_free`` (the
Schedule-Free form of AdamW, Adam and SGD, for the ``schedule_free`` family). L1: imports torch."""

from lrsearch.optim._groups import MAX_RATIO
from lrsearch.optim._groups import OTHERS
from lrsearch.optim._groups import check_groups
from lrsearch.optim._groups import param_groups
from lrsearch.optim._novograd import Novograd
from lrsearch.optim._schedulefree import ScheduleFree
from lrsearch.optim._schedulefree import schedule_free
from lrsearch.optim._spec import MAX_WEIGHT_DECAY
from lrsearch.optim._spec import OPTIMIZERS
from lrsearch.optim._spec import OptimizerSpec


__all__ = ["OPTIMIZERS", "Novograd", "OptimizerSpec", "ScheduleFree", "param_groups", "schedule_free"]
