"""Latency models: a per-op model for ops a table lacks, and an overhead model for what a sum of
isolated ops misses.

An op (one `Layer`) is described by the work of the primitive kernels it launches, counted
analytically from the architecture data (never from a built module):

    kernels       number of kernels launched (a fixed cost each)
    pw_madds      1x1-convolution multiply-adds (expand, project, head conv)      [millions]
    dw3/5/7_madds depthwise multiply-adds, by kernel size (3 and less, 5, 7 and more) [millions]
    conv_madds    dense kxk convolution multiply-adds (the stem)                  [millions]
    conv_weights  convolution weights read                                        [millions]
    conv_pixels   output pixels of the convolutions (a per-pixel cost at any width) [millions]
    act_mem       activation elements read and written by convolutions and the pool [millions]
    fc_weights    weights of linear layers and of the squeeze-excite 1x1 convs    [millions]
    se_elems      elements gated by squeeze-excite (pooled, then multiplied)      [millions]
    hswish_elems  elements passed through an h-swish                              [millions]
    add_elems     elements of residual additions                                  [millions]

Vector units compute channels in blocks (MLAS on AVX-512 in 16s, NEON in 4s): with `block` b,
convolution channel counts are rounded up to a multiple of b before counting, which is what makes
an 8-channel block cost as much as a 16-channel one on this kind of CPU. The block is a property of
the device and runtime, chosen by cross-validation when a table is fitted.

`OpModel` is linear in these features (milliseconds per unit), fitted by non-negative least
squares on relative error, so every coefficient reads as a cost and no op can come out negative.
`Overhead` maps the sum of per-op times of a network to its end-to-end time:
    latency = sum(coef[t] * term[t])  over the terms ops_ms, n_ops, const, weights_m, act_m, boundary_m
with ops_ms the summed per-op milliseconds, n_ops the op count, weights_m and act_m the total
weights and activation elements of the network in millions, and boundary_m the elements entering
and leaving its ops (millions): an op timed alone converts its input and output between the
runtime's blocked layout and the graph's (onnxruntime's NCHWc reorders, LiteRT's NCHW/NHWC
transposes), which inside a network happens once. A table fits DEFAULT_OVERHEAD_TERMS
(`overhead_terms`); the other candidates are scored by leave-one-out for the record
(`score_overhead_terms`): choosing among them per table fitted the calibration networks better and
predicted networks never fitted on worse (docs/latency.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
from scipy.optimize import nnls

from nas.arch import Arch, Layer

FEATURES = ("kernels", "pw_madds", "dw3_madds", "dw5_madds", "dw7_madds", "conv_madds",
            "conv_weights", "conv_pixels", "act_mem", "fc_weights", "se_elems", "hswish_elems",
            "add_elems")
BLOCKS = (1, 4, 8, 16, 32)
OVERHEAD_TERMS = ("ops_ms", "n_ops", "const", "weights_m", "act_m", "boundary_m")


class _Work:
    """Accumulates the primitive work of one op (raw counts, not millions)."""

    def __init__(self, block: int = 1) -> None:
        self.f = dict.fromkeys(FEATURES, 0.0)
        self.block = block

    def pad(self, c: int) -> int:
        return -(-c // self.block) * self.block

    def conv(self, cin: int, cout: int, kernel: int, size_in: int, size_out: int, groups: int = 1) -> None:
        depthwise = groups > 1 and groups == cin == cout
        if depthwise:
            cin = cout = groups = self.pad(cin)
        elif groups > 1:  # a grouped 1x1 conv: each group's channels padded to the block
            cin, cout = groups * self.pad(cin // groups), groups * self.pad(cout // groups)
        elif cin > 3:  # the stem's 3 input channels are not blocked
            cin, cout = self.pad(cin), self.pad(cout)
        else:
            cout = self.pad(cout)
        weights = kernel * kernel * (cin // groups) * cout
        madds = weights * size_out * size_out
        if depthwise:
            band = "dw3_madds" if kernel <= 3 else "dw5_madds" if kernel <= 5 else "dw7_madds"
            self.f[band] += madds
        elif kernel == 1:
            self.f["pw_madds"] += madds
        else:
            self.f["conv_madds"] += madds
        self.f["conv_weights"] += weights
        self.f["conv_pixels"] += size_out * size_out
        self.f["act_mem"] += cin * size_in * size_in + cout * size_out * size_out
        self.f["kernels"] += 1

    def act(self, name: str, elems: int) -> None:
        # ReLU and ReLU6 fuse into the convolution on every runtime we know; h-swish is its own op.
        # Swish (x * sigmoid(x)) is costed as an h-swish element: no table we derive measured it
        # (`approximations` names the ops this applies to).
        if name in ("hswish", "swish"):
            self.f["hswish_elems"] += elems
            self.f["kernels"] += 1

    def linear(self, cin: int, cout: int, act: str = "none") -> None:
        self.f["fc_weights"] += cin * cout
        self.f["kernels"] += 1
        self.act(act, cout)

    def millions(self) -> dict[str, float]:
        return {k: (v if k == "kernels" else v / 1e6) for k, v in self.f.items()}


@lru_cache(maxsize=65536)
def op_features(layer: Layer, block: int = 1) -> dict[str, float]:
    """The primitive work of one op: kernel count, then multiply-adds and elements in millions,
    convolution channels rounded up to multiples of `block`. (Cached: do not mutate the result.)"""
    w = _Work(block)
    s_in, s_out = layer.size, layer.out_size
    if layer.kind == "stem":
        w.conv(layer.cin, layer.cout, layer.kernel, s_in, s_out)
        w.act(layer.act, layer.cout * s_out * s_out)
    elif layer.kind == "ds":
        w.conv(layer.cin, layer.cin, layer.kernel, s_in, s_out, groups=layer.cin)
        w.act(layer.act, layer.cin * s_out * s_out)
        w.conv(layer.cin, layer.cout, 1, s_out, s_out)
        w.act(layer.act, layer.cout * s_out * s_out)
    elif layer.kind == "ir":
        if layer.has_expand:  # grouped 1x1 convs are costed as 1x1 convs of their multiply-adds
            w.conv(layer.cin, layer.exp, 1, s_in, s_in, layer.groups)
            w.act(layer.act, layer.exp * s_in * s_in)
        if layer.groups > 1:  # the channel shuffle: a copy of the expanded map (see `approximations`)
            w.f["act_mem"] += 2 * layer.exp * s_in * s_in
            w.f["kernels"] += 1
        w.conv(layer.exp, layer.exp, layer.kernel, s_in, s_out, groups=layer.exp)
        w.act(layer.act, layer.exp * s_out * s_out)
        if layer.se:  # a sigmoid gate is costed as the hard-sigmoid one (see `approximations`)
            w.f["se_elems"] += layer.exp * s_out * s_out
            w.f["fc_weights"] += 2 * layer.exp * layer.squeeze
            w.f["kernels"] += 4  # pool, two 1x1 convs, gate multiply
        w.conv(layer.exp, layer.cout, 1, s_out, s_out, layer.groups)
        if layer.residual:
            w.f["add_elems"] += layer.cout * s_out * s_out
            w.f["kernels"] += 1
    elif layer.kind == "conv":
        w.conv(layer.cin, layer.cout, 1, s_in, s_in)
        w.act(layer.act, layer.cout * s_in * s_in)
    elif layer.kind == "pool":
        w.f["act_mem"] += layer.cin * s_in * s_in + layer.cin  # a streaming read
        w.f["kernels"] += 1
    elif layer.kind == "fc":
        w.linear(layer.cin, layer.cout, layer.act)
    return w.millions()


def approximations(layer: Layer) -> list[str]:
    """What the op model can only approximate in this op: the primitives no table we derive
    has measured (swish costed as h-swish, a sigmoid SE gate as a hard-sigmoid one, FBNet's
    grouped 1x1 convs as plain 1x1 convs of their multiply-adds and its channel shuffle as a
    copy). Empty for every op of the MobileNetV1/V2/V3 kind. (A conv bias is not listed: it
    folds into the BatchNorm shift that every runtime adds anyway.)"""
    notes = []
    acts = [layer.act] + ([layer.se_act] if layer.se else [])
    if "swish" in acts:
        notes.append("swish costed as h-swish")
    if layer.se and layer.se_gate == "sigmoid":
        notes.append("sigmoid SE gate costed as hard-sigmoid")
    if layer.groups > 1:
        notes.append(f"{layer.groups}-group 1x1 convs costed by their multiply-adds, channel shuffle as a copy")
    return notes


def feature_matrix(layers: Sequence[Layer], features: Sequence[str] = FEATURES, block: int = 1) -> np.ndarray:
    """One row of `features` per layer."""
    return np.array([[op_features(l, block)[f] for f in features] for l in layers], dtype=float)


GROUPS = {"ir": "blocks", "ds": "blocks", "stem": "stem", "conv": "conv", "pool": "pool", "fc": "fc"}
MIN_GROUP_ROWS = 8


@dataclass(frozen=True)
class OpModel:
    """Milliseconds per unit of each feature (features left out cost nothing), counted with
    channels rounded up to multiples of `block`.

    `coef` holds the coefficients fitted on all ops; `groups` optionally holds coefficients
    fitted on one group of op kinds ("blocks" = ir and ds, "stem", "conv", "pool", "fc"), used
    for the ops of that group."""

    coef: dict[str, float]
    block: int = 1
    groups: dict[str, dict[str, float]] = field(default_factory=dict)

    def predict(self, layer: Layer) -> float:
        """Predicted milliseconds of one op timed in isolation."""
        f = op_features(layer, self.block)
        coef = self.groups.get(GROUPS[layer.kind], self.coef)
        return sum(c * f[name] for name, c in coef.items())

    def with_coef(self, **changes: float) -> "OpModel":
        """A copy with some all-op coefficients replaced (group coefficients too, where set)."""
        groups = {g: {**c, **{k: v for k, v in changes.items()}} for g, c in self.groups.items()}
        return OpModel({**self.coef, **changes}, self.block, groups)

    def to_dict(self) -> dict:
        round6 = lambda c: {k: float(f"{v:.6g}") for k, v in c.items()}
        out: dict = {"block": self.block, **round6(self.coef)}
        if self.groups:
            out["groups"] = {g: round6(c) for g, c in self.groups.items()}
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "OpModel":
        d = dict(d)
        block = int(d.pop("block", 1))
        groups = {g: {k: float(v) for k, v in c.items()} for g, c in d.pop("groups", {}).items()}
        return cls({k: float(v) for k, v in d.items()}, block, groups)


def _nnls_fit(layers: Sequence[Layer], y: np.ndarray, features: Sequence[str], fixed: dict[str, float],
              block: int) -> dict[str, float]:
    free = [f for f in features if f not in fixed]
    full = feature_matrix(layers, list(free) + list(fixed), block)
    x, xf = full[:, :len(free)], full[:, len(free):]
    residual = y - xf @ np.array(list(fixed.values()), dtype=float) if fixed else y
    weight = 1.0 / y
    coef = dict(fixed)
    if free:
        solution, _ = nnls(x * weight[:, None], residual * weight, maxiter=200 * len(free))
        coef.update(zip(free, solution.tolist()))
    return {f: coef.get(f, 0.0) for f in features}


def fit_op_model(layers: Sequence[Layer], ms: Sequence[float], features: Sequence[str] = FEATURES,
                 fixed: dict[str, float] | None = None, block: int = 1, by_group: bool = False) -> OpModel:
    """Fit an `OpModel` by non-negative least squares on relative error.

    `fixed` coefficients are held at their values and subtracted before the fit; features with no
    support in the data (all zero) get coefficient 0. With `by_group`, each group of op kinds
    with at least MIN_GROUP_ROWS rows also gets its own coefficients.
    """
    fixed = dict(fixed or {})
    y = np.asarray(ms, dtype=float)
    coef = _nnls_fit(layers, y, features, fixed, block)
    groups: dict[str, dict[str, float]] = {}
    if by_group:
        for group in dict.fromkeys(GROUPS.values()):
            idx = [i for i, l in enumerate(layers) if GROUPS[l.kind] == group]
            if len(idx) >= MIN_GROUP_ROWS:
                groups[group] = _nnls_fit([layers[i] for i in idx], y[idx], features, fixed, block)
    return OpModel(coef, block, groups)


def cross_validate(layers: Sequence[Layer], ms: Sequence[float], folds: int = 5, seed: int = 0,
                   features: Sequence[str] = FEATURES, block: int = 1, by_group: bool = False) -> np.ndarray:
    """Out-of-fold predictions of a k-fold cross-validated `OpModel` (one per layer, in order)."""
    y = np.asarray(ms, dtype=float)
    order = np.random.default_rng(seed).permutation(len(y))
    pred = np.empty(len(y))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        model = fit_op_model([layers[i] for i in train], y[train], features, block=block,
                             by_group=by_group)
        pred[test] = [model.predict(layers[i]) for i in test]
    return pred


def choose_block(layers: Sequence[Layer], ms: Sequence[float], blocks: Sequence[int] = BLOCKS
                 ) -> tuple[int, dict[int, float]]:
    """The channel block with the lowest 5-fold cross-validated MAPE, and the MAPE of each."""
    y = np.asarray(ms, dtype=float)
    scores = {b: float(np.mean(np.abs(cross_validate(layers, y, block=b, by_group=True) / y - 1)))
              for b in blocks}
    return min(scores, key=scores.get), scores


# ---------------------------------------------------------------- whole-network overhead

def network_terms(arch: Arch, ops_ms: float) -> dict[str, float]:
    """The terms of the overhead model for one network whose isolated ops sum to `ops_ms`."""
    layers = arch.layers()
    weights = act = boundary = 0.0
    for layer in layers:
        f = op_features(layer)
        weights += f["conv_weights"] + f["fc_weights"]
        act += f["act_mem"]
        boundary += boundary_elements(layer) / 1e6
    return {"ops_ms": ops_ms, "n_ops": float(len(layers)), "const": 1.0, "weights_m": weights,
            "act_m": act, "boundary_m": boundary}


def boundary_elements(layer: Layer) -> int:
    """Elements of an op's input and output tensors: what timing it alone converts to and from the
    runtime's internal layout (a pool's output and a linear layer's are 1x1)."""
    return layer.cin * layer.size ** 2 + layer.cout * layer.out_size ** 2


