"""Building a measured table: enumerate the op signatures a search space (and the baselines) can
produce, time them on this machine, fit the per-op model, then the overhead model on whole
networks. Rows go to `<table>.partial` as they are timed, so a killed build resumes where it
stopped; the table itself is written whole at the end, so it never reads as complete when it is not.
"""

from __future__ import annotations

import csv
import datetime
import io
import os
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from nas.arch import Arch, Layer
from nas.baselines import baseline_names, load_baseline
from nas.errors import NasError
from nas.files import write_text_atomic
from nas.latency.machine import differences, describe, this_machine
from nas.latency.measure import (Canary, Pace, Runner, Timing, TimingPlan, arch_runner, boundary_share,
                                 check_runtime, cpu_name, layer_runner, load_average, pace_network,
                                 runtime_version, wait_for_quiet)
from nas.latency.model import (OVERHEAD_CANDIDATES, OpModel, choose_block, cross_validate, fit_op_model,
                               fit_overhead, loo_overhead, network_terms, overhead_terms, score_overhead_terms)
from nas.latency.predict import sum_of_ops
from nas.latency.table import (KEY_FORMAT, Row, Table, append_rows, building, finish_build, read_table, start_table,
                               write_table)
from nas.paths import EXPERIMENTS, SEARCH_SPACES, WRITTEN_LATENCY_TABLES
from nas.space import Space, load_space, random_arch, sample_arch

CALIBRATION_SEED = 1   # the build's random architectures; the first ones calibrate the overhead
VALIDATION_SEED = 2    # validation draws from another stream, so the two sets are disjoint
WIDE_SEED = 3          # the wide calibration networks (search_spaces/calibration_wide.yaml)
WIDE_SPACE = SEARCH_SPACES / "calibration_wide.yaml"
BATCH = 40             # ops timed together (interleaved); a batch is appended when done


def table_path(target: str) -> Path:
    return WRITTEN_LATENCY_TABLES / f"{target}.csv"


# ---------------------------------------------------------------- enumerating signatures

def head_layers(space: Space) -> list[Layer]:
    """Every stem, head conv, pool and classifier signature the space can produce."""
    out: dict[str, Layer] = {}
    last = len(space.stages) - 1
    for res in space.resolution:
        for alpha in space.width_mult:
            for width in space.stages[last].width:
                for hidden in space.head_hidden:
                    fixed = {"resolution": res, "width_mult": alpha, "head_hidden": hidden,
                             f"s{last}_width": width}
                    arch = sample_arch(space, lambda name, choices: fixed.get(name, choices[0]))
                    out.update((l.key, l) for l in arch.layers() if l.kind not in ("ir", "ds"))
    return list(out.values())


def calibration_archs(space: Space, count: int) -> list[Arch]:
    """The build's random architectures (seed CALIBRATION_SEED), in order."""
    rng = random.Random(CALIBRATION_SEED)
    return [random_arch(space, rng, f"cal{i:03d}") for i in range(count)]


def wide_archs(count: int) -> list[Arch]:
    """Random networks of the wide calibration space (seed WIDE_SEED), in order: networks unlike
    the search space's (plain depthwise-separable chains, wide 7x7 stages, big early activations),
    so that the overhead model is fitted on more than one kind of network."""
    rng = random.Random(WIDE_SEED)
    space = load_space(WIDE_SPACE)
    return [random_arch(space, rng, f"wide{i:03d}") for i in range(count)]


def wide_count(calibration: int) -> int:
    """Wide networks calibrated beside `calibration` random networks of the space."""
    return calibration // 2


def calibration_set(space: Space, calibration: int) -> list[Arch]:
    """The networks a build times end to end for its overhead model: the first `calibration`
    random ones of the space and `wide_count(calibration)` wide ones."""
    return calibration_archs(space, calibration) + wide_archs(wide_count(calibration))


def validation_archs(space: Space, count: int) -> list[Arch]:
    """Random architectures for validation, from a stream disjoint from the build's."""
    rng = random.Random(VALIDATION_SEED)
    return [random_arch(space, rng, f"val{i:03d}") for i in range(count)]


