"""Proxy training: the trial function every search engine calls.

`train_arch(arch, recipe, report)` adapts the architecture to the recipe's small images
(`nas.recipe.proxy_arch`), trains it on a seeded subset of the training images and scores it on a
validation split carved from the training set after every epoch, calling `report(epoch, accuracy)`
so a pruner can stop it. The test set is touched only with `evaluate_test=True`.

The same recipe and seed give the same accuracy: weights come from `torch.manual_seed(seed)`,
the subset, batch order and augmentation from seeded generators, and a trial runs on
`recipe.threads` intra-op threads. A loss that turns NaN/inf or an allocation that fails raises
`TrainingFailed`, which a search records as a failed trial.

A trial trains on `recipe.device` (nas.device: auto takes CUDA, then MPS, then the CPU). The
images live on that device as uint8 and are augmented and normalised there, so no batch crosses
from the host; only the few random numbers of each batch (order, crop offsets, flips) are drawn
on the CPU, from the same seeded generator whatever the device, and the trained model is handed
back on the CPU. `precision: bf16` runs forward and loss under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nas.arch import Arch
from nas.builder import InvertedResidual, build
from nas.data import Dataset, load_dataset, train_val_split
from nas.device import describe, resolve
from nas.errors import NasError
from nas.progress import bar as progress_bar
from nas.recipe import Recipe, proxy_arch, proxy_side

Report = Callable[[int, float], None]
CROP_PADDING = 4  # pixels of zero padding before the random crop, as in the usual CIFAR recipe
ACCELERATOR_EVAL_BATCH = 4096  # an accelerator scores in batches of at least this many images


@dataclass
class TrainResult:
    """accuracy: final validation accuracy (0..1); epochs: validation accuracy after each epoch;
    seconds: wall time of the trial (data already in memory); test_accuracy: on the test set,
    or None unless asked for; model: the trained network (proxy architecture), in eval mode, on
    the CPU; device: where it was trained ("cpu", "cuda:0 (NVIDIA ...)"); normalisation: the
    per-channel {"mean": [r, g, b], "std": [r, g, b]} of 0..1 RGB pixels the model expects its
    input normalised with (the training subset's statistics)."""

    accuracy: float
    epochs: list[float]
    seconds: float
    test_accuracy: float | None
    model: nn.Module
    device: str = "cpu"
    normalisation: dict | None = None


class TrainingFailed(Exception):
    """A trial that cannot give an accuracy: the loss diverged (NaN/inf) or memory ran out.
    `reason` is "diverged" or "out of memory"; `epoch` is the 0-based epoch index it happened in."""

    def __init__(self, reason: str, epoch: int, detail: str):
        self.reason, self.epoch = reason, epoch
        super().__init__(f"{reason} at epoch {epoch + 1}: {detail}")


@dataclass(frozen=True)
class _Split:
    """Tensors of one recipe's data on one device: uint8 NHWC images, int64 labels,
    per-channel normalisation."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    num_classes: int


# One process runs many trials: keep decoded data sets (keyed by spec, folder and side) and the
# last few splits (a resolution-aware recipe needs one per side), so only the first trial at each
# side pays for loading.
_DATASETS: dict[tuple, Dataset] = {}
_SPLIT: dict[tuple, _Split] = {}
_SPLITS_KEPT = 8


def _dataset(recipe: Recipe, side: int) -> Dataset:
    key = (recipe.dataset, recipe.data_dir, side)
    if key not in _DATASETS:
        # seed 0, not the recipe's: an image folder's carved-out test set must not move with it
        _DATASETS[key] = load_dataset(recipe.dataset, recipe.data_dir, image_size=side,
                                      seed=0, progress=False)
    return _DATASETS[key]


def check_data(recipe: Recipe) -> None:
    """NasError (one line) unless the recipe's data set loads and its validation split fits:
    what a search checks before it writes anything, so a bad --dataset or --data-dir is refused
    before its first trial. The data set is loaded (from the cache once decoded) at the recipe's
    image size and kept for this process's trials."""
    train_val_split(_dataset(recipe, recipe.image_size), recipe.val_size, recipe.seed)


def train_images(recipe: Recipe) -> int:
    """How many training images the recipe's data set holds after its validation split: the most
    a recipe's `train_subset` may ask for (0 asks for all of them). Loads the data set like
    `check_data`."""
    return len(_dataset(recipe, recipe.image_size).train_y) - recipe.val_size


def _split(recipe: Recipe, side: int, device: torch.device) -> _Split:
    """The training subset and validation split of `recipe` at `side` pixels on `device`, cached."""
    key = (recipe.dataset, recipe.data_dir, side, recipe.val_size, recipe.train_subset, recipe.seed,
           str(device))
    if key in _SPLIT:
        return _SPLIT[key]
    ds = _dataset(recipe, side)
    train_x, train_y, val_x, val_y = train_val_split(ds, recipe.val_size, recipe.seed)
    if recipe.train_subset > len(train_y):
        raise NasError(f"train_subset {recipe.train_subset} is not allowed; {ds.name} has "
                       f"{len(train_y)} training images left after val_size {recipe.val_size} "
                       f"(use at most that, or 0 for all)")
    if recipe.train_subset:
        pick = np.sort(np.random.default_rng(recipe.seed).permutation(len(train_y))[:recipe.train_subset])
        train_x, train_y = train_x[pick], train_y[pick]
    pixels = torch.from_numpy(train_x).reshape(-1, 3).float() / 255
    tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(device)
               for a in (train_x, train_y, val_x, val_y)]
    split = _Split(*tensors, pixels.mean(0).to(device), pixels.std(0).to(device), len(ds.classes))
    if len(_SPLIT) >= _SPLITS_KEPT:
        _SPLIT.pop(next(iter(_SPLIT)))
    _SPLIT[key] = split
    return split