@dataclass(frozen=True)
class Overhead:
    """End-to-end latency from the summed op times: a linear model in `OVERHEAD_TERMS`.

    The identity (`{"ops_ms": 1}`) means "the sum of the ops is the latency".
    """

    coef: dict[str, float] = field(default_factory=lambda: {"ops_ms": 1.0})

    def apply(self, terms: dict[str, float]) -> float:
        return sum(c * terms[t] for t, c in self.coef.items())

    def to_dict(self) -> dict[str, float]:
        return {k: float(f"{v:.6g}") for k, v in self.coef.items()}


DEFAULT_OVERHEAD_TERMS = ("ops_ms", "const", "weights_m")
OVERHEAD_CANDIDATES = (DEFAULT_OVERHEAD_TERMS, ("ops_ms", "const", "weights_m", "boundary_m"),
                       ("ops_ms", "const", "boundary_m"), ("ops_ms", "boundary_m"))


def fit_overhead(terms: Iterable[dict[str, float]], measured_ms: Sequence[float],
                 use: Sequence[str] = DEFAULT_OVERHEAD_TERMS) -> Overhead:
    """Least squares on relative error of end-to-end latency against the chosen terms.

    The default terms won a leave-one-out comparison on local-cpu's calibration networks (see
    docs/latency.md): a scale on the summed ops (isolated timing misses part of the work), a
    constant (run-call overhead counted once per isolated op but once per network), and a cost
    per weight (weights are cache-hot when an op is timed alone, cold inside a network)."""
    rows = list(terms)
    y = np.asarray(measured_ms, dtype=float)
    x = np.array([[r[t] for t in use] for r in rows])
    w = 1.0 / y
    coef, *_ = np.linalg.lstsq(x * w[:, None], y * w, rcond=None)
    return Overhead(dict(zip(use, coef.tolist())))