def build_layers(space: Space, samples: int, baselines: bool = True, heads: bool = True,
                 wide: int = 0) -> list[Layer]:
    """What a build times, in order: the baselines' ops, every head signature (with `heads`),
    the ops of `samples` random architectures (their own heads included), then those of `wide`
    wide calibration networks (so their sums of ops are timed, not modelled)."""
    out: dict[str, Layer] = {}
    for name in baseline_names() if baselines else []:
        out.update((l.key, l) for l in load_baseline(name).layers())
    if heads:
        out.update((l.key, l) for l in head_layers(space))
    for arch in calibration_archs(space, samples) + wide_archs(wide):
        out.update((l.key, l) for l in arch.layers())
    return list(out.values())


# ---------------------------------------------------------------- the build

@dataclass(frozen=True)
class BuildResult:
    path: Path
    timed: int            # ops timed in this run
    reused: int           # ops already in the table (resumed)
    op_model_cv_mape_pct: float
    calibration_mape_pct: float | None
    overhead_terms: list[str] | None = None  # the overhead model's terms (nas.latency.model.overhead_terms)
    warning: str | None = None  # the build's timings were too noisy to trust (`noise_warning`)


NOISY_PCT = 8.0  # op model CV MAPE or overhead LOO MAPE above which a build says its timings were noisy
# (quiet builds here: 2.6-5.8 % and 3.0-4.1 %; builds in a slow or noisy spell: 8.1-11.1 % and 6-13 %)


def noise_warning(path: Path, header: dict, quick: bool) -> str | None:
    """One line saying the build's timings were noisy (the op model's cross-validated MAPE or the
    overhead model's leave-one-out MAPE above NOISY_PCT) and what to do, or None. It says no more
    than that: how well a table validates did not follow these figures here (docs/latency.md)."""
    cv = header.get("op_model_fit", {}).get("cv_mape_pct", 0.0)
    loo = header.get("overhead_fit", {}).get("loo_mape_pct", 0.0)
    if max(cv, loo) <= NOISY_PCT:
        return None
    factors = header.get("pace", {})
    spread = (f", pace factors {factors['factor_min']}-{factors['factor_max']}"
              if "factor_min" in factors else "")
    return (f"this build's timings were noisy (op model CV MAPE {cv} %, overhead leave-one-out MAPE {loo} %, "
            f"where quiet builds here gave 3-6 %{spread}): when the machine is quiet (on a virtual machine the "
            f"load average does not show the host's other tenants), delete {path} and run "
            f"nas latency build --target {path.stem}{' --quick' if quick else ''} again, then check it with "
            f"nas latency validate --target {path.stem}")


def _measured_header(target: str, runtime: str, threads: int, space: Space, samples: int,
                     plan: TimingPlan, heads: bool = True, passes: int = 1, paced: bool = False) -> dict:
    return {
        "target": target, "device": f"{cpu_name()} (this machine)", "runtime": runtime,
        "runtime_version": runtime_version(runtime), "threads": threads,
        "date": datetime.date.today().isoformat(), "method": "measured", "measured_on": "machine",
        "machine": this_machine(runtime, threads),
        "how": (f"Each op built alone by nas.builder.build_layer, batch 1, float32, "
                f"{'exported to ONNX (opset 17) and ' if runtime == 'onnxruntime' else ''}"
                f"run on {threads} thread(s); {plan.warmup} warm-up runs, then single-run samples "
                f"({plan.min_samples}-{plan.max_samples}, about {plan.budget_s}s per op) in "
                f"{plan.rounds} interleaved rounds over batches of {BATCH} ops plus 2 canary ops "
                f"(a batch is timed again when the canaries run over 8 % slow); 1-thread runs are "
                f"timed on the thread's CPU clock, others on the wall clock; "
                + ("each op's run of samples in a round is scaled by the pace op's reference time over "
                   "its time just before (the machine's speed drifts; see pace), so ms are at the "
                   "reference pace; " if paced else "")
                + f"ms is the {plan.quantile:.0%} quantile of the samples left after rejecting those "
                f"beyond 3 scaled MADs (interference only adds time)"
                + (f"; every op is timed in {passes} passes over all the ops, in other batches, and keeps "
                   f"its fastest pass" if passes > 1 else "")
                + f". Ops: the baselines', "
                f"{'every head signature, ' if heads else ''}those of {samples} random "
                f"architectures of {Path(space.path).name} "
                f"(seed {CALIBRATION_SEED}) and of the wide calibration networks "
                f"({WIDE_SPACE.name}, seed {WIDE_SEED}); other ops come from op_model."),
        "clock": "thread CPU time" if threads == 1 else "wall",
        "key_format": KEY_FORMAT,
        "space": Path(space.path).name, "samples": samples,
    }


