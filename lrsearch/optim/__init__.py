"""Optimizers as data: ``OptimizerSpec`` (a family, weight decay, layer-group LR ratios), ``param_groups``
(named groups by parameter-name patterns) and ``Novograd``. L1: imports torch."""

from lrsearch.optim._groups import MAX_RATIO
from lrsearch.optim._groups import OTHERS
from lrsearch.optim._groups import check_groups
from lrsearch.optim._groups import param_groups
from lrsearch.optim._novograd import Novograd
from lrsearch.optim._spec import MAX_WEIGHT_DECAY
from lrsearch.optim._spec import OPTIMIZERS
from lrsearch.optim._spec import OptimizerSpec


__all__ = ["OPTIMIZERS", "Novograd", "OptimizerSpec", "param_groups"]