def loo_overhead(terms: Sequence[dict[str, float]], measured_ms: Sequence[float],
                 use: Sequence[str] = DEFAULT_OVERHEAD_TERMS) -> np.ndarray:
    """Leave-one-out predictions of the overhead model (one per network, in order)."""
    y = np.asarray(measured_ms, dtype=float)
    out = np.empty(len(y))
    for i in range(len(y)):
        keep = [j for j in range(len(y)) if j != i]
        out[i] = fit_overhead([terms[j] for j in keep], y[keep], use).apply(terms[i])
    return out


def overhead_terms(networks: int) -> tuple[str, ...]:
    """The terms a table's overhead model fits on `networks` calibration networks:
    DEFAULT_OVERHEAD_TERMS, or the scale alone (ops_ms) with too few networks to fit them.

    Not chosen per table: over 17 recorded quick builds (experiments/latency/overhead/
    across_builds.py), the candidate each build chose by leave-one-out put 68.3 % of its
    validation networks within ±10 %, the default terms fitted everywhere 70.6 % (72.1 vs 75.1 %
    adjusted for contention; outside the space 67.2 vs 71.4 %): on 24 networks of similar
    proportions the choice follows the noise, and boundary_m's coefficient came out with either sign."""
    return DEFAULT_OVERHEAD_TERMS if networks > len(DEFAULT_OVERHEAD_TERMS) else ("ops_ms",)


def score_overhead_terms(terms: Sequence[dict[str, float]], measured_ms: Sequence[float],
                         candidates: Sequence[Sequence[str]] = OVERHEAD_CANDIDATES) -> dict[str, float]:
    """Every candidate term set's leave-one-out MAPE on these networks (percent, keyed by the
    terms joined with '+'); a candidate with as many terms as networks, or more, is not scored."""
    y = np.asarray(measured_ms, dtype=float)
    return {"+".join(use): round(float(np.mean(np.abs(loo_overhead(terms, y, use) / y - 1))) * 100, 2)
            for use in candidates if len(use) < len(y)}