def _check_same_setup(table: Table, runtime: str, threads: int, path: Path) -> None:
    old = (table.header.get("runtime"), table.header.get("threads"))
    if table.rows and old != (runtime, threads):
        raise NasError(f"{path}: was measured with runtime {old[0]} on {old[1]} thread(s), not "
                       f"{runtime} on {threads}; use the same --runtime/--threads or another --target")


QUICK_PLAN = TimingPlan(warmup=2, rounds=4, min_samples=8, max_samples=40, budget_s=0.03, retries=1)
QUICK_SAMPLES = 24       # random networks whose ops a quick build times (about 410 ops with the baselines')
QUICK_CALIBRATION = 16   # of those, networks timed end to end for the overhead model (one batch)
QUICK_MAX_WAIT_S = 15.0  # seconds a quick build waits for a quiet machine before timing networks
# A quick build times every op in this many passes over all its ops, each op keeping its fastest:
# on its thin plan one pass left four builds' timings of the same 538 ops 7-20 % apart (MAPE),
# by spells that slow some ops of a batch and not others (the canaries do not see them); each
# op's faster of two builds came closer to a third than either alone (4.7-12.1 % against
# 6.8-19.9 %; experiments/latency/pace/default/op_repeat.py). A full build's plan takes
# about 8 times the samples per op and is timed in one pass.
QUICK_OP_PASSES = 2


def check_calibration(calibration: int, samples: int) -> None:
    """NasError unless `calibration` networks (of `samples`) can fit an overhead model."""
    if calibration > samples:
        raise NasError(f"calibration: {calibration} is not allowed; expected at most --samples ({samples})")
    if calibration == 1:
        raise NasError("calibration: 1 is not allowed; an overhead model needs 0 (none) or at least 2 networks")


