"""Which weights of a supernet a subnet uses: an architecture placed on the supernet's stages.

A supernet is made of the largest architecture of a space (`largest`) cut into stages of at
most `depths[i]` blocks. A subnet is any architecture whose blocks split into one run per stage,
each run starting with the stage's stride and keeping its width after the first block, with
every op no larger than the op at the same place of the largest architecture. Block i of a stage
uses the weights of block i of that stage (depth: the first d blocks).

A run of stride-1 stages of equal width can split in several ways (e.g. 5 blocks of 80 channels
over a stage of 4 and one of 4); the split is canonical (earlier stages as deep as they go), and
training places its sampled subnets with the same rule, so evaluation uses the weights trained
for that network.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.arch import Arch, Layer
from nas.errors import NasError


@dataclass(frozen=True)
class Plan:
    """A subnet's resolved ops by place: the stem, its blocks stage by stage, the head conv,
    the hidden linear layer and the classifier (nas.arch.Layer records, channels resolved)."""

    stem: Layer
    stages: tuple[tuple[Layer, ...], ...]
    conv: Layer
    hidden: Layer
    classifier: Layer


def split_layers(arch: Arch) -> Plan:
    """`arch`'s ops in the supernet's places, with all blocks in one stage (for the largest
    architecture, before it is cut into stages). NasError for an architecture a supernet cannot
    hold: a "ds" block, grouped 1x1 convs, a conv bias, or no head conv or hidden layer."""
    layers = arch.layers()
    blocks = tuple(l for l in layers if l.kind in ("ir", "ds"))
    conv = [l for l in layers if l.kind == "conv"]
    fcs = [l for l in layers if l.kind == "fc"]
    if any(l.kind != "ir" for l in blocks):
        raise NasError(f"{arch.name}: a \"ds\" block is not allowed in a supernet; its blocks are \"ir\"")
    grouped = next((i for i, l in enumerate(blocks) if l.groups > 1), None)
    if grouped is not None:
        raise NasError(f"{arch.name}: blocks[{grouped}].groups: {blocks[grouped].groups} is not allowed in a "
                       f"supernet; its 1x1 convs have one group and no channel shuffle")
    biased = next((i for i, l in enumerate(layers) if l.conv_bias), None)
    if biased is not None:
        raise NasError(f"{arch.name}: a conv bias ({layers[biased].kind} op {biased}) is not allowed in a "
                       f"supernet; its convs are bias-free (stem.bias, blocks[].bias, head.conv_bias left out)")
    if not conv or len(fcs) != 2:
        raise NasError(f"{arch.name}: a supernet subnet needs a head conv and a hidden layer "
                       f"(head.conv and head.hidden not null)")
    return Plan(layers[0], (blocks,), conv[0], fcs[0], fcs[1])


def _split(blocks: tuple[Layer, ...], strides: tuple[int, ...], depths: tuple[int, ...]) -> list[int] | None:
    """How many of `blocks` each stage takes (earlier stages as deep as possible), or None when
    they do not split into the stages."""
    if not strides:
        return [] if not blocks else None
    if not blocks or blocks[0].stride != strides[0]:
        return None
    for d in range(min(depths[0], len(blocks)), 0, -1):
        if any(l.stride != 1 or l.cout != blocks[0].cout for l in blocks[1:d]):
            continue
        rest = _split(blocks[d:], strides[1:], depths[1:])
        if rest is not None:
            return [d, *rest]
    return None


def _check_fits(where: str, op: Layer, largest: Layer) -> None:
    """NasError naming the first size of `op` larger than the supernet's op at its place."""
    sizes = (("input channels", op.cin, largest.cin), ("output channels", op.cout, largest.cout),
             ("expanded channels", op.exp, largest.exp), ("kernel", op.kernel, largest.kernel),
             ("squeeze-excite channels", op.squeeze, largest.squeeze))
    for what, value, most in sizes:
        if value > most:
            raise NasError(f"{where}: {what} {value} is not allowed; this supernet holds at most {most}")
    if op.kind == "ir" and op.has_expand and not largest.has_expand:
        raise NasError(f"{where}: a 1x1 expansion conv is not allowed; this supernet has none there")
    if op.kind == "stem" and (op.kernel, op.stride) != (largest.kernel, largest.stride):
        raise NasError(f"{where}: kernel {op.kernel} stride {op.stride} is not allowed; the supernet's "
                       f"stem is kernel {largest.kernel} stride {largest.stride}")


def plan_subnet(arch: Arch, largest: Plan) -> Plan:
    """`arch` placed on the supernet whose largest architecture, cut into stages, is `largest`
    (proxy architectures both: the input side, classes and strides of the training recipe).
    NasError naming the block and the size when `arch` is not a subnet of it."""
    flat = split_layers(arch)
    if flat.classifier.cout != largest.classifier.cout:
        raise NasError(f"{arch.name}: {flat.classifier.cout} classes is not allowed; the supernet has "
                       f"{largest.classifier.cout}")
    strides = tuple(stage[0].stride for stage in largest.stages)
    depths = tuple(len(stage) for stage in largest.stages)
    counts = _split(flat.stages[0], strides, depths)
    if counts is None:
        raise NasError(f"{arch.name}: its {len(flat.stages[0])} blocks do not split into this supernet's "
                       f"stages (strides {list(strides)}, at most {list(depths)} blocks each, one width "
                       f"per stage after its first block)")
    stages, start = [], 0
    for i, d in enumerate(counts):
        stages.append(flat.stages[0][start:start + d])
        for j, op in enumerate(stages[-1]):
            _check_fits(f"{arch.name}: block {start + j} (stage {i}, block {j})", op, largest.stages[i][j])
        start += d
    for where, op, most in (("stem", flat.stem, largest.stem), ("head conv", flat.conv, largest.conv),
                            ("head hidden layer", flat.hidden, largest.hidden),
                            ("classifier", flat.classifier, largest.classifier)):
        _check_fits(f"{arch.name}: {where}", op, most)
    if flat.hidden.bias != largest.hidden.bias:
        raise NasError(f"{arch.name}: head.hidden_bias must be {largest.hidden.bias} in this supernet")
    return Plan(flat.stem, tuple(stages), flat.conv, flat.hidden, flat.classifier)
