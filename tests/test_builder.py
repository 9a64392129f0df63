import pytest
import torch

from nas.baselines import baseline_names, load_baseline
from nas.builder import build


@pytest.mark.parametrize("name", baseline_names())
@pytest.mark.parametrize("width,resolution", [(1.0, 224), (0.75, 160), (0.5, 128), (1.25, 96)])
def test_every_baseline_builds_and_gives_logits(name, width, resolution):
    arch = load_baseline(name).with_overrides(width=width, resolution=resolution, num_classes=10)
    model = build(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, resolution, resolution))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()


def test_residual_only_where_stride_1_and_channels_match():
    model = build(load_baseline("mobilenet_v2"))
    flags = [b.residual for b in model.blocks]
    assert flags[:4] == [False, False, True, False]
    assert sum(flags) == 10


def test_no_expansion_conv_when_exp_equals_input():
    first = build(load_baseline("mobilenet_v3_large")).blocks[0]
    assert len(first.body) == 2  # depthwise + projection


def _v3_with(block0: dict | None = None, block3: dict | None = None, head: dict | None = None):
    import json

    from nas.arch import arch_from_dict
    from nas.paths import BASELINES
    d = json.loads((BASELINES / "mobilenet_v3_large.json").read_text())
    d["blocks"][0].update(block0 or {})
    d["blocks"][3].update(block3 or {})
    d["head"].update(head or {})
    return arch_from_dict(d)


def test_expand_conv_keeps_the_1x1_conv_at_expansion_one():
    first = build(_v3_with(block0={"expand_conv": True})).blocks[0]
    assert len(first.body) == 3  # 1x1 expand + depthwise + projection


def test_residual_false_drops_the_shortcut():
    assert not build(_v3_with(block0={"residual": False})).blocks[0].residual


def test_se_options_pick_width_activation_and_gate():
    se = build(_v3_with(block3={"se_base": "in", "se_round": "round", "se_act": "swish",
                                "se_gate": "sigmoid", "act": "swish"})).blocks[3].body[2]
    assert se.fc1.out_channels == 6  # round(24 input channels * 0.25)
    assert isinstance(se.relu, torch.nn.SiLU) and isinstance(se.gate, torch.nn.Sigmoid)


def test_head_hidden_layer_without_bias():
    model = build(_v3_with(head={"hidden_bias": False}))
    assert model.hidden[0].bias is None and model.classifier.bias is not None


def test_every_option_together_builds_and_counts_as_it_costs():
    from nas.cost import arch_cost
    arch = _v3_with(block0={"expand_conv": True, "residual": False, "act": "swish"},
                    block3={"se_base": "in", "se_ratio": 0.5, "se_round": "floor", "se_act": "hswish",
                            "se_gate": "sigmoid"}, head={"hidden_bias": False, "act": "swish"})
    model = build(arch.with_overrides(resolution=64)).eval()
    assert sum(p.numel() for p in model.parameters()) == arch_cost(arch).params
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 3, 64, 64))).all()


def test_grouped_block_splits_its_1x1_convs_and_shuffles_after_the_expansion():
    from nas.builder import ChannelShuffle
    from nas.cost import arch_cost
    arch = _v3_with(block3={"groups": 2, "bias": True})
    body = build(arch).blocks[3].body  # expand, shuffle, depthwise, SE, project
    assert isinstance(body[1], ChannelShuffle) and body[1].groups == 2
    assert (body[0][0].groups, body[2][0].groups, body[4][0].groups) == (2, 72, 2)
    assert all(part[0].bias is not None for part in (body[0], body[2], body[4]))
    assert sum(p.numel() for p in build(arch).parameters()) == arch_cost(arch).params


def test_grouped_block_without_expansion_conv_shuffles_before_the_depthwise_conv():
    from nas.builder import ChannelShuffle
    body = build(_v3_with(block0={"groups": 2})).blocks[0].body  # 16 -> 16, exp 16: mobile-vision's e1 _g2
    assert isinstance(body[0], ChannelShuffle) and body[2][0].groups == 2 and len(body) == 3


def test_channel_shuffle_is_shufflenets():
    from nas.builder import ChannelShuffle
    x = torch.arange(2 * 6 * 2 * 2, dtype=torch.float32).reshape(2, 6, 2, 2)
    assert torch.equal(ChannelShuffle(2)(x), torch.nn.functional.channel_shuffle(x, 2))
    assert ChannelShuffle(2)(x)[0, :, 0, 0].tolist() == [0, 12, 4, 16, 8, 20]


def test_stem_and_head_conv_biases():
    import json

    from nas.arch import arch_from_dict
    from nas.paths import BASELINES
    d = json.loads((BASELINES / "mobilenet_v3_large.json").read_text())
    d["stem"]["bias"], d["head"]["conv_bias"] = True, True
    model = build(arch_from_dict(d))
    assert model.stem[0].bias is not None and model.head_conv[0].bias is not None
    assert build(load_baseline("mobilenet_v3_large")).stem[0].bias is None