def build_table(target: str, space: Space, runtime: str = "onnxruntime", threads: int = 1,
                samples: int = 100, calibration: int = 40, plan: TimingPlan = TimingPlan(),
                path: Path | None = None, progress: Callable[[Iterable, int], Iterable] | None = None,
                baselines: bool = True, max_wait_s: float = 600.0, quick: bool = False,
                edges: bool = False, pace_mode: str = "none", op_passes: int = 1) -> BuildResult:
    """Time every op of `build_layers(space, samples, wide=wide_count(calibration))` missing from
    the table, fit the op model on the table, then measure `calibration` of the build's random
    networks and the wide ones end to end and fit the overhead model (after waiting up to
    `max_wait_s` for the machine to be quiet). Builds in `<table>.partial` as it goes, so a
    killed build resumes, and writes `latency_tables/<target>.csv` (or `path`) whole when done;
    a second build of the same table meanwhile is refused (`nas.latency.table.building`).

    `pace_mode` (`--pace`, a new table only) says what scales timings to the machine's reference
    speed: "none" (raw, the default), "network" (ops by the pace op, networks by the pace network)
    or "op" (both by the pace op). Raw timings repeated best on both hosts measured on the one
    protocol (docs/latency.md, "Which pace a host needs").

    `op_passes` times every op that many times over (`time_ops`), each keeping its fastest.
    `quick` times only the ops of the baselines and of the `samples` networks (not every head
    signature of the space); pass QUICK_PLAN, QUICK_SAMPLES, QUICK_CALIBRATION and
    QUICK_OP_PASSES for the 3-minute build of `nas latency build --quick`. A table measured on another machine (its
    `machine` fingerprint differs) is not resumed: it is moved to `<file>.bak` and the build
    starts afresh."""
    check_runtime(runtime)
    if threads < 1:
        raise NasError(f"threads: {threads} is not allowed; expected an integer >= 1")
    check_calibration(calibration, samples)
    started = time.monotonic()
    path = Path(path or table_path(target))
    with building(path) as partial:
        base, existing = _tables_to_resume(path, partial, runtime, threads)
        if existing is not None:
            _check_same_setup(existing, runtime, threads, path)
            if quick and existing.rows and existing.header.get("build") != "quick":
                raise NasError(f"{path}: holds a full build; a --quick build would replace its calibration "
                               f"with a smaller one; use another --target (or drop --quick to extend it)")
        load_before = load_average()
        pace = _build_pace(existing, runtime, threads, pace_mode)
        header = _measured_header(target, runtime, threads, space, samples, plan, heads=not quick,
                                  passes=op_passes, paced=pace is not None)
        header["build"] = "quick" if quick else "full"
        if pace:
            header["pace"] = pace.header()
        edges = _subtracts_edges(existing, runtime, edges)
        if edges:
            header["edges"] = EDGES_SUBTRACTED
        table = start_table(partial, header, existing)
        wanted = build_layers(space, samples, baselines, heads=not quick, wide=wide_count(calibration))
        ours = [l for l in wanted if base is None or l.key not in base.rows]  # this build measures them
        todo = [l for l in ours if l.key not in table.rows]  # those an interrupted build had not timed yet
        reused = len(wanted) - len(todo)
        canary = Canary(runtime, threads, plan, pace=pace)
        kept: dict[str, Runner] | None = {} if op_passes > 1 else None  # runners made once for all passes
        for rows in time_ops(todo, canary, runtime, threads, edges, progress, runners=kept):
            append_rows(partial, rows)
            table.rows.update((r.key, r) for r in rows)
        table = read_table(partial)
        for p in range(1, op_passes if ours else 0):  # later passes: in memory, written once done
            for rows in time_ops(ours, canary, runtime, threads, edges, progress, pass_index=p, runners=kept):
                table.rows.update((r.key, r) for r in rows if r.ms < table.rows[r.key].ms)
            write_table(table, partial)
        del kept  # the ops' sessions go before the networks are timed
        if todo:
            table.header["contention"] = canary.summary()
        if pace:  # a new table's rows move with its pace's reference (a resumed table's stay)
            rescale(table, pace.anchor())
        ops_s = time.monotonic() - started
        cv = fit_table_model(table)
        cal_mape = None
        if calibration > 0:
            quiet = wait_for_quiet(max_wait_s=max_wait_s)
            net_pace = _network_pace(pace, runtime, threads, pace_mode)
            own = net_pace is not None and net_pace is not pace  # the pace network, not the op pace
            # canaries scaled by the pace network are in another unit than the op batches' canaries,
            # so a network-paced calibration sets its own canary reference
            reference = None if own else (table.header.get("contention", {}).get("canary_ms")
                                          or canary.summary()["canary_ms"])
            cal_canary = network_canary(runtime, threads, plan, reference, net_pace)
            archs = calibration_set(space, calibration)
            measured = measure_archs(archs, runtime, threads, plan, cal_canary)
            scale = net_pace.anchor() if own else 1.0
            cal_canary.rescale(scale)
            cal_mape = calibrate(table, archs, [m * scale for m in measured])
            table.header["calibration_contention"] = {**cal_canary.summary(), **quiet}
            if own:
                table.header["network_pace"] = net_pace.summary()
        if pace:
            table.header["pace"] = pace.summary()
        table.header["load_average"] = {"before": load_before, "after": load_average()}
        table.header["build_seconds"] = {"ops": round(ops_s), "total": round(time.monotonic() - started)}
        finish_build(table, path)
        terms = table.header["overhead_fit"]["terms"] if cal_mape is not None else None
        return BuildResult(path, len(todo), reused, cv, cal_mape, terms, noise_warning(path, table.header, quick))


def rescale(table: Table, scale: float) -> None:
    """Multiply every measured row's times and the op canaries' references by `scale` (their
    pace re-anchored: `Pace.anchor`)."""
    if scale == 1.0:
        return
    for key, r in table.rows.items():
        if r.source == "measured":
            table.rows[key] = replace(r, ms=r.ms * scale, mean_ms=r.mean_ms * scale, std_ms=r.std_ms * scale)
    canaries = table.header.get("contention", {}).get("canary_ms", {})
    for k in canaries:
        canaries[k] = round(canaries[k] * scale, 5)


