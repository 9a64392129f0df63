"""`nas report` and the run-folder reader, on a small run folder built here.

FIXTURE DATA: the run folder below is made by this file, not by a search. Its architectures are
real (the shipped baselines and architectures sampled from the shipped search space), but the
accuracies, the latencies (a linear function of multiply-adds) and the checkpoint (the state_dict
of an untrained network with BatchNorm statistics set by a few forward passes on noise) are
made up, to test the report and export mechanics only.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from click.testing import CliRunner

from nas.arch import Arch, arch_to_dict, save_arch
from nas.baselines import load_baseline
from nas.blockstring import encode_blocks
from nas.builder import build
from nas.cli import main
from nas.cost import arch_cost
from nas.errors import NasError
from nas.latency import predict_latency
from nas.report import best_so_far, gather, write_report
from nas.checkpoint import load_checkpoint
from nas.search.rundir import open_run
from nas.search.trials_table import TRIAL_COLUMNS, pareto_front, read_trials_csv
from nas.space import load_space, random_arch

BUDGET_MS = 10.0
TARGET = "local-cpu"


def fixture_latency_ms(arch: Arch) -> float:
    """Made-up latency for the fixture: 0.1 ms per million multiply-adds."""
    return round(arch_cost(arch).madds / 1e7, 3)


def fixture_proxy(arch: Arch) -> Arch:
    """The fixture's proxy network: 32 px input, 10 classes, stem at stride 1."""
    return replace(arch, resolution=32, num_classes=10, stem=replace(arch.stem, stride=1))


def fixture_state_dict(arch: Arch) -> dict:
    """Untrained weights whose BatchNorm statistics come from noise, so outputs are O(0.1-1)."""
    torch.manual_seed(0)
    model = build(arch)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0, m.in_features ** -0.5)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, arch.resolution, arch.resolution))
    return model.state_dict()


def _row(number: int, state: str, arch: Arch, accuracy: float | None, baseline: str = "",
         epochs: list[float] | None = None) -> dict:
    cost = arch_cost(arch)
    epochs = epochs if epochs is not None else ([round(accuracy - 0.1, 4), accuracy] if accuracy else [])
    return {"number": number, "state": state, "baseline": baseline, "arch": json.dumps(arch_to_dict(arch)),
            "block_string": encode_blocks(arch.blocks, arch.stem.out), "params": cost.params, "madds": cost.madds,
            "latency_ms": fixture_latency_ms(arch), "accuracy_epochs": json.dumps(epochs),
            "accuracy": accuracy if state == "COMPLETE" else None, "seconds": 12.5,
            "trial_params": json.dumps({"resolution": arch.resolution})}


