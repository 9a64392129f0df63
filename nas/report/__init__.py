"""`report.md` and PNG plots for a run folder: what the search found and what it cost.

    from nas.report import write_report
    result = write_report("runs/pixel-60ms-tpe-s0")   # writes report.md, *.png in that folder

`facts` reads the run folder once (trials, Pareto front, winner, baselines, latency per op);
`plots` draws pareto.png, progress.png and latency_blocks.png from those facts; `markdown`
writes report.md. Accuracies are 0..1 on the proxy data set's validation split (plotted in
percent); latencies are milliseconds predicted for the run's target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nas.errors import NasError
from nas.files import write_text_atomic
from nas.progress import steps
from nas.report.facts import baseline_marks, best_so_far, gather, headline, latency_breakdown, op_label
from nas.report.markdown import report_markdown, top_trials
from nas.report.plots import plot_latency_blocks, plot_pareto, plot_progress
from nas.search.rundir import open_run

__all__ = ["ReportResult", "baseline_marks", "best_so_far", "gather", "headline", "latency_breakdown",
           "op_label", "plot_latency_blocks", "plot_pareto", "plot_progress", "report_markdown",
           "top_trials", "write_report"]


@dataclass
class ReportResult:
    """The files written (report.md first), the headline numbers, and notes on what is missing."""

    files: list[Path]
    headline: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-safe (what `nas report --json` prints)."""
        return {"files": [str(p) for p in self.files], "headline": self.headline, "notes": self.notes}


def write_report(run_dir: str | Path, top_k: int = 10, progress: bool = False) -> ReportResult:
    """Read the run folder and write report.md plus the plots into it. `top_k`: rows of the
    table of most accurate trials. The trials come from the run's study, the record; where
    trials.csv disagrees with it, a note says so. NasError for a missing or malformed run
    folder, a damaged study, or a file that cannot be written."""
    if top_k < 1:
        raise NasError(f"--top-k {top_k} is not allowed; expected an integer >= 1")
    with steps(5, "report", progress) as step:
        step("reading the run")
        run = open_run(run_dir)
        facts = gather(run)
        files: list[Path] = []
        step("accuracy vs latency")
        files.append(plot_pareto(facts, run.path / "pareto.png"))
        step("best so far")
        files.append(plot_progress(facts, run.path / "progress.png"))
        step("latency per block")
        if facts["breakdown"] is not None:
            files.append(plot_latency_blocks(facts, run.path / "latency_blocks.png"))
        step("report.md")
        md = run.path / "report.md"
        write_text_atomic(md, report_markdown(facts, [f.name for f in files], top_k))
    return ReportResult([md, *files], headline(facts), facts["notes"])