EDGES_SUBTRACTED = ("onnxruntime profiler: each op's ms and mean_ms are less the share of its node time "
                    "spent in the layout reorders at its edges, which a network pays once, not per op")


def _subtracts_edges(existing: Table | None, runtime: str, wanted: bool = True) -> bool:
    """Whether a build takes each op's edge reorders off its time (nas.latency.measure.
    boundary_share): a new onnxruntime table when `wanted` (`nas latency build --edges`), or a
    resumed one whose rows were measured so; never a resumed table whose rows kept them."""
    if runtime != "onnxruntime":
        return False
    if existing is None or not existing.rows:
        return wanted
    return existing.header.get("edges") == EDGES_SUBTRACTED


def time_ops(layers: list[Layer], canary: Canary, runtime: str, threads: int, edges: bool,
             progress: Callable[[Iterable, int], Iterable] | None = None, pass_index: int = 0,
             runners: dict[str, Runner] | None = None) -> Iterator[list[Row]]:
    """Time `layers` in batches of BATCH with `canary`, yielding each batch's rows. Pass 0 takes
    them in order; a later pass shuffles them (seeded by `pass_index`), so each op meets other
    neighbours and another moment than in the pass before. With `runners`, each op's runner is
    made once and kept there for the next pass: exporting or converting an op costs far more than
    timing it (LiteRT's converter about 2 s an op, ONNX export about 60 ms)."""
    order = list(layers)
    if pass_index:
        random.Random(pass_index).shuffle(order)
    batches = [order[i:i + BATCH] for i in range(0, len(order), BATCH)]
    for i, batch in enumerate(progress(batches, len(order)) if progress else batches):
        made = {l.key: (runners or {}).get(l.key) or layer_runner(l, runtime, threads) for l in batch}
        if runners is not None:
            runners.update(made)
        timings = canary.time(made, seed=i + 100003 * pass_index)
        yield [op_row(l, timings[l.key], made[l.key], edges) for l in batch]


def op_row(layer: Layer, timing: Timing, run: Runner, edges: bool) -> Row:
    """A measured row; with `edges`, its times less the op's boundary share (measured now)."""
    keep = 1.0 - boundary_share(run) if edges else 1.0
    return Row(layer, timing.ms * keep, timing.mean_ms * keep, timing.std_ms * keep, timing.count, "measured")


PACES = ("none", "network", "op")  # `nas latency build --pace`: what scales a new table's timings


def check_pace(mode: str) -> str:
    if mode not in PACES:
        raise NasError(f"pace: {mode!r} is not allowed; expected one of {', '.join(PACES)}")
    return mode


def _build_pace(existing: Table | None, runtime: str, threads: int, mode: str) -> Pace | None:
    """The pace a build keeps: the table's stored reference when resuming one, a new reference
    for a new table (none with `mode` "none"), none for a table whose rows were measured without
    one (so they stay in one unit)."""
    if existing is None or not existing.rows:
        return Pace(runtime, threads) if check_pace(mode) != "none" else None
    return Pace.for_table(existing.header, runtime, threads)


def _network_pace(op_pace: Pace | None, runtime: str, threads: int, mode: str) -> Pace | None:
    """The pace a build's calibration networks keep: with `mode` "network" the pace network with
    a new reference (every build times its calibration afresh), stored as `network_pace` so that
    validation and a search's measured winner are scaled to it; with "op" the op pace (stored as
    `pace`, which is what validation falls back to); none for a table without an op pace."""
    if op_pace is None:
        return None
    return Pace(runtime, threads, arch=pace_network()) if mode == "network" else op_pace


def _tables_to_resume(path: Path, partial: Path, runtime: str, threads: int) -> tuple[Table | None, Table | None]:
    """(the finished table at `path`, what a build starts from): the partial table a killed build
    left (it holds the finished table's rows too), else the finished table. A table measured on
    another machine is set aside (`_set_aside_if_foreign`); None where there is none."""
    base = read_table(path) if path.exists() else None
    if base is not None:
        base = _set_aside_if_foreign(base, runtime, threads, path)
    resumed = read_table(partial) if partial.exists() else None
    if resumed is not None:
        resumed = _set_aside_if_foreign(resumed, runtime, threads, partial)
    return base, resumed or base


