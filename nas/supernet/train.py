"""Sandwich training of a supernet, with in-place distillation, resumable epoch by epoch.

Every step takes one batch and four subnets (BigNAS's sandwich rule): the largest, trained on the
labels (the recipe's label smoothing), then the smallest and two uniformly sampled ones, each
trained towards the largest's softened predictions on the same images (KL divergence, in-place
distillation); the four gradients add up into one optimizer step. Each subnet sees the batch at
its own input side (`nas.recipe.proxy_side`), as its proxy trial would. Data, augmentation,
optimizer and learning-rate schedule are the recipe's, through nas.train.

After every epoch the folder gets `supernet.pt` (weights, optimizer, random state, history,
space and recipe; written whole or not at all) and `history.json`; a rerun with the same space,
recipe and epochs resumes after the last finished epoch and ends with the same weights as an
uninterrupted run (on the CPU; the seed fixes weights, subsets, batches and sampled subnets).
"""

from __future__ import annotations

import io
import json
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from nas.arch import Arch
from nas.device import resolve
from nas.errors import NasError
from nas.fileio import read_yaml
from nas.files import write_atomic, write_text_atomic
from nas.progress import bar as progress_bar
from nas.recipe import Recipe, make_recipe, proxy_arch, proxy_side, recipe_to_dict
from nas.space import Space, largest_arch, random_arch, smallest_arch, space_from_dict
from nas.supernet.build import Supernet, build_supernet
from nas.supernet.extract import extract
from nas.train import (_accuracy, _augment, _autocast, _lr_factor, _optimizer, _recalibrate_bn, _split,
                       _to_input)

CHECKPOINT = "supernet.pt"
HISTORY = "history.json"
RANDOM_SUBNETS = 2  # sampled subnets per step, besides the largest and the smallest
EpochReport = Callable[[int, dict], None]


@dataclass
class TrainedSupernet:
    """A supernet folder read back: the network (eval mode, CPU), the space and recipe it was
    trained with, the classes of its data set, the epochs asked for and finished, and one history
    row per finished epoch (loss, seconds, CPU seconds, validation accuracy of the largest and
    smallest subnets)."""

    supernet: Supernet
    space: Space
    recipe: Recipe
    num_classes: int
    epochs: int
    history: list[dict]

    @property
    def finished(self) -> int:
        return len(self.history)


def _setup(space_data: dict, space_path: str, recipe: Recipe, num_classes: int) -> tuple[Space, Supernet]:
    space = space_from_dict(space_data, space_path)
    torch.manual_seed(recipe.seed)
    return space, build_supernet(space, recipe, num_classes)


def _sandwich(space: Space, recipe: Recipe, num_classes: int, step: int) -> list[Arch]:
    """The proxy architectures of one step: largest, smallest and RANDOM_SUBNETS sampled ones
    (random.Random seeded by the recipe's seed and the step, so a resumed run draws the same)."""
    rng = random.Random(f"{recipe.seed}:{step}")
    archs = [largest_arch(space), smallest_arch(space)]
    archs += [random_arch(space, rng, f"random{i}") for i in range(RANDOM_SUBNETS)]
    return [proxy_arch(a, recipe, num_classes) for a in archs]


def _step_loss(net: Supernet, inputs: dict[int, torch.Tensor], y: torch.Tensor, archs: list[Arch],
               recipe: Recipe, device: torch.device) -> float:
    """Forward and backward of every subnet of one step (gradients accumulate); the sum of
    their losses. The first (largest) learns the labels, the others its soft predictions."""
    teacher, total = None, 0.0
    for arch in archs:
        with _autocast(recipe, device):
            logits = net(inputs[arch.resolution], arch)
            if teacher is None:
                loss = F.cross_entropy(logits, y, label_smoothing=recipe.label_smoothing)
                teacher = logits.detach().float().softmax(1)
            else:
                loss = F.kl_div(logits.float().log_softmax(1), teacher, reduction="batchmean")
        loss.backward()
        total += loss.item()
    return total


