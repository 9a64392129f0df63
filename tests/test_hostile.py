"""Promises about hostile input (issue 14): every bad input is one NasError line (exit code 2 on
the command line), nothing is run from data, and nothing hangs or allocates without bound.

Each test is one promise; the fuzz tests at the end feed the loaders random input.
"""

import json
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import nas.arch
from nas.arch import (MAX_BLOCKS, MAX_CHANNELS, MAX_KERNEL, MAX_NUM_CLASSES, MAX_RESOLUTION,
                      MAX_WIDTH_MULT, Arch, arch_from_dict, dumps_arch, load_arch, loads_arch, save_arch)
from nas.baselines import load_baseline
from nas.blockstring import decode_blocks, encode_blocks
from nas.cli import main
from nas.data import load_dataset
from nas.data.cifar10_original import read_cifar_batch
from nas.errors import NasError
from nas.fileio import MAX_FILE_BYTES, loads_json, loads_yaml, read_text
from nas.paths import BASELINES
from nas.recipe import load_recipe
from nas.resolve import resolve_arch
from nas.space import DEFAULT_SPACE, load_space, random_arch, space_from_dict

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_peak_memory(fn, *args):
    """fn(*args) and the most memory Python allocated while it ran, in bytes: how a test says
    "refused before doing the work" without a clock a loaded machine can miss."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()



def one_line_error(call, *args, **kwargs) -> str:
    """The message of the NasError `call` raises; fails unless it is one short line."""
    with pytest.raises(NasError) as e:
        call(*args, **kwargs)
    message = str(e.value)
    assert "\n" not in message and len(message) < 600, message
    return message


def v3_dict() -> dict:
    return json.loads((BASELINES / "mobilenet_v3_large.json").read_text())


def space_dict() -> dict:
    return yaml.safe_load(DEFAULT_SPACE.read_text())


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# ---------------------------------------------------------------- 1. no code runs from data

class _Payload:
    """Unpickling this calls os.system: what a crafted CIFAR batch would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_cifar_folder(folder: Path, batch_bytes: dict[str, bytes] | None = None) -> None:
    """data_batch_1..5 and test_batch as the original pickles them (protocol 2, bytes keys)."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": b"batch", b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
                 b"labels": [0, 5, 9], b"filenames": [b"a.png", b"b.png", b"c.png"]}
        (folder / name).write_bytes((batch_bytes or {}).get(name) or pickle.dumps(batch, protocol=2))


def test_cifar_pickle_that_would_run_a_command_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _Payload(marker), b"labels": []}, protocol=2)
    write_cifar_folder(tmp_path / "cifar-10-batches-py", {"data_batch_2": payload})
    message = one_line_error(load_dataset, "cifar10", data_dir=tmp_path, progress=False)
    assert "data_batch_2" in message and "posix.system" in message
    assert not marker.exists()


def test_cifar_batches_meta_that_would_run_a_command_is_ignored_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_folder(folder)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": _Payload(marker)}, protocol=2))
    ds = load_dataset("cifar10", data_dir=tmp_path, progress=False)
    assert ds.classes[0] == "airplane" and not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_batch_in_the_original_format_still_loads(tmp_path, protocol):
    x = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    path = write(tmp_path, "data_batch_1", pickle.dumps(
        {b"batch_label": b"training batch 1 of 5", b"labels": [3, 7], b"data": x,
         b"filenames": [b"x.png", b"y.png"]}, protocol=protocol))
    images, labels = read_cifar_batch(path)
    assert labels.tolist() == [3, 7] and images.shape == (2, 32, 32, 3)
    assert np.array_equal(images[1], x[1].reshape(3, 32, 32).transpose(1, 2, 0))


def test_cifar_batch_with_other_than_uint8_pixels_is_refused(tmp_path):
    path = write(tmp_path, "b", pickle.dumps({b"data": np.zeros((1, 3072), np.float64), b"labels": [0]}, 2))
    assert "float64" in one_line_error(read_cifar_batch, path)


# ---------------------------------------------------------------- 3. one validator for every entry point

@pytest.mark.parametrize("text,field", [
    ("ir_r1_k4_s1_e1_c16", "kernel"), ("ir_r1_k0_s1_e1_c16", "kernel"), ("ir_r1_k3_s3_e1_c16", "stride"),
    ("ir_r1_k3_s0_e1_c16", "stride"), ("ir_r1_k3_s1_e1_c0", "out"), ("ir_r0_k3_s1_e1_c16", "r0"),
    ("ir_r1_k3_s1_e0_c16", "e0"), ("ir_r1_k3_s1_enan_c16", "enan"), ("ir_r1_k3_s1_einf_c16", "einf"),
    ("ir_r1_k3_s1_e1e400_c16", "e1e400"), ("ir_r1_k3_s1_e6_c16_sejunk", "sejunk"),
    ("ir_r1_k3_s1_e6_c16_se", "se"), ("ir_r1_k3_k5_s1_c16", "twice"), ("ir_r1_k3_s1_c-16", "c-16"),
    ("ir_r1_k99999999999_s1_c16", "k99999999999"), ("dsa_r1_k3_s1_c16_se0.25", "se"),
    ("ds_r1_k3_s1_e6_c16", "e6"), ("ir_r1_k3_s1_e6_c99999", "out"), ("ir_r1_k3_s1_e9999_c16", "exp"),
])
def test_bad_block_string_is_one_line_naming_the_option(text, field):
    assert field in one_line_error(resolve_arch, text)


def test_block_string_ratio_zero_is_refused_not_rounded_up():
    assert "ratio > 0" in one_line_error(decode_blocks, "ir_r1_k3_s1_e0_c16", 16)


def test_block_string_with_a_million_repeats_is_refused_at_once():
    message, peak = with_peak_memory(one_line_error, decode_blocks, "ir_r1000000_k3_s1_e6_c16", 16)
    assert f"1 to {MAX_BLOCKS}" in message and peak < 5_000_000  # no million blocks were built


def test_block_string_repeats_add_up_to_at_most_max_blocks():
    text = " ".join(["ir_r600_k3_s1_e1_c16"] * 2)
    assert "r600" in one_line_error(decode_blocks, text, 16)


@pytest.mark.parametrize("override,field", [
    ({"resolution": 1}, "resolution"), ({"resolution": 7}, "resolution"),
    ({"resolution": MAX_RESOLUTION + 1}, "resolution"), ({"width": 0.0}, "width_mult"),
    ({"width": -1.0}, "width_mult"), ({"width": float("nan")}, "width_mult"),
    ({"width": float("inf")}, "width_mult"), ({"width": MAX_WIDTH_MULT * 2}, "width_mult"),
    ({"num_classes": 0}, "num_classes"), ({"num_classes": MAX_NUM_CLASSES + 1}, "num_classes"),
])
def test_width_and_resolution_overrides_get_the_json_checks(override, field):
    assert one_line_error(resolve_arch, "mobilenet_v3_small", **override).startswith(field)


def test_an_overridden_arch_that_is_written_reads_back(tmp_path):
    arch = resolve_arch("mobilenet_v2", width=0.35, resolution=8)
    assert load_arch(save_arch(arch, tmp_path / "a.json")) == arch


def test_space_whose_largest_sample_fails_the_arch_checks_is_refused_at_load():
    d = space_dict()
    d["head"]["conv_ratio"] = 60  # the cheapest head is 96 x 60 channels; the largest 2000 x 60
    d["stages"][-1]["width"] = [96, 2000]
    message = one_line_error(space_from_dict, d)
    assert "largest architecture" in message and "head.conv" in message


def _names():
    return st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=20)


@st.composite
def valid_arch_dicts(draw, for_block_string=False):
    """Random architecture documents inside the limits (kept small so they stay cheap); with
    `for_block_string`, only what a block string can say (expanded widths the input width or a
    multiple of 8, "ds" blocks without exp and se)."""
    acts, odd = st.sampled_from(nas.arch.ACTIVATIONS), st.sampled_from([1, 3, 5, 7])
    stem_out = draw(st.integers(1, 64))
    blocks, cin = [], stem_out
    for _ in range(draw(st.integers(1, 6))):
        b = {"type": draw(st.sampled_from(["ir", "ds"])), "kernel": draw(odd),
             "out": draw(st.integers(1, 96)), "stride": draw(st.sampled_from([1, 2])), "act": draw(acts)}
        exp = st.just(cin) | st.integers(1, 32).map(lambda k: 8 * k) if for_block_string else st.integers(1, 256)
        if b["type"] == "ir":
            b.update(exp=draw(exp), se=draw(st.booleans()))
        elif not for_block_string and draw(st.booleans()):
            b.update(exp=cin, se=False)
        blocks.append(b)
        cin = b["out"]
    optional = st.none() | st.integers(1, 512)
    return {"name": draw(_names()), "resolution": draw(st.integers(8, 256)),
            "width_mult": draw(st.floats(0.01, 4.0)), "num_classes": draw(st.integers(1, 1000)),
            "stem": {"out": stem_out, "kernel": draw(odd), "stride": draw(st.sampled_from([1, 2])),
                     "act": draw(acts)},
            "blocks": blocks,
            "head": {"conv": draw(optional), "hidden": draw(optional), "act": draw(acts),
                     "dropout": draw(st.floats(0, 0.99))}}


@FUZZ
@given(valid_arch_dicts())
def test_any_valid_arch_round_trips_through_json(d):
    arch = arch_from_dict(d)
    assert loads_arch(dumps_arch(arch)) == arch


@FUZZ
@given(valid_arch_dicts(for_block_string=True))
def test_any_valid_arch_round_trips_through_the_block_string_where_representable(d):
    arch = arch_from_dict(d)
    try:
        text = encode_blocks(arch.blocks, arch.stem.out)
    except NasError:  # an expanded width no decimal ratio of its input reproduces
        assume(False)
    assert decode_blocks(text, arch.stem.out) == arch.blocks


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_sampled_architectures_pass_the_json_checks(seed):
    arch = random_arch(load_space(), random.Random(seed))
    assert arch_from_dict(json.loads(dumps_arch(arch))) == arch


# ---------------------------------------------------------------- 4. documented upper bounds

@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["stem"].update(out=MAX_CHANNELS + 1), "stem.out"),
    (lambda d: d["blocks"][3].update(exp=10 ** 6), "blocks[3].exp"),
    (lambda d: d["blocks"][3].update(out=10 ** 9), "blocks[3].out"),
    (lambda d: d["blocks"][3].update(kernel=MAX_KERNEL + 2), "blocks[3].kernel"),
    (lambda d: d["head"].update(hidden=10 ** 7), "head.hidden"),
    (lambda d: d.update(resolution=10 ** 5), "resolution"),
    (lambda d: d.update(width_mult=1000.0), "width_mult"),
    (lambda d: d.update(num_classes=10 ** 8), "num_classes"),
    (lambda d: d.update(blocks=d["blocks"] * 100), "blocks"),
    (lambda d: d.update(name="x" * 10_000), "name"),
    (lambda d: d.update(name="two\nlines"), "name"),
])
def test_sizes_past_the_documented_limits_are_refused(mutate, field):
    d = v3_dict()
    mutate(d)
    assert one_line_error(arch_from_dict, d).startswith(field)


def test_network_bigger_than_memory_is_refused_before_anything_is_allocated():
    d = v3_dict()
    d.update(resolution=MAX_RESOLUTION, width_mult=MAX_WIDTH_MULT)
    message, peak = with_peak_memory(one_line_error, arch_from_dict, d)
    assert "GB" in message and "memory" in message and peak < 5_000_000


def test_memory_limit_is_the_machines(monkeypatch):
    monkeypatch.setattr(nas.arch, "machine_memory", lambda: 10_000_000)  # 10 MB
    assert "0.01 GB" in one_line_error(load_baseline, "mobilenet_v3_large")


def test_recipe_threads_are_at_most_the_machines_cores(tmp_path):
    path = write(tmp_path, "r.yaml", f"threads: {(os.cpu_count() or 1) + 1}\n")
    assert "cores" in one_line_error(load_recipe, path)
    assert load_recipe(write(tmp_path, "ok.yaml", f"threads: {os.cpu_count() or 1}\n")).threads == os.cpu_count()


# ---------------------------------------------------------------- 5. files that are not what they claim

def test_non_utf8_architecture_file_is_one_line(tmp_path):
    path = write(tmp_path, "a.json", b'{"name": "caf\xe9"}')
    assert "not UTF-8" in one_line_error(load_arch, path)


def test_non_utf8_space_file_is_one_line(tmp_path):
    path = write(tmp_path, "s.yaml", DEFAULT_SPACE.read_bytes() + b"# \xff\xfe\n")
    assert "not UTF-8" in one_line_error(load_space, path)


def test_non_utf8_recipe_file_is_one_line(tmp_path):
    path = write(tmp_path, "r.yaml", b"epochs: 2 # \x80\n")
    assert "not UTF-8" in one_line_error(load_recipe, path)


def test_file_larger_than_the_cap_is_refused_without_reading_it_all(tmp_path):
    path = write(tmp_path, "a.json", b" " * (MAX_FILE_BYTES + 1))
    assert "larger than" in one_line_error(read_text, path)


def test_json_nested_100k_deep_is_refused():
    assert "nested" in one_line_error(loads_arch, "[" * 100_000 + "]" * 100_000)


def test_5000_digit_integer_is_refused_without_printing_it():
    d = v3_dict()
    d["resolution"] = 10 ** 5000
    assert len(one_line_error(arch_from_dict, d)) < 200
    assert "5001 digits" in one_line_error(loads_arch, '{"resolution": 1' + "0" * 5000 + "}")


@pytest.mark.parametrize("text", ['{"a": NaN}', '{"a": Infinity}', '{"a": -Infinity}'])
def test_json_nan_and_infinity_are_refused(text):
    assert "not JSON" in one_line_error(loads_json, text, "x")


def test_duplicate_json_key_is_refused_naming_it():
    text = dumps_arch(load_baseline("mobilenet_v3_small")).replace('"resolution": 224,',
                                                                    '"resolution": 224, "resolution": 8,')
    assert "duplicate key 'resolution'" in one_line_error(loads_arch, text)


def test_duplicate_yaml_key_is_refused_naming_it(tmp_path):
    space = write(tmp_path, "s.yaml", DEFAULT_SPACE.read_text() + "num_classes: 10\n")
    assert "duplicate key 'num_classes'" in one_line_error(load_space, space)
    recipe = write(tmp_path, "r.yaml", "epochs: 2\nlr: 0.1\nepochs: 3\n")
    assert "duplicate key 'epochs'" in one_line_error(load_recipe, recipe)


def _alias_bomb(key: str) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + f"\n{key}: *a9\n"


@pytest.mark.parametrize("loader,key", [(load_space, "name"), (load_recipe, "dataset")])
def test_yaml_alias_bomb_is_refused_quickly(tmp_path, loader, key):
    path = write(tmp_path, "bomb.yaml", _alias_bomb(key))
    message, peak = with_peak_memory(one_line_error, loader, path)
    assert "expands to more than" in message and peak < 50_000_000  # 9^10 strings were never made


def test_self_referencing_yaml_alias_is_refused():
    assert "expands" in one_line_error(loads_yaml, "a: &a [*a]", "x")


def test_yaml_keys_that_are_not_names_are_refused():
    assert "key 1" in one_line_error(loads_yaml, "1: 2", "x")


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.update(num_classes="ten"), "space.num_classes"),
    (lambda d: d.update(num_classes=0), "space.num_classes"),
    (lambda d: d.update(name=["a"]), "space.name"),
    (lambda d: d["head"].update(act="gelu"), "space.head.act"),
    (lambda d: d["head"].update(dropout=5), "space.head.dropout"),
    (lambda d: d["head"].update(conv_ratio="six"), "space.head.conv_ratio"),
    (lambda d: d["head"].update(conv_ratio=float("nan")), "space.head.conv_ratio"),
    (lambda d: d["head"].update(colour=1), "space.head.colour"),
    (lambda d: d["block"].update(expand=[3, float("nan")]), "space.stages[1].expand[1]"),
    (lambda d: d["block"].update(expand=[float("inf")]), "space.stages[1].expand[0]"),
    (lambda d: d["block"].update(kernel=[3, 4]), "space.stages[1].kernel[1]"),
    (lambda d: d["block"].update(act=["gelu"]), "space.stages[1].act[0]"),
    (lambda d: d["block"].update(se=[1]), "space.stages[1].se[0]"),
    (lambda d: d.update(block=[1, 2]), "space.block"),
    (lambda d: d["stages"][2].update(stride=True), "space.stages[2].stride"),
    (lambda d: d["stages"][2].update(depth=[0]), "space.stages[2].depth[0]"),
    (lambda d: d["stages"][2].update(width=[10 ** 9]), "space.stages[2].width[0]"),
    (lambda d: d.update(resolution=[1]), "space.resolution[0]"),
    (lambda d: d.update(width_mult=[True]), "space.width_mult[0]"),
    (lambda d: d["stem"].update(out=0), "space.stem.out"),
])
def test_bad_search_space_field_is_one_line_naming_it(mutate, field):
    d = space_dict()
    mutate(d)
    assert one_line_error(space_from_dict, d).startswith(field)


def test_gelu_head_is_refused_when_the_space_loads_not_after_training(tmp_path):
    text = DEFAULT_SPACE.read_text().replace("act: hswish, dropout", "act: gelu, dropout")
    assert "head.act: 'gelu'" in one_line_error(load_space, write(tmp_path, "s.yaml", text))


@pytest.mark.parametrize("where", ["file", "proc"])
def test_writing_an_arch_where_no_file_can_be_is_one_line(tmp_path, where):
    blocker = write(tmp_path, "blocker", "x")
    out = blocker / "a.json" if where == "file" else Path("/proc/nas-no-such/a.json")
    assert str(out) in one_line_error(save_arch, load_baseline("mobilenet_v1"), out)


# ---------------------------------------------------------------- the command line

def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize("args", [
    ["show", "ir_r0_k3_s1_e1_c16"], ["show", "ir_r1000000_k3_s1_e1_c16"], ["show", "ir_r1_k3_s1_enan_c16"],
    ["show", "mobilenet_v2", "--resolution", "1"], ["show", "mobilenet_v2", "--width", "nan"],
    ["show", "x" * 5000], ["show", "BAD_UTF8"], ["show", "DEEP"], ["show", "DUPLICATE"],
    ["train", "mobilenet_v3_small", "--recipe", "BOMB"],
    ["export", "mobilenet_v1", "--format", "json", "--out", "UNDER_A_FILE"],
    ["export", "mobilenet_v1", "--format", "string", "--out", "UNDER_A_FILE"],
    ["export", "mobilenet_v1", "--format", "json", "--out", "/proc/nas-no-such/a.json"],
])
def test_bad_input_on_the_command_line_is_exit_2_and_one_line(tmp_path, args):
    files = {"BAD_UTF8": write(tmp_path, "bad.json", b"\xff{}"),
             "DEEP": write(tmp_path, "deep.json", "[" * 100_000),
             "DUPLICATE": write(tmp_path, "dup.json", '{"name": "a", "name": "b"}'),
             "BOMB": write(tmp_path, "bomb.yaml", _alias_bomb("name")),
             "UNDER_A_FILE": write(tmp_path, "blocker", "x") / "a.json"}
    code, out = cli(*[str(files.get(a, a)) for a in args])
    assert code == 2, out
    assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out


# ---------------------------------------------------------------- fuzzing the loaders

json_trees = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                          lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                          max_leaves=20)


def nas_error_or(call, *args, kind=object):
    """Call and return the result, which must be a `kind`, unless it raises NasError."""
    try:
        result = call(*args)
    except NasError as e:
        assert "\n" not in str(e)
        return None
    assert isinstance(result, kind)
    return result


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_give_a_nas_error_or_a_valid_object(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("fuzz")
    for name, loader, kind in [("a.json", load_arch, Arch), ("s.yaml", load_space, object),
                               ("r.yaml", load_recipe, object), ("data_batch_1", read_cifar_batch, tuple)]:
        nas_error_or(loader, write(folder, name, data), kind=kind)


@FUZZ
@given(json_trees)
def test_random_json_trees_give_a_nas_error_or_an_arch(tree):
    nas_error_or(loads_arch, json.dumps(tree), kind=Arch)


@FUZZ
@given(st.sampled_from(["name", "resolution", "width_mult", "num_classes", "stem", "blocks", "head",
                        "stem.out", "stem.kernel", "head.conv", "head.dropout", "block.exp", "block.kernel",
                        "block.se", "block.type", "block.stride"]), json_trees)
def test_a_random_value_in_any_arch_field_gives_a_nas_error_or_an_arch(field, value):
    d = v3_dict()
    where, _, key = field.partition(".")
    target = d if not key else (d["blocks"][4] if where == "block" else d[where])
    target[key or where] = value
    nas_error_or(arch_from_dict, d, kind=Arch)


@FUZZ
@given(st.sampled_from(["name", "num_classes", "resolution", "width_mult", "stem", "block", "stages",
                        "head", "head.act", "head.conv_ratio", "block.expand", "block.kernel"]), json_trees)
def test_a_random_value_in_any_space_field_gives_a_nas_error_or_a_space(field, value):
    d = space_dict()
    where, _, key = field.partition(".")
    (d[where] if key else d)[key or where] = value
    nas_error_or(loads_then_space, yaml.safe_dump(d))


def loads_then_space(text: str):
    return space_from_dict(loads_yaml(text, "space"))


@FUZZ
@given(st.text(alphabet="irdsa_0123456789.kecnrh6 ,-", max_size=40))
def test_random_block_strings_give_a_nas_error_or_blocks(text):
    nas_error_or(decode_blocks, text, 16, kind=tuple)


@FUZZ
@given(st.text(max_size=80))
def test_random_yaml_text_gives_a_nas_error_or_data(text):
    nas_error_or(loads_yaml, text, "x")