def _set_aside_if_foreign(existing: Table, runtime: str, threads: int, path: Path) -> Table | None:
    """A table whose fingerprint says another machine is not resumed: its rows would mix two
    machines. Move it to `<file>.bak` (saying so on stderr) and return None; else return it."""
    if not existing.rows or not isinstance(existing.header.get("machine"), dict):
        return existing
    here = this_machine(runtime, threads)
    if not differences(existing.header, here):
        return existing
    backup = path.with_name(path.name + ".bak")
    os.replace(path, backup)
    print(f"note: {path} was measured on {describe(existing.header['machine'])}, not this machine "
          f"({describe(here)}); moved it to {backup} and starting a new table", file=sys.stderr)
    return None


def fit_table_model(table: Table) -> float:
    """Fit the op model on the table's measured rows into its header (channel block chosen by
    cross-validation, one coefficient set per group of op kinds); returns the 5-fold
    cross-validated MAPE (percent) of predicting a measured op the model did not see."""
    rows = table.measured()
    layers, ms = [r.layer for r in rows], np.array([r.ms for r in rows])
    block, scores = choose_block(layers, ms)
    model = fit_op_model(layers, ms, block=block, by_group=True)
    cv = cross_validate(layers, ms, folds=5, block=block, by_group=True)
    err = np.abs(cv / ms - 1)
    table.header["op_model"] = model.to_dict()
    table.header["op_model_fit"] = {
        "ops": len(rows), "cv_mape_pct": round(float(err.mean()) * 100, 2),
        "cv_within_10pct": round(float(np.mean(err < 0.1)) * 100, 1),
        "cv": "5-fold over the measured rows",
        "block_cv_mape_pct": {b: round(v * 100, 2) for b, v in scores.items()}}
    return round(float(err.mean()) * 100, 2)


NETWORK_BATCH = 16


NETWORK_RETRIES = 6  # a network batch whose canaries run slow is timed again up to this many times


def network_plan(plan: TimingPlan) -> TimingPlan:
    """How every end-to-end timing is made (a build's calibration, a validation, a measured
    winner), whatever `plan` its ops used: one protocol, so that their timings compare. Retries
    keep the least contended attempt, so fewer of them time a network slower: a quick build
    that retried a batch once calibrated on networks 10 % slower than a validation retrying up
    to 6 times timed them minutes later (experiments/latency/pace/protocol/)."""
    return replace(plan, warmup=max(plan.warmup, 5), rounds=max(plan.rounds, 12), min_samples=36,
                   max_samples=120, budget_s=0.4, retries=max(plan.retries, NETWORK_RETRIES))


def network_canary(runtime: str, threads: int, plan: TimingPlan, reference: dict[str, float] | None = None,
                   pace: Pace | None = None) -> Canary:
    """The canaries (ops and a network) every end-to-end timing is made with, on `network_plan`."""
    return Canary(runtime, threads, network_plan(plan), networks=True, reference=reference, pace=pace)


NETWORK_PASSES = 2  # a network batch is timed this many times, apart; each network keeps its fastest


def measure_archs(archs: list[Arch], runtime: str, threads: int, plan: TimingPlan,
                  canary: Canary | None = None, passes: int = NETWORK_PASSES) -> list[float]:
    """End-to-end milliseconds of each network (the plan's quantile), timed interleaved in
    batches of NETWORK_BATCH with the canaries (pass one made with networks=True). Each batch is
    timed in `passes` passes and each network keeps its fastest: interference only adds time,
    and a pass that a neighbour's burst slowed (here up to 1.6x for one network, which the
    canaries did not catch) is outvoted by one that it did not."""
    canary = canary or network_canary(runtime, threads, plan)
    plan = network_plan(plan)
    out: list[float] = []
    for i in range(0, len(archs), NETWORK_BATCH):
        chunk = archs[i:i + NETWORK_BATCH]
        runners = {j: arch_runner(a, runtime, threads) for j, a in enumerate(chunk)}
        best = [float("inf")] * len(chunk)
        for p in range(max(1, passes)):
            timings = canary.time(runners, seed=1000 + i + 104729 * p, plan=plan)
            best = [min(b, timings[j].ms) for j, b in enumerate(best)]
        out.extend(best)
    return out


