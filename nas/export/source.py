"""What an export writes: `select_source` turns a run folder, baseline name, architecture JSON or
block string and the options into an `ExportSource` (architecture, weights, where from)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.arch import Arch
from nas.blockstring import looks_like_block_string
from nas.cost import arch_cost
from nas.errors import NasError
from nas.search.policy import Status

INIT_SEED = 0              # initialised weights are reproducible


@dataclass(frozen=True)
class ExportSource:
    """What gets exported: the architecture, its weights (None: initialised) and where from.
    `weights` is "trained" or "initialised"; `note` says why, in one sentence."""

    arch: Arch
    state_dict: dict | None
    weights: str
    note: str
    run: str | None = None
    trial: int | None = None
    accuracy: float | None = None
    dataset: str | None = None
    notes: tuple[str, ...] = ()
    normalisation: dict | None = None  # trained weights: the input normalisation they expect

def select_source(source: str, trial: int | None = None, best: bool = False, width: float | None = None,
                  resolution: int | None = None, num_classes: int | None = None,
                  deploy_arch: bool = False) -> ExportSource:
    """Resolve SOURCE (a run folder, baseline name, architecture JSON or block string) and the
    options into the network to export; see the module docstring for the rules."""
    from nas.baselines import reference_names
    from nas.resolve import resolve_arch

    path = Path(source)
    if path.is_dir():
        return _source_from_run(source, trial, width, resolution, num_classes, deploy_arch)
    if trial is not None or best:
        raise NasError(f"--trial/--best pick a trial of a run folder; {source!r} is not a folder")
    if (source not in reference_names() and not path.exists() and path.suffix != ".json"
            and not looks_like_block_string(source)):
        raise NasError(f"{source!r}: no such run folder or architecture; expected a run folder (runs/NAME), "
                       f"a baseline or published network ({', '.join(reference_names())}), an architecture JSON file "
                       "or a block string like 'ir_r1_k3_s1_e1_c16_nre'")
    arch = resolve_arch(source, width, resolution, num_classes)
    return ExportSource(arch, None, "initialised",
                        f"initialised weights (seed {INIT_SEED}): {source!r} is an architecture, not a run folder")

def _source_from_run(run_dir: str, trial: int | None, width: float | None, resolution: int | None,
                     num_classes: int | None, deploy_arch: bool) -> ExportSource:
    from nas.search.rundir import open_run

    run = open_run(run_dir)
    t = run.trial(trial) if trial is not None else run.best()
    where = f"trial {t.number} of {run.path}"
    ckpt = run.checkpoint_path(t.number)
    reshaped = any(v is not None for v in (width, resolution, num_classes))
    common = {"run": str(run.path), "trial": t.number, "accuracy": t.accuracy,
              "dataset": run.config.get("dataset"), "notes": run.notes}
    if ckpt is not None and not reshaped and not deploy_arch:
        c = run.checkpoint(t)
        a = c.proxy_arch
        acc = f", val accuracy {c.accuracy:.4f}" if c.accuracy is not None else ""
        note = (f"trained weights of {where}: the proxy network trained on {c.dataset or 'the proxy data'} "
                f"({a.resolution}x{a.resolution} input, {a.num_classes} classes{acc}); "
                "pass --deploy-arch for the deployment architecture with initialised weights")
        return ExportSource(a, c.state_dict, "trained", note, **(common | {"accuracy": c.accuracy,
                                                                            "dataset": c.dataset or common["dataset"],
                                                                            "normalisation": c.normalisation}))
    if ckpt is not None:
        why = ("--width/--resolution/--num-classes change the shapes the checkpoint was trained at"
               if reshaped else "--deploy-arch asked for the deployment architecture")
    elif t.state == Status.COMPLETE:
        why = "no checkpoint: the search keeps the weights of Pareto-front trials only"
    else:
        why = f"the trial was not trained to the end (state {t.state})"
    arch = t.arch.with_overrides(width=width, resolution=resolution, num_classes=num_classes)
    note = f"initialised weights (seed {INIT_SEED}) of the deployment architecture of {where}: {why}"
    return ExportSource(arch, None, "initialised", note, **common)

def describe_source(source: ExportSource) -> str:
    """One line naming the network: architecture name, input size, classes, width."""
    a = source.arch
    return (f"{a.name}: {a.resolution}x{a.resolution} input, {a.num_classes} classes, width x{a.width_mult:g}, "
            f"{arch_cost(a).params:,} parameters")