def make_run_folder(root: Path) -> dict:
    """Write a run folder per the run-folder contract; return facts the tests check against:
    {"path", "winner", "failed", "pruned", "rejected", "no_checkpoint", "winner_arch", "proxy_arch"}."""
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    large = load_baseline("mobilenet_v3_large").with_overrides(width=0.5, resolution=128)
    large = replace(large, name="mobilenet_v3_large_0.5_128")
    small = load_baseline("mobilenet_v3_small").with_overrides(resolution=160)
    space = load_space()
    rng = random.Random(3)
    sampled = [replace(random_arch(space, rng), resolution=128, width_mult=0.5, name=f"trial_{i}") for i in range(6)]
    sampled.sort(key=fixture_latency_ms)
    rows = [_row(0, "COMPLETE", large, 0.61, "mobilenet_v3_large"),
            _row(1, "COMPLETE", small, 0.55, "mobilenet_v3_small"),
            _row(2, "COMPLETE", sampled[0], 0.58),
            _row(3, "COMPLETE", sampled[1], 0.66),
            _row(4, "PRUNED", sampled[2], None, epochs=[0.31]),
            _row(5, "FAIL", sampled[3], None),
            _row(6, "COMPLETE", sampled[4], 0.63),
            _row(7, "RUNNING", sampled[5], None)]
    over = replace(load_baseline("mobilenet_v3_large"), name="trial_8")
    rows.append(_row(8, "REJECTED", over, None))
    frame = pd.DataFrame(rows, columns=TRIAL_COLUMNS)
    assert frame.loc[frame["state"] == "COMPLETE", "latency_ms"].max() <= BUDGET_MS < rows[-1]["latency_ms"]
    frame.to_csv(run / "trials.csv", index=False)
    front = pareto_front(frame)
    front.to_csv(run / "pareto.csv", index=False)
    winner = int(frame[frame["state"] == "COMPLETE"].sort_values("accuracy").iloc[-1]["number"])
    winner_arch = sampled[1]
    save_arch(winner_arch, run / "best.json")
    proxy = fixture_proxy(winner_arch)
    torch.save({"arch": arch_to_dict(winner_arch), "proxy_arch": arch_to_dict(proxy),
                "state_dict": fixture_state_dict(proxy), "accuracy": 0.66, "dataset": "cifar10",
                "normalisation": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]}},
               run / "checkpoints" / f"trial_{winner}.pt")
    config = {"target": TARGET, "budget_ms": BUDGET_MS, "objective": "constrained", "sampler": "tpe",
              "engine": "optuna", "space": "search_spaces/mobilenet_v3.yaml", "recipe": {"epochs": 2},
              "seed": 0, "trials": 9, "dataset": "cifar10", "created": "2025-01-01T00:00:00+00:00"}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "summary.md").write_text("# fixture\n")
    no_ckpt = [int(n) for n in front["number"] if int(n) != winner][0]
    return {"path": run, "winner": winner, "failed": 5, "pruned": 4, "rejected": 8, "no_checkpoint": no_ckpt,
            "winner_arch": winner_arch, "proxy_arch": proxy, "front": sorted(int(n) for n in front["number"])}


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> dict:
    return make_run_folder(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def written(run_folder) -> dict:
    result = write_report(run_folder["path"])
    return {"result": result, "md": (run_folder["path"] / "report.md").read_text()}


# ---------------------------------------------------------------- run folder reading

def test_a_trials_csv_from_before_the_estimate_column_is_read_with_it_empty(tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parent.parent / "experiments" / "real_run" / "pixel-60ms", run)
    assert "imagenet_estimate" not in (run / "trials.csv").read_text().splitlines()[0]
    trials = read_trials_csv(run / "trials.csv")
    assert list(trials.columns) == TRIAL_COLUMNS and trials["imagenet_estimate"].isna().all()
    assert len(trials) == 48


def test_trial_columns_are_the_contract():
    assert TRIAL_COLUMNS == ["number", "state", "baseline", "arch", "block_string", "params", "madds",
                             "latency_ms", "accuracy_epochs", "accuracy", "imagenet_estimate", "seconds", "device",
                             "trial_params", "rung", "rung_accuracy", "rung_score"]


def test_read_trials_keeps_empty_baseline_as_text_and_accuracy_as_nan(run_folder):
    t = read_trials_csv(run_folder["path"] / "trials.csv")
    assert t.loc[t["number"] == 2, "baseline"].item() == ""
    assert t.loc[t["number"] == 0, "baseline"].item() == "mobilenet_v3_large"
    assert pd.isna(t.loc[t["number"] == 4, "accuracy"].item())
    assert t["number"].dtype.kind == "i"


def test_best_is_the_trial_of_best_json(run_folder):
    run = open_run(run_folder["path"])
    best = run.best()
    assert best.number == run_folder["winner"]
    assert best.arch == run_folder["winner_arch"]


def test_best_without_best_json_is_most_accurate_within_budget(tmp_path):
    facts = make_run_folder(tmp_path)
    (facts["path"] / "best.json").unlink()
    assert open_run(facts["path"]).best().number == facts["winner"]


def test_missing_run_folder_is_a_clear_error(tmp_path):
    with pytest.raises(NasError, match="no such run folder"):
        open_run(tmp_path / "nope")


def test_folder_without_trials_is_not_a_run(tmp_path):
    with pytest.raises(NasError, match="not a run folder"):
        open_run(tmp_path)


def test_unknown_trial_names_the_trials_there(run_folder):
    with pytest.raises(NasError, match=r"trial 99 is not in .*; its trials are 0-8"):
        open_run(run_folder["path"]).trial(99)


def test_failed_trial_is_an_error(run_folder):
    with pytest.raises(NasError, match="failed"):
        open_run(run_folder["path"]).trial(run_folder["failed"])


def test_checkpoint_only_for_kept_trials(run_folder):
    run = open_run(run_folder["path"])
    assert run.checkpoint_path(run_folder["winner"]) is not None
    assert run.checkpoint_path(run_folder["no_checkpoint"]) is None


def test_checkpoint_weights_belong_to_the_proxy_arch(run_folder):
    c = load_checkpoint(open_run(run_folder["path"]).checkpoint_path(run_folder["winner"]))
    assert c.proxy_arch == run_folder["proxy_arch"]
    build(c.proxy_arch).load_state_dict(c.state_dict)


def test_pareto_front_drops_dominated_trials():
    frame = pd.DataFrame({"number": [0, 1, 2, 3], "state": ["COMPLETE"] * 3 + ["PRUNED"],
                          "latency_ms": [10.0, 20.0, 15.0, 5.0], "accuracy": [0.5, 0.7, 0.4, None]})
    assert list(pareto_front(frame)["number"]) == [0, 1]


# ---------------------------------------------------------------- report

def test_report_writes_markdown_and_plots_into_the_run(written, run_folder):
    names = [p.name for p in written["result"].files]
    assert names[0] == "report.md"
    assert {"pareto.png", "progress.png"} <= set(names)
    for p in written["result"].files:
        assert p.parent == run_folder["path"] and p.stat().st_size > 1000


def test_plots_are_png_images(written):
    for p in written["result"].files[1:]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_headline_names_the_winner_and_baselines(written, run_folder):
    h = written["result"].headline
    assert h["winner"]["trial"] == run_folder["winner"]
    assert h["winner"]["accuracy"] == pytest.approx(0.66)
    assert h["winner"]["checkpoint"] is True
    assert h["budget_ms"] == BUDGET_MS
    assert h["states"]["COMPLETE"] == 5 and h["states"]["REJECTED"] == 1
    assert h["baselines"]["mobilenet_v3_large"]["accuracy"] == pytest.approx(0.61)
    assert h["baselines"]["mobilenet_v3_small"]["trial"] == 1


def test_report_markdown_has_top_k_table_and_dashboard_command(written, run_folder):
    md = written["md"]
    assert "## Top 10 trials by proxy accuracy" in md
    top = [l for l in md.split("## Top 10")[1].splitlines() if l.startswith("| 1 |")][0]
    assert f"| {run_folder['winner']} |" in top and "66.0" in top
    assert f"optuna-dashboard sqlite:///{run_folder['path'] / 'study.db'}" in md
    assert "![Proxy accuracy vs predicted latency](pareto.png)" in md


def test_top_k_limits_the_table(run_folder, tmp_path):
    result = write_report(run_folder["path"], top_k=2)
    md = result.files[0].read_text()
    table = md.split("## Top 2 trials by proxy accuracy")[1].split("##")[0]
    assert [l.split("|")[1].strip() for l in table.splitlines() if l.startswith("| ")][1:] == ["1", "2"]


def test_best_so_far_never_decreases_and_ignores_baselines(run_folder):
    facts = gather(open_run(run_folder["path"]))
    s = best_so_far(facts["trials"])
    assert 0 not in set(s["number"]) and 1 not in set(s["number"])
    best = s["best"].dropna().tolist()
    assert best == sorted(best) and best[-1] == pytest.approx(66.0)  # percent


def test_report_of_missing_run_is_an_error(tmp_path):
    with pytest.raises(NasError, match="no such run folder"):
        write_report(tmp_path / "nope")


def test_winner_latency_breakdown_lists_every_op(written, run_folder):
    names = [p.name for p in written["result"].files]
    assert "latency_blocks.png" in names
    pred = predict_latency(run_folder["winner_arch"], TARGET)
    assert written["result"].headline["winner_latency_breakdown_ms"]["total"] == pytest.approx(pred.latency_ms)
    table = written["md"].split("## Winner latency per block")[1].split("## ")[0]
    rows = [l for l in table.splitlines() if l.startswith("| ") and not l.startswith("| op")]
    assert len(rows) == len(run_folder["winner_arch"].layers()) + 1  # every op plus the overhead row


def test_unknown_target_leaves_a_note_not_a_crash(tmp_path):
    facts = make_run_folder(tmp_path)
    cfg = yaml.safe_load((facts["path"] / "config.yaml").read_text())
    (facts["path"] / "config.yaml").write_text(yaml.safe_dump(cfg | {"target": "no-such-device"}))
    result = write_report(facts["path"])
    assert "latency_blocks.png" not in [p.name for p in result.files]
    assert any("breakdown unavailable" in n for n in result.notes)


# ---------------------------------------------------------------- CLI

def test_report_cli_json_lists_files_and_headline(run_folder):
    result = CliRunner().invoke(main, ["report", str(run_folder["path"]), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["files"][0].endswith("report.md")
    assert data["headline"]["winner"]["trial"] == run_folder["winner"]


def test_report_cli_prints_where_it_wrote(run_folder):
    result = CliRunner().invoke(main, ["report", str(run_folder["path"]), "--no-progress"])
    assert result.exit_code == 0
    assert f"wrote {run_folder['path'] / 'report.md'}" in result.output
    assert "V3-Large" in result.output


def test_report_cli_missing_run_exits_2(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such run folder" in result.output


# ---------------------------------------------------------------- measured latency (measured.json)

@pytest.fixture
def real_run_copy(tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parent.parent / "experiments" / "real_run" / "pixel-60ms", run,
                    ignore=shutil.ignore_patterns("checkpoints"))
    return run


def _measured(run: Path, winner_name: str) -> dict:
    m = {"target": "local-cpu", "measured": True, "runtime": "onnxruntime 1.22.0", "threads": 1,
         "load_average": {"before": 0.5, "after": 0.6},
         "networks": [{"name": winner_name, "predicted_ms": 4.0, "measured_ms": 4.4, "error_pct": -9.1,
                       "label": "winner"},
                      {"name": "mobilenet_v3_large", "predicted_ms": 6.0, "measured_ms": 5.5, "error_pct": 9.1,
                       "label": "V3-Large"}]}
    (run / "measured.json").write_text(json.dumps(m))
    return m


def test_report_shows_the_measured_latency_beside_the_prediction(real_run_copy):
    winner = gather(open_run(real_run_copy))
    name = winner["trials"][winner["trials"]["number"] == winner["winner"]]["name"].iloc[-1]
    m = _measured(real_run_copy, name)
    result = write_report(real_run_copy)
    md = (real_run_copy / "report.md").read_text()
    assert "## Measured latency" in md and f"| winner ({name}) | 4.00 | 4.40 | -9.1 % |" in md
    assert result.headline["measured"] == m
    assert not any("measured" in n for n in result.notes)


def test_report_says_why_a_derived_target_was_not_measured(real_run_copy):
    md_result = write_report(real_run_copy)
    md = (real_run_copy / "report.md").read_text()
    assert "## Measured latency" in md and "not measured; target 'pixel' is derived" in md
    assert md_result.headline["measured"]["measured"] is False


def test_report_notes_a_measurement_of_another_winner(real_run_copy):
    _measured(real_run_copy, "some_other_trial")
    result = write_report(real_run_copy)
    assert any("timed some_other_trial as the winner" in n for n in result.notes)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"measured": true, "networks": [{"name": "x"}]}'])
def test_a_damaged_measured_json_is_a_note_not_a_failure(real_run_copy, text):
    (real_run_copy / "measured.json").write_text(text)
    result = write_report(real_run_copy)
    assert "measured" not in result.headline
    assert any(n.startswith("measured latency not shown:") for n in result.notes)
    assert "## Measured latency" not in (real_run_copy / "report.md").read_text()


def test_a_run_without_measured_json_has_no_measured_section(real_run_copy):
    (real_run_copy / "measured.json").unlink()
    result = write_report(real_run_copy)
    assert "measured" not in result.headline and "## Measured latency" not in (real_run_copy / "report.md").read_text()


def test_report_names_the_rho_a_search_was_narrowed_to(real_run_copy):
    write_report(real_run_copy)
    assert "Searched at rho" not in (real_run_copy / "report.md").read_text()  # a run from before --resolution
    config = real_run_copy / "config.yaml"
    config.write_text(config.read_text() + "resolution:\n- 224\n")
    write_report(real_run_copy)
    assert "Searched at rho 224 only (`--resolution`" in (real_run_copy / "report.md").read_text()