def overhead_candidates(header: dict) -> tuple[tuple[str, ...], ...]:
    """The overhead term sets a table scores for the record: all of OVERHEAD_CANDIDATES, or for a table
    whose rows are less their edge reorders (`edges`) those without `boundary_m`, which stands
    for the same cost and would count it twice."""
    if header.get("edges") == EDGES_SUBTRACTED:
        return tuple(c for c in OVERHEAD_CANDIDATES if "boundary_m" not in c)
    return OVERHEAD_CANDIDATES


def calibration_timings(target: str) -> dict[str, float]:
    """The build-time end-to-end ms of `target`'s calibration networks, by name, from
    experiments/latency/<target>-calibration.csv (written by `calibrate`); {} without it."""
    path = EXPERIMENTS / "latency" / f"{target}-calibration.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {r["arch"]: float(r["measured_ms"]) for r in csv.DictReader(f)}


def repeat_networks(space: Space, stored: dict[str, float], count: int) -> list[Arch]:
    """The calibration networks to time again (validation, a measured winner): of the build's
    calibration set (random and wide) those whose build-time latency is in `stored`
    (`calibration_timings`), at most `count` spread evenly over the set."""
    have = [a for a in calibration_set(space, len(stored)) if a.name in stored]
    if len(have) <= count:
        return have
    return [have[int(i)] for i in np.linspace(0, len(have) - 1, count).round()]


def calibrate(table: Table, archs: list[Arch], measured_ms: Sequence[float]) -> float:
    """Given `archs` measured end to end, fit the overhead model (`overhead_terms`) into the table
    header with every candidate's leave-one-out score, and write the measurements to
    experiments/latency/<target>-calibration.csv. Returns the fit's MAPE (%)."""
    model = OpModel.from_dict(table.header["op_model"])
    measured = np.asarray(measured_ms, dtype=float)
    sums = np.array([sum_of_ops(table, a, model) for a in archs])
    terms = [network_terms(a, s) for a, s in zip(archs, sums)]
    use = overhead_terms(len(archs))
    candidates = score_overhead_terms(terms, measured, overhead_candidates(table.header))
    overhead = fit_overhead(terms, measured, use)
    pred = np.array([overhead.apply(t) for t in terms])
    err = np.abs(pred / measured - 1)
    loo = np.abs(loo_overhead(terms, measured, use) / measured - 1)
    groups = np.array(["wide" if a.name.startswith("wide") else "random" for a in archs])
    table.header["overhead"] = overhead.to_dict()
    table.header["overhead_fit"] = {
        "networks": len(archs), "terms": list(use), "mape_pct": round(float(err.mean()) * 100, 2),
        "loo_mape_pct": round(float(loo.mean()) * 100, 2),
        "loo_max_abs_error_pct": round(float(loo.max()) * 100, 1),
        "loo_mape_pct_by_group": {g: round(float(loo[groups == g].mean()) * 100, 2)
                                  for g in ("random", "wide") if (groups == g).any()},
        "candidates_loo_mape_pct": candidates,
        "sum_of_ops_over_measured": [round(float(min(sums / measured)), 3),
                                     round(float(max(sums / measured)), 3)],
        "data": f"experiments/latency/{table.target}-calibration.csv",
        "set": (f"the first {int((groups == 'random').sum())} random architectures of the build "
                f"(seed {CALIBRATION_SEED}) and {int((groups == 'wide').sum())} of "
                f"{WIDE_SPACE.name} (seed {WIDE_SEED})")}
    out = EXPERIMENTS / "latency" / f"{table.target}-calibration.csv"
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(["arch", "group", "resolution", "width_mult", "n_ops", "sum_of_ops_ms", "predicted_ms",
                "measured_ms"])
    for a, g, t, s, p, m in zip(archs, groups, terms, sums, pred, measured):
        w.writerow([a.name, g, a.resolution, a.width_mult, int(t["n_ops"]), f"{s:.4f}", f"{p:.4f}",
                    f"{m:.4f}"])
    write_text_atomic(out, text.getvalue())
    return round(float(err.mean()) * 100, 2)
