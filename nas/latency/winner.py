"""The winner, measured: time a search's winner and baselines end to end on this machine and put
the measurement next to the prediction (issue 13, item 5).

    from nas.latency.winner import measure_against_prediction, measure_run
    measure_against_prediction([arch, ...], "local-cpu")   # {"measured": True, "networks": [...]}
    measure_run(summary, "runs/local-cpu-3ms-tpe-s0")       # adds summary["measured"], measured.json,
                                                            # and a section of summary.md

Only a table measured on a machine (`method: measured`, not `measured_on: device`) can be checked
here; for a derived table (pixel) or one measured on a phone the result says that measuring
needs the device, and nothing is timed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from nas.arch import Arch
from nas.files import write_text_atomic
from nas.latency.machine import check_here, is_compared, runtime_version_here
from nas.latency.measure import Pace, TimingPlan, load_average
from nas.latency.predict import load_target, predict_latency
from nas.tables import markdown_table

MEASURED_FILE = "measured.json"
SESSION_NETWORKS = 6  # calibration networks timed with the winner: this session's speed against the table's
# (validation divided by that factor put 86.8-92.1 % of networks within 10 %, raw 42.1-60.5 %:
# experiments/latency/pace/repeat/)


def cannot_measure_reason(target: str) -> str | None:
    """Why `target`'s latency cannot be measured on this machine (None when it can)."""
    h = load_target(target).header
    if h.get("method") != "measured":
        return (f"target {target!r} is {h.get('method', 'not measured')} ({h.get('device', 'a device')}): "
                f"measuring its latency needs that device")
    if not is_compared(h):
        return (f"target {target!r} was measured on another device ({h.get('device', 'unknown')}): "
                f"measuring its latency needs that device")
    if runtime_version_here(str(h.get("runtime", ""))) == "unknown":
        return f"target {target!r} uses runtime {h.get('runtime')!r}, which this machine cannot run"
    return None


def measure_against_prediction(archs: list[Arch], target: str, plan: TimingPlan = TimingPlan()) -> dict:
    """End-to-end milliseconds of `archs` on this machine with `target`'s runtime and thread
    count (timed interleaved, the 10th percentile of the kept samples, with a canary network),
    next to their predicted latency on `target`.

    Returns {"target", "measured": True, "runtime", "threads", "load_average": {"before",
    "after"}, "networks": [{"name", "predicted_ms", "measured_ms", "error_pct"}]} plus "note"
    when the table was measured on another machine. When the table's calibration timings are
    here (experiments/latency/<target>-calibration.csv), SESSION_NETWORKS of its calibration
    networks are timed alongside, and "session_factor" (their mean now / build-time ratio) and per
    network "at_table_speed_ms" and "error_at_table_speed_pct" say what the measurement is at
    the speed the machine had when the table was built; or {"target", "measured": False,
    "reason"} for a target this machine cannot measure."""
    reason = cannot_measure_reason(target)
    if reason:
        return {"target": target, "measured": False, "reason": reason}
    from nas.latency.build import calibration_timings, measure_archs, network_canary, repeat_networks
    from nas.paths import SEARCH_SPACES
    from nas.space import DEFAULT_SPACE, load_space

    h = load_target(target).header
    runtime, threads = str(h["runtime"]), int(h.get("threads", 1))
    before = load_average()
    foreign = check_here(target, h)
    pace = None if foreign else Pace.for_networks(h, runtime, threads)
    reference = None if foreign else h.get("calibration_contention", {}).get("canary_ms")
    canary = network_canary(runtime, threads, plan, reference, pace)
    space = SEARCH_SPACES / str(h.get("space", DEFAULT_SPACE.name))  # the space it calibrated on
    stored = calibration_timings(target) if not foreign and space.is_file() else {}
    refs = repeat_networks(load_space(space), stored, SESSION_NETWORKS) if stored else []
    measured = measure_archs(archs + refs, runtime, threads, plan, canary)
    factor = float(np.mean([m / stored[a.name] for a, m in zip(refs, measured[len(archs):])])) if refs else None
    rows = []
    for arch, ms in zip(archs, measured):
        predicted = predict_latency(arch, target).latency_ms
        rows.append({"name": arch.name, "predicted_ms": round(predicted, 3), "measured_ms": round(ms, 3),
                     "error_pct": round((predicted / ms - 1) * 100, 1)})
        if factor:
            rows[-1].update(at_table_speed_ms=round(ms / factor, 3),
                            error_at_table_speed_pct=round((predicted * factor / ms - 1) * 100, 1))
    out = {"target": target, "measured": True, "runtime": runtime_version_here(runtime), "threads": threads,
           "load_average": {"before": before, "after": load_average()}, "networks": rows,
           "how": "end to end on this machine, batch 1, interleaved with a canary network; "
                  "the 10th percentile of the kept samples, the faster of 2 passes"
                  + (f"; scaled to the table's reference pace ({pace.op})" if pace else "")}
    if pace:
        out["pace"] = pace.summary()
    if factor:
        out["session_factor"] = {"factor": round(factor, 4), "networks": len(refs),
                                 "how": "the mean ratio of the table's calibration networks timed now with these "
                                        "to their latency when it was built: this session's speed against the "
                                        "table's; at_table_speed_ms is measured_ms over it"}
    if foreign:
        out["note"] = foreign
    return out


