"""Scoring subnets of a trained supernet: what a search can rank by.

`SubnetEvaluator(folder).accuracy(arch)`: the subnet's standalone network (`nas.supernet.extract`,
what `build(arch)` makes), its BatchNorm statistics re-estimated on training images, scored on
the recipe's validation split.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nas.arch import Arch
from nas.builder import MobileNet
from nas.device import resolve
from nas.recipe import proxy_arch, proxy_side
from nas.supernet.extract import extract
from nas.supernet.train import load_supernet
from nas.train import _accuracy, _dataset, _recalibrate_bn, _split


class SubnetEvaluator:
    """Scores architectures on a trained supernet (a folder `nas supernet train` wrote).

        evaluator = SubnetEvaluator("runs/supernet")
        evaluator.accuracy(arch)   # validation accuracy 0..1, seconds on a CPU

    device: where subnets are scored (default: the training recipe's device)."""

    def __init__(self, folder: str | Path, device: str | None = None):
        self.trained = load_supernet(folder)
        self.recipe = self.trained.recipe
        self.device = resolve(device or self.recipe.device)

    def subnet(self, arch: Arch) -> MobileNet:
        """The standalone network of `arch` (adapted to the recipe as a proxy trial adapts it) with
        the supernet's weights, on the CPU, before BatchNorm recalibration. NasError when `arch`
        is not a subnet of the supernet."""
        return extract(self.trained.supernet, proxy_arch(arch, self.recipe, self.trained.num_classes))

    def accuracy(self, arch: Arch, test: bool = False) -> float:
        """Validation accuracy (0..1) of subnet `arch`: extracted, BatchNorm statistics
        re-estimated on the recipe's first `bn_recalibrate` training images at the subnet's
        input side (`nas.recipe.proxy_side`), scored on the recipe's validation split, or with
        `test` on the data set's test split (final evaluation, as `train_arch(...,
        evaluate_test=True)` scores; never for a search)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(self.recipe.threads)
        try:
            model = self.subnet(arch).to(self.device)
            if self.recipe.channels_last:
                model = model.to(memory_format=torch.channels_last)
            side = proxy_side(arch, self.recipe)
            data = _split(self.recipe, side, self.device)
            _recalibrate_bn(model, data, self.recipe)
            x, y = data.val_x, data.val_y
            if test:
                ds = _dataset(self.recipe, side)
                x, y = torch.from_numpy(ds.test_x).to(self.device), torch.from_numpy(ds.test_y).to(self.device)
            return _accuracy(model, x, y, data, self.recipe)
        finally:
            torch.set_num_threads(threads)