def _augment(x: torch.Tensor, mode: str, gen: torch.Generator) -> torch.Tensor:
    """Random crop after CROP_PADDING px of zero padding and/or horizontal flip of a uint8
    (B, H, W, 3) batch, done as one gather on the batch's device; `mode` is crop-flip, flip or
    none. The offsets and flips are drawn from the CPU generator `gen`, so every device sees the
    same ones."""
    if mode == "none":
        return x
    b, h, w, _ = x.shape
    pad = CROP_PADDING if mode == "crop-flip" else 0
    if pad:
        padded = x.new_zeros((b, h + 2 * pad, w + 2 * pad, 3))
        padded[:, pad:pad + h, pad:pad + w] = x
        x = padded
    oy = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen).to(x.device)
    ox = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen).to(x.device)
    flip = (torch.rand((b, 1), generator=gen) < 0.5).to(x.device)
    cols = torch.arange(w, device=x.device).expand(b, w)
    cols = torch.where(flip, w - 1 - cols, cols) + ox
    rows = torch.arange(h, device=x.device).expand(b, h) + oy
    return x[torch.arange(b, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]]


def _autocast(recipe: Recipe, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when the recipe asks for it, else nothing."""
    if recipe.precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _eval_batch(recipe: Recipe, device: torch.device) -> int:
    """Images per scoring forward pass: the recipe's on the CPU, larger on an accelerator (the
    accuracy does not depend on it: BatchNorm is in eval mode)."""
    return recipe.eval_batch_size if device.type == "cpu" else max(recipe.eval_batch_size,
                                                                   ACCELERATOR_EVAL_BATCH)


def _to_input(x: torch.Tensor, data: _Split, channels_last: bool) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> normalised float (B, 3, H, W); NHWC strides kept when channels_last."""
    x = ((x.float() / 255 - data.mean) / data.std).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