def measured_markdown(m: dict) -> str:
    """A summary.md section for `measure_against_prediction`'s result."""
    if not m["measured"]:
        return f"\nMeasured latency: not measured; {m['reason']}.\n"
    load = m["load_average"]
    lines = ["", f"Measured on this machine ({m['runtime']}, {m['threads']} thread(s), load average "
                 f"{load['before']:.2f} before, {load['after']:.2f} after):", ""]
    speed = m.get("session_factor")
    lines += markdown_table([{"network": f"{r.get('label', '-')} ({r['name']})",
                              "predicted (ms)": f"{r['predicted_ms']:.2f}", "measured (ms)": f"{r['measured_ms']:.2f}",
                              "error": f"{r['error_pct']:+.1f} %",
                              **({"at the table's speed (ms)": f"{r['at_table_speed_ms']:.2f}",
                                  "error there": f"{r['error_at_table_speed_pct']:+.1f} %"} if speed else {})}
                             for r in m["networks"]])
    if speed:
        lines += ["", f"This session ran {speed['factor']:.3f}x the table's build-time latency on "
                      f"{speed['networks']} of its calibration networks timed alongside; \"at the table's speed\" "
                      f"divides the measurement by that."]
    if "note" in m:
        lines += ["", f"Note: {m['note']}."]
    return "\n".join(lines) + "\n"


def measure_run(summary: dict, out: str | Path, plan: TimingPlan = TimingPlan()) -> dict:
    """Measure a finished search's winner and baselines (the architectures in `summary["best"]`
    and `summary["baselines"]`, read from the run folder's trials.csv), write measured.json,
    append a section to summary.md, and return `summary` with a "measured" entry."""
    import pandas as pd

    from nas.arch import arch_from_dict

    out = Path(out)
    entries = ([("winner", summary["best"])] if summary.get("best") else []) + \
        list((summary.get("baselines") or {}).items())
    frame = pd.read_csv(out / "trials.csv") if (out / "trials.csv").is_file() else None
    labels, archs = [], []
    for label, entry in entries:
        rows = frame[frame["number"] == entry["trial"]] if frame is not None else []
        if len(rows):
            labels.append(label)
            archs.append(arch_from_dict(json.loads(rows.iloc[0]["arch"])))
    m = (measure_against_prediction(archs, summary["target"], plan) if archs else
         {"target": summary["target"], "measured": False, "reason": "no architecture to measure yet"})
    for label, row in zip(labels, m.get("networks", [])):
        row["label"] = label
    write_text_atomic(out / MEASURED_FILE, json.dumps(m, indent=2) + "\n")
    md = out / "summary.md"
    if md.is_file():
        write_text_atomic(md, md.read_text() + measured_markdown(m))
    return {**summary, "measured": m}
