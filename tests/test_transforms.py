"""nas.transforms: published networks at other widths and in their published ablations."""

import pytest

from nas.baselines import load_baseline
from nas.cost import arch_cost
from nas.errors import NasError
from nas.transforms import apply_variant, scale_like


def test_scale_like_at_width_one_is_the_network_itself():
    v3 = load_baseline("mobilenet_v3_large")
    assert scale_like(v3, 1.0) is v3


def test_v3_keeps_its_hidden_layer_below_width_one():
    v3 = load_baseline("mobilenet_v3_large")
    scaled = scale_like(v3, 0.75, "v3")
    assert scaled.width_mult == 1.0 and scaled.head.hidden == v3.head.hidden
    assert arch_cost(scaled).params < arch_cost(v3).params


def test_minimalistic_variant_drops_se_hswish_and_large_kernels():
    mini = apply_variant(load_baseline("mobilenet_v3_small"), "minimalistic")
    assert {b.act for b in mini.blocks} == {"relu"} and {b.kernel for b in mini.blocks} == {3}
    assert not any(b.se for b in mini.blocks if b.type == "ir")


@pytest.mark.parametrize("call, named", [(lambda a: apply_variant(a, "gelu"), "'gelu'"),
                                         (lambda a: scale_like(a, 0.5, "resnet"), "'resnet'")])
def test_unknown_variant_or_scaling_is_one_line_error_naming_it(call, named):
    with pytest.raises(NasError, match=named):
        call(load_baseline("mobilenet_v3_small"))
