"""A weight-sharing evaluator (Once-for-All / BigNAS style): one supernet holding every
architecture of a search space, trained once, from which any subnet is scored in seconds.

    from nas.supernet import SubnetEvaluator, train_supernet
    train_supernet("search_spaces/mobilenet_v3.yaml", load_recipe("experiments/supernet/recipe.yaml"),
                   "runs/supernet")
    SubnetEvaluator("runs/supernet").accuracy(arch)   # validation accuracy, 0..1

Modules: `elastic` (layers that run at any smaller size), `plan` (where a subnet sits on the
supernet), `build` (the supernet of a space), `train` (sandwich training, resumable), `extract`
(a subnet's weights in the network `nas.builder.build` makes), `subnet` (SubnetEvaluator).
"""

from nas.supernet.build import Supernet, build_supernet
from nas.supernet.extract import extract
from nas.supernet.subnet import SubnetEvaluator
from nas.supernet.train import TrainedSupernet, load_supernet, train_supernet

__all__ = ["Supernet", "build_supernet", "extract", "SubnetEvaluator", "TrainedSupernet", "load_supernet",
           "train_supernet"]
