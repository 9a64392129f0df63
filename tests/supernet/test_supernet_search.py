"""`nas search --evaluator supernet`: candidates scored as subnets of a trained supernet, the
finalists trained before the winner is named."""

import json

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from nas.cli import main
from nas.supernet import train_supernet
from supernet_toy import TINY, TOY_SPACE, tiny_recipe, toy_space_file  # noqa: F401 (fixtures)


@pytest.fixture
def trained(tmp_path, toy_space_file, tiny_recipe):
    train_supernet(toy_space_file, tiny_recipe, tmp_path / "sn")
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    return tmp_path / "sn", toy_space_file, recipe


def search(*args):
    return CliRunner().invoke(main, ["search", "--no-progress", "--workers", "1", "--target", "pixel",
                                     "--budget", "60ms", *map(str, args)])


def test_a_search_scores_candidates_as_subnets_and_trains_its_finalists(trained, tmp_path):
    sn, space, recipe = trained
    out = tmp_path / "run"
    result = search("--space", space, "--recipe", recipe, "--evaluator", "supernet", "--supernet", sn,
                    "--trials", 5, "--confirm", 2, "--confirm-seeds", 2, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    trials = pd.read_csv(out / "trials.csv")
    sampled = trials[trials["baseline"].isna() & (trials["state"] == "COMPLETE")]
    assert len(sampled) >= 1 and sampled["accuracy"].between(0, 1).all()
    # the MobileNetV3 baselines are not subnets of the toy space: they fail, saying why
    baselines = trials[trials["baseline"].notna()]
    assert (baselines["state"] == "FAIL").all()
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())  # subnets keep no weights
    confirmation = json.loads((out / "confirmation.json").read_text())
    assert confirmation["seeds"] == [0, 1]  # trained at 2 seeds; the subnet's accuracy is not one of them
    assert all(set(f["scores"]) == {"0", "1"} for f in confirmation["finalists"])
    rows = pd.read_csv(out / "confirm.csv")
    assert set(rows["key"]) == {f"trial {f['trial']}@seed {s}" for f in confirmation["finalists"] for s in (0, 1)}
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["evaluator"] == "supernet" and saved["score"] == "proxy"


@pytest.mark.parametrize("args, message", [
    (("--evaluator", "supernet"), "--evaluator supernet needs --supernet DIR"),
    (("--supernet", "SN"), "only read with --evaluator supernet"),
    (("--evaluator", "supernet", "--supernet", "SN", "--score", "imagenet-estimate"), "use --score proxy"),
    (("--evaluator", "supernet", "--supernet", "SN", "--space", "search_spaces/mobilenet_v3.yaml"),
     "was trained on the space"),
])
def test_a_supernet_search_that_cannot_run_is_refused_in_one_line_leaving_nothing(trained, tmp_path, args, message):
    sn, space, recipe = trained
    args = tuple(str(sn) if a == "SN" else a for a in args)
    if "--space" not in args:
        args += ("--space", str(space))
    out = tmp_path / "refused"
    result = search("--recipe", recipe, "--trials", 2, "--out", out, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()