def _lr_factor(step: int, total: int, warmup_steps: int, schedule: str) -> float:
    """Fraction of the peak learning rate at optimizer step `step` of `total`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total - warmup_steps)
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "linear":
        return 1 - progress
    return 1.0


def _optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; weight decay on conv and linear weights, not on BN or biases."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim > 1], "weight_decay": recipe.weight_decay},
              {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=recipe.lr)
    return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                           nesterov=recipe.momentum > 0)


@torch.inference_mode()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, data: _Split, recipe: Recipe) -> float:
    """Top-1 accuracy (0..1) of `model` on uint8 NHWC images `x` with labels `y` (on the
    model's device)."""
    model.eval()
    device = data.mean.device
    batch = _eval_batch(recipe, device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for i in range(0, len(y), batch):
        with _autocast(recipe, device):
            logits = model(_to_input(x[i:i + batch], data, recipe.channels_last))
        correct += (logits.argmax(1) == y[i:i + batch]).sum()
    return int(correct) / max(1, len(y))


@torch.no_grad()
def _recalibrate_bn(model: nn.Module, data: _Split, recipe: Recipe) -> None:
    """Re-estimate every BatchNorm's running mean and variance as the plain average over the
    first `recipe.bn_recalibrate` training images (no augmentation), in batches of
    `recipe.batch_size`. After a short training the running averages (momentum 0.1) still mix in
    the statistics of early, very different weights; this is the usual fix (OFA, SPOS)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    n = min(recipe.bn_recalibrate, len(data.train_y))
    for i in range(0, n, recipe.batch_size):
        with _autocast(recipe, data.mean.device):
            model(_to_input(data.train_x[i:min(n, i + recipe.batch_size)], data, recipe.channels_last))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def _is_oom(e: BaseException) -> bool:
    text = str(e).lower()
    return isinstance(e, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(e, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text))


def _train_epoch(model: nn.Module, step_fn: Callable, data: _Split, recipe: Recipe, epoch: int,
                 gen: torch.Generator, bar: Any) -> None:
    n = len(data.train_y)
    steps = max(1, n // recipe.batch_size)
    order = torch.randperm(n, generator=gen).to(data.train_y.device)
    model.train()
    for s in range(steps):
        idx = order[s * recipe.batch_size:(s + 1) * recipe.batch_size]
        x = _to_input(_augment(data.train_x[idx], recipe.augment, gen), data, recipe.channels_last)
        loss = step_fn(x, data.train_y[idx], epoch * steps + s)
        if not math.isfinite(loss):
            raise TrainingFailed("diverged", epoch, f"training loss is {loss} at step {s + 1} of "
                                 f"{steps} (lr {recipe.lr}); lower lr or add warmup")
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}", refresh=False)


def train_arch(arch: Arch, recipe: Recipe, report: Report | None = None, progress: bool = False,
               evaluate_test: bool = False, device: str | None = None) -> TrainResult:
    """Train `proxy_arch(arch, recipe, classes)` with `recipe` and score it.

    report(epoch_index, val_accuracy) is called after every epoch (index from 0, accuracy 0..1);
    whatever it raises (e.g. optuna.TrialPruned) propagates unchanged. progress: a tqdm bar on
    stderr. evaluate_test: also score the final model on the data set's test split. device: train
    there instead of on `recipe.device` (a search places its workers with it).
    Raises TrainingFailed on a NaN/inf loss or out of memory, NasError for a recipe that does not
    fit the data set or a device this machine does not have.
    """
    data = _split(recipe, proxy_side(arch, recipe), resolve(device or recipe.device))
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _run(proxy_arch(arch, recipe, data.num_classes), recipe, data, report, progress,
                    evaluate_test)
    finally:
        torch.set_num_threads(threads)


def _zero_init_residual(model: nn.Module) -> None:
    """Zero the BatchNorm scale closing each residual block's body, so the block starts as the
    identity and a deep network trains like a shallow one in its first steps."""
    for m in model.modules():
        if isinstance(m, InvertedResidual) and m.residual:
            last_bn = [n for n in m.body[-1].modules() if isinstance(n, nn.BatchNorm2d)][-1]
            nn.init.zeros_(last_bn.weight)


def _setup(arch: Arch, recipe: Recipe, total_steps: int, steps_per_epoch: int, device: torch.device
           ) -> tuple[nn.Module, nn.Module, Callable[[torch.Tensor, torch.Tensor, int], float]]:
    """Seeded model on `device`, the module to call (compiled or not), and
    step(x, y, step_index) -> loss, which sets the scheduled learning rate, runs forward and
    backward and updates the weights. The weights are drawn on the CPU, so every device starts
    from the same ones."""
    torch.manual_seed(recipe.seed)
    model = build(arch)
    if recipe.zero_init_residual:
        _zero_init_residual(model)
    model = model.to(device)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    net = torch.compile(model) if recipe.compile else model
    opt = _optimizer(model, recipe)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    warm = round(recipe.warmup * steps_per_epoch)

    def step(x: torch.Tensor, y: torch.Tensor, index: int) -> float:
        factor = _lr_factor(index, total_steps, warm, recipe.schedule)
        for g in opt.param_groups:
            g["lr"] = recipe.lr * factor
        with _autocast(recipe, device):
            loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return model, net, step


def _run(arch: Arch, recipe: Recipe, data: _Split, report: Report | None, progress: bool,
         evaluate_test: bool) -> TrainResult:
    start = time.perf_counter()
    device = data.mean.device
    gen = torch.Generator().manual_seed(recipe.seed)
    steps = max(1, len(data.train_y) // recipe.batch_size)
    total = recipe.epochs * steps
    epoch = 0
    try:
        model, net, step = _setup(arch, recipe, total, steps, device)
        accs: list[float] = []
        with progress_bar(total=total, desc=f"train {arch.name}", unit="step", enabled=progress,
                  leave=False) as bar:
            for epoch in range(recipe.epochs):
                _train_epoch(net, step, data, recipe, epoch, gen, bar)
                if recipe.bn_recalibrate:
                    _recalibrate_bn(net, data, recipe)
                accs.append(_accuracy(net, data.val_x, data.val_y, data, recipe))
                bar.set_description(f"train {arch.name} val {accs[-1]:.3f}")
                if report is not None:
                    report(epoch, accs[-1])
        test = None
        if evaluate_test:
            ds = _dataset(recipe, arch.resolution)
            test = _accuracy(net, torch.from_numpy(ds.test_x).to(device),
                             torch.from_numpy(ds.test_y).to(device), data, recipe)
    except Exception as e:
        if _is_oom(e):
            raise TrainingFailed("out of memory", epoch, str(e).splitlines()[0]) from e
        raise
    model.eval()
    seconds = time.perf_counter() - start
    normalisation = {"mean": [round(float(v), 6) for v in data.mean.cpu()],
                     "std": [round(float(v), 6) for v in data.std.cpu()]}
    return TrainResult(accs[-1], accs, seconds, test, model.cpu(), describe(device), normalisation)


def training_speed(arch: Arch, recipe: Recipe, steps: int = 5, warmup: int = 2,
                   device: str | None = None) -> tuple[float, float]:
    """Training throughput of the proxy of `arch` under `recipe` (threads, channels_last, compile,
    relax_strides, batch_size, augmentation included): (median images per second over `steps`
    timed optimizer steps, seconds spent on building and the `warmup` untimed steps, which
    include any torch.compile time). device: instead of `recipe.device`."""
    device = resolve(device or recipe.device)
    data = _split(recipe, proxy_side(arch, recipe), device)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(recipe.seed)
        _, net, step = _setup(proxy_arch(arch, recipe, data.num_classes), recipe, 10 ** 6, 10 ** 5, device)
        net.train()
        times = []
        for i in range(warmup + steps):
            if i == warmup:
                setup_seconds = time.perf_counter() - start
            t = time.perf_counter()
            idx = torch.randint(0, len(data.train_y), (recipe.batch_size,), generator=gen).to(device)
            step(_to_input(_augment(data.train_x[idx], recipe.augment, gen), data, recipe.channels_last),
                 data.train_y[idx], i)
            if i >= warmup:
                times.append(time.perf_counter() - t)
        return recipe.batch_size / float(np.median(times)), setup_seconds
    finally:
        torch.set_num_threads(threads)
