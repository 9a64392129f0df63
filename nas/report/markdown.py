"""The text of report.md: headline, winner, plots, top trials, Pareto front, notes."""

from __future__ import annotations

import pandas as pd

from nas.report.facts import arch_field, as_int
from nas.search.policy import Status
from nas.search.trials_table import ESTIMATE_BASIS, ESTIMATE_COLUMN, score_label, searched_rho_lines
from nas.tables import markdown_table


def report_markdown(facts: dict, images: list[str], top_k: int) -> str:
    """The text of report.md; `images` are the plot files written beside it."""
    run, t = facts["run"], facts["trials"]
    c = run.config
    counts = t["state"].value_counts()
    lines = [f"# Search report: {run.name}", "",
             f"Target `{facts['target']}`, budget {_ms(run.budget_ms)}, objective {c.get('objective', '?')}, "
             f"sampler {c.get('sampler', '?')}, engine {c.get('engine', '?')}, seed {c.get('seed', '?')}, "
             f"data set {facts['dataset']}, created {c.get('created', '?')}.",
             "Trials: " + (", ".join(f"{int(n)} {s.lower()}" for s, n in counts.items()) or "none") + ".",
             "Accuracies are validation accuracies of the proxy training on the data set above; latencies "
             f"are predicted for `{facts['target']}` from its latency table.",
             f"Trials are ranked by {score_label(facts['ranked_by'])}"
             + (f" (% ImageNet top-1 estimated from {ESTIMATE_BASIS}; `--score imagenet-estimate`, "
                "docs/training.md)." if _estimated(facts) else "."),
             *searched_rho_lines(c.get("resolution") if isinstance(c.get("resolution"), list) else None), ""]
    lines += _winner_section(facts)
    if facts.get("rungs"):
        from nas.search.rungs import rungs_markdown

        lines += rungs_markdown(facts["rungs"]) + [""]
    if facts.get("confirmation"):
        from nas.search.confirm import confirmation_markdown

        lines += confirmation_markdown(facts["confirmation"]) + [""]
    if facts.get("measured") is not None:
        from nas.latency.winner import measured_markdown

        lines += ["## Measured latency", ""] + measured_markdown(facts["measured"]).strip("\n").splitlines() + [""]
    ranked = score_label(facts["ranked_by"])
    for name, title in (("pareto.png", f"{ranked[0].upper()}{ranked[1:]} vs predicted latency"),
                        ("progress.png", "Best so far"),
                        ("latency_blocks.png", "Winner latency per block")):
        if name in images:
            lines += [f"## {title}", "", f"![{title}]({name})", ""]
            if name == "latency_blocks.png":
                lines += _breakdown_table(facts["breakdown"]) + [""]
    top = top_trials(t, top_k, facts["ranked_by"])
    lines += [f"## Top {top_k} trials by {score_label(facts['ranked_by'])}", ""]
    lines += markdown_table([_without(r, "blocks") for r in top]) + [""]
    lines += [f"- trial {r['trial']}: {r['blocks']}" for r in top if r["blocks"]] + [""]
    lines += ["## Pareto front", "", f"Trials no other trained trial beats on both {score_label(facts['ranked_by'])} "
              "and latency; the search keeps their checkpoints.", ""]
    lines += markdown_table([_without(_trial_row(r, facts["ranked_by"]), "blocks", "Pareto")
                             for _, r in facts["front"].iterrows()]) + [""]
    if facts["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in facts["notes"]] + [""]
    storage = c.get("storage") or f"sqlite:///{run.path / 'study.db'}"
    lines += ["## Browse the study", "", "Every trial, its parameters and its per-epoch curve:", "",
              f"    optuna-dashboard {storage}", "",
              f"Export the winner: `nas export {run.path} --format onnx --out winner.onnx`.", ""]
    return "\n".join(lines)


def _winner_section(facts: dict) -> list[str]:
    t = facts["trials"]
    lines = ["## Winner", ""]
    if facts["winner"] is None:
        return lines + ["No completed trial fits the budget yet.", ""]
    w = t[t["number"] == facts["winner"]].iloc[-1]
    weights = ("trained weights kept in `checkpoints/`" if w["checkpoint"]
               else "no checkpoint kept (export gives initialised weights)")
    estimate = f"ImageNet top-1 estimate {w[ESTIMATE_COLUMN]:.1f} %, " if _estimated(facts) else ""
    lines += [f"Trial {int(w['number'])} (`{w['name']}`): {estimate}{100 * w['accuracy']:.2f} % proxy accuracy at "
              f"{w['latency_ms']:.2f} ms, {as_int(w['params']) or 0:,} parameters, "
              f"{(as_int(w['madds']) or 0) / 1e6:.1f} M multiply-adds; {weights}.", "",
              f"Blocks: `{w['block_string']}`", ""]
    if facts.get("rungs") and pd.notna(w.get("rung")) and w["rung"] > 0:
        value = (f"{w['rung_score']:.2f} %" if _estimated(facts) else f"{w['rung_score']:.4f}")
        lines += [f"Chosen at rung {int(w['rung'])}: {score_label(facts['ranked_by'])} {value} there "
                  f"({100 * w['rung_accuracy']:.2f} % proxy accuracy with the rung's longer training); the "
                  "accuracies below are rung 0's, the training every trial had.", ""]
    rows = [{"network": f"winner (trial {int(w['number'])})",
             **estimate_cell(facts["ranked_by"], w.get(ESTIMATE_COLUMN)),
             "accuracy %": round(100 * w["accuracy"], 2), "latency ms": round(float(w["latency_ms"]), 2)}]
    for b in facts["baselines"]:
        rows.append({"network": f"{b['label']} ({b['arch']}, {b['state'].lower()})",
                     **estimate_cell(facts["ranked_by"], b[ESTIMATE_COLUMN]),
                     "accuracy %": None if b["accuracy"] is None else round(100 * b["accuracy"], 2),
                     "latency ms": round(b["latency_ms"], 2)})
    return lines + markdown_table(rows) + [""]


def _estimated(facts: dict) -> bool:
    return facts["ranked_by"] == ESTIMATE_COLUMN


def estimate_cell(ranked_by: str, value) -> dict:
    """The "ImageNet est. %" cell of a table row (value: % or None/NaN), on runs ranked by the
    estimate (`ranked_by`, a `ranking_column`) only; {} otherwise."""
    if ranked_by != ESTIMATE_COLUMN:
        return {}
    return {"ImageNet est. %": round(float(value), 1) if value is not None and pd.notna(value) else None}


def top_trials(t: pd.DataFrame, k: int, ranked_by: str = "accuracy") -> list[dict]:
    """The `k` best completed trials by `ranked_by` (a trials.csv column: accuracy or the ImageNet
    estimate; baselines included and named), as table rows."""
    done = t[(t["state"] == Status.COMPLETE) & t["accuracy"].notna()]
    done = done.sort_values([ranked_by, "latency_ms"], ascending=[False, True]).head(k)
    return [{"rank": i + 1, **_trial_row(r, ranked_by)} for i, (_, r) in enumerate(done.iterrows())]


def _trial_row(r: pd.Series, ranked_by: str = "accuracy") -> dict:
    return {"trial": int(r["number"]), "network": r["baseline"] or r["name"],
            **estimate_cell(ranked_by, r.get(ESTIMATE_COLUMN)),
            "accuracy %": round(100 * float(r["accuracy"]), 2) if pd.notna(r["accuracy"]) else None,
            "latency ms": round(float(r["latency_ms"]), 2) if pd.notna(r["latency_ms"]) else None,
            "in budget": "yes" if r["within_budget"] else "no",
            "params M": round(r["params"] / 1e6, 2) if pd.notna(r["params"]) else None,
            "MAdds M": round(r["madds"] / 1e6, 1) if pd.notna(r["madds"]) else None,
            "res": arch_field(r["arch"], "resolution"), "width": arch_field(r["arch"], "width_mult"),
            "Pareto": "yes" if r["pareto"] else "", "checkpoint": "yes" if r["checkpoint"] else "",
            "blocks": f"`{r['block_string']}`" if r["block_string"] else ""}


def _without(row: dict, *keys: str) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


def _breakdown_table(b: dict) -> list[str]:
    total = b["total_ms"]
    rows = [{"op": o["op"], "op (kind, kernel, expansion, input, channels, stride)": o["label"],
             "ms": round(o["ms"], 3), "share %": round(100 * o["ms"] / total, 1) if total else None,
             "source": o["source"]} for o in b["ops"]]
    rows.append({"op": "", "op (kind, kernel, expansion, input, channels, stride)": "overhead (whole network)",
                 "ms": round(b["overhead_ms"], 3),
                 "share %": round(100 * b["overhead_ms"] / total, 1) if total else None, "source": "overhead model"})
    head = (f"Total {total:.2f} ms predicted on `{b['target']}` ({b['runtime'] or 'runtime ?'}, "
            f"{b['threads']} thread(s)); {b['n_modelled']} op(s) not in the table came from the op model.")
    return [head, ""] + markdown_table(rows)


def _ms(v: float | None) -> str:
    return "none" if v is None else f"{v:g} ms"
