import random

import pytest
import yaml

from nas.baselines import load_baseline
from nas.errors import NasError
from nas.space import DEFAULT_SPACE, load_space, random_arch, sample_arch, smallest_arch


def test_space_size_counts_every_choice():
    text = DEFAULT_SPACE.read_text()
    d = yaml.safe_load(text)
    d["stages"] = d["stages"][:2]
    d["stages"][1] = {"stride": 2, "depth": [1, 2], "width": [24], "kernel": [3, 5], "expand": [3],
                      "se": [False], "act": ["relu"]}
    from nas.space import space_from_dict
    space = space_from_dict(d)
    # rho 4 x alpha 4 x hidden 2 x (stage0: 1) x (stage1: 2 + 2**2)
    assert space.size() == 4 * 4 * 2 * 1 * (2 + 4)


def test_sampling_is_deterministic_for_a_seed():
    space = load_space()
    assert random_arch(space, random.Random(3)) == random_arch(space, random.Random(3))


def test_v3_large_nearest_neighbour_is_in_the_space():
    # V3-Large with expansion 200/184 (ratios 2.5/2.3) rounded to 3: every other field matches.
    v3 = load_baseline("mobilenet_v3_large")
    picks = {"resolution": 224, "width_mult": 1.0, "head_hidden": 1280,
             "s0_depth": 1, "s0_width": 16, "s1_depth": 2, "s1_width": 24, "s2_depth": 3, "s2_width": 40,
             "s3_depth": 4, "s3_width": 80, "s4_depth": 2, "s4_width": 112, "s5_depth": 3, "s5_width": 160}
    for i, b in enumerate(v3.blocks):
        stage, j = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 0), (3, 1), (3, 2), (3, 3),
                    (4, 0), (4, 1), (5, 0), (5, 1), (5, 2)][i]
        cin = v3.blocks[i - 1].out if i else 16
        picks.update({f"s{stage}_b{j}_kernel": b.kernel, f"s{stage}_b{j}_se": b.se,
                      f"s{stage}_b{j}_act": b.act,
                      f"s{stage}_b{j}_expand": 1 if b.exp == cin else min([3, 4, 6], key=lambda t: abs(t - b.exp / cin))})
    arch = sample_arch(load_space(), lambda name, choices: picks[name] if picks[name] in choices else pytest.fail(name))
    differ = [i for i, (a, b) in enumerate(zip(arch.blocks, v3.blocks)) if a != b]
    assert differ == [7, 8, 9] and arch.head == v3.head


def test_smallest_arch_is_the_cheapest_corner():
    arch = smallest_arch(load_space())
    assert arch.resolution == 128 and arch.width_mult == 0.5 and len(arch.blocks) == 6


@pytest.mark.parametrize("text,message", [
    ("stages: []", "space.stages"),
    ("stages: [{stride: 3, depth: [1], width: [8]}]", "stride"),
    ("block: {kernel: [4], expand: [3], se: [false], act: [relu]}\nstages: [{stride: 1, depth: [1], width: [8]}]", "kernel"),
    ("colour: red\nstages: [{stride: 1, depth: [1], width: [8]}]", "space.colour"),
    ("stages: [{{", "malformed YAML"),
])
def test_bad_space_file_is_a_clear_error(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(NasError, match=message):
        load_space(path)
