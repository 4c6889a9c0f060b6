"""Many trials at once: K runs of one ``Task`` trained together in one batched computation.

``train_population(task, schedules, seeds)`` trains member ``i`` as ``train(task, schedules[i],
seed=seeds[i])`` would, with the members' parameters stacked and run through ``torch.func.vmap``;
``lrsearch.optimize(task=..., population=K)`` runs a search's trials that way.
"""

from lrsearch.population._members import MemberResult
from lrsearch.population._members import PopulationWarning
from lrsearch.population._optim import FlatOptimizer
from lrsearch.population._optim import NotStackable
from lrsearch.population._runner import check_population
from lrsearch.population._runner import population_plan
from lrsearch.population._runner import train_population
from lrsearch.population._stack import MAX_POPULATION


__all__ = ["MAX_POPULATION", "FlatOptimizer", "MemberResult", "NotStackable", "PopulationWarning", "population_plan",
           "train_population"]
