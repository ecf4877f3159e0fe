"""Turns rows of cells into the column layout the docker CLI prints.

Docker formats its tables with Go's ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``:
every column but the last is as wide as its widest cell plus 3 spaces, and at
least 10; the last column is not padded.
"""

from __future__ import annotations

from collections.abc import Sequence

MIN_WIDTH = 10
PADDING = 3


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table as text, one line per row after the header, each ending in a newline."""
    lines = [list(headers), *[list(r) for r in rows]]
    widths = [
        max(MIN_WIDTH, max(len(line[i]) for line in lines) + PADDING)
        for i in range(len(headers) - 1)
    ]
    out = []
    for line in lines:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
        out.append(("".join(cells) + line[-1]).rstrip() + "\n")
    return "".join(out)