def _train_epoch(net: Supernet, opt: torch.optim.Optimizer, space: Space, recipe: Recipe, num_classes: int,
                 epoch: int, total_epochs: int, device: torch.device, bar: Any) -> float:
    """One pass over the training subset; the mean step loss (sum over the step's subnets)."""
    sides = sorted({proxy_side(replace(largest_arch(space), resolution=r), recipe) for r in space.resolution})
    data = {side: _split(recipe, side, device) for side in sides}
    any_data = data[sides[-1]]
    n = len(any_data.train_y)
    steps = max(1, n // recipe.batch_size)
    gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=gen).to(device)
    net.train()
    losses = []
    for s in range(steps):
        index = epoch * steps + s
        factor = _lr_factor(index, total_epochs * steps, round(recipe.warmup * steps), recipe.schedule)
        for g in opt.param_groups:
            g["lr"] = recipe.lr * factor
        idx = order[s * recipe.batch_size:(s + 1) * recipe.batch_size]
        archs = _sandwich(space, recipe, num_classes, index)
        inputs = {}
        for side in sorted({a.resolution for a in archs}):
            d = data[side]
            inputs[side] = _to_input(_augment(d.train_x[idx], recipe.augment, gen), d, recipe.channels_last)
        opt.zero_grad(set_to_none=True)
        loss = _step_loss(net, inputs, any_data.train_y[idx], archs, recipe, device)
        if not math.isfinite(loss):
            raise NasError(f"supernet training diverged: loss {loss} at epoch {epoch + 1}, step {s + 1} "
                           f"(lr {recipe.lr}); lower lr or add warmup")
        opt.step()
        losses.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
    return sum(losses) / len(losses)


def _checkpoint(net: Supernet, opt: torch.optim.Optimizer, space_data: dict, space_path: str,
                recipe: Recipe, num_classes: int, epochs: int, history: list[dict]) -> dict:
    return {"format": "nas-supernet-1", "space": space_data, "space_path": space_path,
            "recipe": recipe_to_dict(recipe), "num_classes": num_classes, "epochs": epochs,
            "history": history, "state_dict": net.state_dict(), "optimizer": opt.state_dict(),
            "torch_rng": torch.get_rng_state()}


