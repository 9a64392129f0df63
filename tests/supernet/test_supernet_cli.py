"""`nas supernet train` / `eval` and `nas proxy truth score --supernet`: results and one-line errors."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nas.cli import main
from nas.proxy.truth import compare, load_truth, score_truth
from supernet_toy import TINY, toy_space_file  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[2]
TRUTH = ROOT / "experiments" / "truth" / "pixel-40-60"


def _recipe_file(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in TINY.items() if k != "epochs"))
    return path


def test_train_then_eval_prints_the_history_and_the_subnets_accuracy(toy_space_file, tmp_path):
    out = tmp_path / "sn"
    r = CliRunner().invoke(main, ["supernet", "train", "--space", str(toy_space_file), "--recipe",
                                  str(_recipe_file(tmp_path)), "--out", str(out), "--epochs", "1", "--json"])
    assert r.exit_code == 0, r.output
    assert [row["epoch"] for row in json.loads(r.output)["history"]] == [1]
    arch = {"name": "toy_pick", "resolution": 192, "width_mult": 1.0, "num_classes": 10,
            "stem": {"out": 8, "kernel": 3, "stride": 2, "act": "hswish"},
            "blocks": [{"type": "ir", "kernel": 3, "exp": 8, "out": 8, "se": False, "act": "relu", "stride": 1},
                       {"type": "ir", "kernel": 5, "exp": 24, "out": 16, "se": True, "act": "hswish", "stride": 2},
                       {"type": "ir", "kernel": 3, "exp": 48, "out": 24, "se": False, "act": "relu", "stride": 1}],
            "head": {"conv": 96, "hidden": 32, "act": "hswish", "dropout": 0.2}}
    (tmp_path / "pick.json").write_text(json.dumps(arch))
    r = CliRunner().invoke(main, ["supernet", "eval", str(out), str(tmp_path / "pick.json"), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert result["arch"] == "toy_pick" and 0 <= result["accuracy"] <= 1 and result["supernet_epochs"] == 1


@pytest.mark.parametrize("args, message", [
    (["supernet", "eval", "{tmp}/none", "mobilenet_v3_large"], "no supernet.pt"),
    (["supernet", "train", "--space", "{tmp}/missing.yaml", "--out", "{tmp}/sn"], "missing.yaml"),
    (["supernet", "train", "--out", "{tmp}/sn", "--recipe", "{tmp}/bad.yaml"], "lr"),
    (["supernet", "train", "--out", "{tmp}/sn", "--epochs", "0"], "--epochs"),
    (["proxy", "truth", "score", str(TRUTH), "--supernet", "{tmp}/none"], "no supernet.pt"),
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("lr: -1\n")
    r = CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.output and r.output.count("\n") == 1


def test_truth_score_adds_the_supernet_row(monkeypatch):
    class FakeEvaluator:
        def __init__(self, folder):
            assert folder == "sn-folder"

        def accuracy(self, arch, test=False):
            assert not test  # scored on the validation split, as a search ranks and as the proxy rows are
            return len(arch.blocks) / 100

    import nas.supernet

    monkeypatch.setattr(nas.supernet, "SubnetEvaluator", FakeEvaluator)
    truth = load_truth(TRUTH)
    result = score_truth(truth, "long", supernet="sn-folder")
    nets = [n for n in truth.networks if n.name in result["truth"]]
    expected = compare([len(n.arch.blocks) / 100 for n in nets], [result["truth"][n.name] / 100 for n in nets])
    assert result["scores"]["supernet"] == expected and "not_subnets" not in result


def test_truth_score_leaves_out_the_networks_the_supernet_does_not_hold(monkeypatch):
    from nas.errors import NasError

    class FakeEvaluator:
        def __init__(self, folder):
            pass

        def accuracy(self, arch, test=False):
            if arch.name.startswith("mobilenet"):
                raise NasError(f"{arch.name}: not a subnet")
            return len(arch.blocks) / 100 + sum(b.kernel for b in arch.blocks) / 1e4

    import nas.supernet

    monkeypatch.setattr(nas.supernet, "SubnetEvaluator", FakeEvaluator)
    truth = load_truth(TRUTH)
    result = score_truth(truth, "long", supernet="sn-folder")
    kept = [n for n in truth.networks if n.name in result["truth"] and not n.arch.name.startswith("mobilenet")]
    assert result["not_subnets"] and len(kept) == result["networks"] - len(result["not_subnets"])
    expected = compare([FakeEvaluator(None).accuracy(n.arch) for n in kept],
                       [result["truth"][n.name] / 100 for n in kept])
    assert result["scores"]["supernet"] == expected and expected["networks"] == len(kept)
