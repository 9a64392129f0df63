"""Tables for people: aligned text on the terminal and markdown in reports, both laid out by
tabulate. A column whose every value is a number (or missing) is right-aligned.

    text_table(rows, ["name", "params"])   # what the CLI prints
    markdown_table(rows)                   # lines of a pipe table for report.md files
"""

from __future__ import annotations

from typing import Any

from tabulate import DataRow, TableFormat, tabulate

MISSING = "-"


def _numeric(rows: list[dict], column: str) -> bool:
    """True when every value of `column` is a number or missing (booleans count as numbers)."""
    return all(isinstance(r.get(column), (int, float)) or r.get(column) is None for r in rows)


def text_cell(v: Any) -> str:
    """A value as the terminal shows it: '-' for missing, yes/no, 1,234 and 1,234.57."""
    if v is None:
        return MISSING
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def text_table(rows: list[dict], columns: list[str]) -> str:
    """`rows` (dicts) as an aligned text table of `columns`: a header, a rule of dashes, one line per
    row, columns two spaces apart, numbers right-aligned, no trailing spaces."""
    cells = [[text_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    aligns = ["right" if _numeric(rows, c) else "left" for c in columns]
    body = [list(columns), ["-" * w for w in widths], *cells]
    text = tabulate(body, tablefmt="plain", colalign=aligns, disable_numparse=True, preserve_whitespace=True)
    return "\n".join(line.rstrip() for line in text.splitlines())


def markdown_cell(v: Any) -> str:
    """A value in a markdown cell: '-' for missing, 1,234 for integers, `|` escaped."""
    if v is None:
        return MISSING
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v).replace("|", "\\|")


def markdown_table(rows: list[dict]) -> list[str]:
    """`rows` (dicts with the same keys) as the lines of a compact pipe table, `---:` under numeric
    columns; ["(none)"] when there are no rows. Cells are not padded, so a diff shows what changed."""
    if not rows:
        return ["(none)"]
    columns = list(rows[0])
    numeric = [_numeric(rows, c) for c in columns]
    rule = "|" + "|".join("---:" if n else "---" for n in numeric) + "|"
    compact = TableFormat(lineabove=None, linebelowheader=lambda *_: rule, linebetweenrows=None,
                          linebelow=None, headerrow=DataRow("|", "|", "|"), datarow=DataRow("|", "|", "|"),
                          padding=1, with_header_hide=None)
    cells = [[markdown_cell(r.get(c)) for c in columns] for r in rows]
    return tabulate(cells, headers=columns, tablefmt=compact, stralign=None, numalign=None,
                    disable_numparse=True, preserve_whitespace=True).splitlines()