def _save(folder: Path, data: dict) -> None:
    buffer = io.BytesIO()
    torch.save(data, buffer)
    write_atomic(folder / CHECKPOINT, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    write_text_atomic(folder / HISTORY, json.dumps(data["history"], indent=2) + "\n")


def _read(folder: Path) -> dict:
    path = folder / CHECKPOINT
    if not path.is_file():
        raise NasError(f"{folder}: no {CHECKPOINT}; train one with nas supernet train --out {folder}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: torch raises many kinds
        raise NasError(f"{path}: not a supernet checkpoint ({type(e).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != "nas-supernet-1":
        raise NasError(f"{path}: not a supernet checkpoint written by nas supernet train")
    return data


def load_supernet(folder: str | Path) -> TrainedSupernet:
    """Read the supernet folder `nas supernet train` wrote (after its last finished epoch);
    NasError naming the file when there is none or it is not one."""
    data = _read(Path(folder))
    recipe = make_recipe(**data["recipe"])
    with torch.random.fork_rng(devices=[]):  # building draws initial weights; leave the caller's stream be
        space, net = _setup(data["space"], data["space_path"], recipe, data["num_classes"])
    net.load_state_dict(data["state_dict"])
    return TrainedSupernet(net.eval(), space, recipe, data["num_classes"], data["epochs"], data["history"])


@torch.no_grad()
def _val_accuracy(net: Supernet, arch: Arch, recipe: Recipe, device: torch.device) -> float:
    """Validation accuracy of one subnet, extracted (the supernet's own statistics stay as they
    are) and its BatchNorm statistics re-estimated."""
    model = extract(net, arch).to(device)
    data = _split(recipe, arch.resolution, device)
    _recalibrate_bn(model, data, recipe)
    return _accuracy(model, data.val_x, data.val_y, data, recipe)


def train_supernet(space_path: str | Path, recipe: Recipe, out: str | Path, epochs: int | None = None,
                   progress: bool = False, report: EpochReport | None = None) -> TrainedSupernet:
    """Train the supernet of the space file `space_path` with `recipe` (`epochs` replacing its
    epochs) into folder `out`, resuming after the last epoch a previous run finished there.

    report(epoch_index, history_row) is called after each epoch's checkpoint is written. Returns
    the trained supernet. NasError when `out` holds a supernet of another space, recipe or epoch
    count, or when the recipe cannot recalibrate BatchNorm (bn_recalibrate 0)."""
    if epochs is not None:
        recipe = replace(recipe, epochs=epochs)
    if recipe.bn_recalibrate == 0:
        raise NasError("bn_recalibrate: 0 is not allowed for a supernet; its subnets need their BatchNorm "
                       "statistics re-estimated (e.g. 1000)")
    out, space_path = Path(out), str(space_path)
    space_data = read_yaml(space_path, "search-space file")
    device = resolve(recipe.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        num_classes = _split(recipe, recipe.image_size, device).num_classes
        space, net = _setup(space_data, space_path, recipe, num_classes)
        net.to(device)
        if recipe.channels_last:
            net.to(memory_format=torch.channels_last)
        opt = _optimizer(net, recipe)
        history: list[dict] = []
        if (out / CHECKPOINT).exists():
            history = _resume(out, net, opt, space_data, recipe)
        return _train(net, opt, space, space_data, space_path, recipe, num_classes, out, history, device,
                      progress, report)
    finally:
        torch.set_num_threads(threads)


def _resume(out: Path, net: Supernet, opt: torch.optim.Optimizer, space_data: dict, recipe: Recipe) -> list[dict]:
    data = _read(out)
    mine = {"space": space_data, "recipe": recipe_to_dict(recipe), "epochs": recipe.epochs}
    differ = [k for k, v in mine.items() if data[k] != v]
    if differ:
        raise NasError(f"{out}: holds a supernet trained with another {' and '.join(differ)}; pass another "
                       f"--out (or the same {', '.join(differ)}) to resume")
    net.load_state_dict(data["state_dict"])
    opt.load_state_dict(data["optimizer"])
    torch.set_rng_state(data["torch_rng"])
    return data["history"]


def _train(net: Supernet, opt: torch.optim.Optimizer, space: Space, space_data: dict, space_path: str,
           recipe: Recipe, num_classes: int, out: Path, history: list[dict], device: torch.device,
           progress: bool, report: EpochReport | None) -> TrainedSupernet:
    steps = max(1, len(_split(recipe, recipe.image_size, device).train_y) // recipe.batch_size)
    with progress_bar(total=(recipe.epochs - len(history)) * steps, desc="supernet", unit="step",
                      enabled=progress, leave=False) as bar:
        for epoch in range(len(history), recipe.epochs):
            start, cpu = time.perf_counter(), time.process_time()
            loss = _train_epoch(net, opt, space, recipe, num_classes, epoch, recipe.epochs, device, bar)
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
            rng = torch.get_rng_state()
            row = {"epoch": epoch + 1, "loss": round(loss, 6), "seconds": round(seconds, 3),
                   "cpu_seconds": round(cpu_seconds, 3),
                   "largest_val": _val_accuracy(net, net.largest_arch, recipe, device),
                   "smallest_val": _val_accuracy(
                       net, proxy_arch(smallest_arch(space), recipe, num_classes), recipe, device)}
            torch.set_rng_state(rng)  # recalibration runs dropout; training's random stream must not depend on it
            history.append(row)
            _save(out, _checkpoint(net, opt, space_data, space_path, recipe, num_classes, recipe.epochs, history))
            bar.set_description(f"supernet largest {row['largest_val']:.3f} smallest {row['smallest_val']:.3f}")
            if report is not None:
                report(epoch, row)
    return TrainedSupernet(net.eval().cpu(), space, recipe, num_classes, recipe.epochs, history)
