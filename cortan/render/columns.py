"""Listings in aligned columns that never wrap: `/sessions`, `cortan sessions list`, `logs`.

Layer: render (core only). The last column is free text, cut to what the others leave;
a window too narrow to leave it ``least`` characters goes without the columns named
in ``drops``, in that order, rather than wrap every row over two lines (a split tmux
pane, a phone's SSH client). With no width (a pipe), every column stays and the text
is cut only to ``cap``, so scripts reading fields by position see the same table.
"""

from __future__ import annotations

from collections.abc import Sequence

from cortan.core.text import one_line


def fit_columns(
    rows: Sequence[tuple[str, ...]],
    *,
    right: set[int],
    width: int | None,
    drops: Sequence[int] = (),
    least: int = 12,
    cap: int | None = None,
) -> list[str]:
    """``rows`` (a heading first) as lines at most ``width`` long; ``right``: the columns
    aligned right (numbers), by their index in ``rows``."""
    keep = list(range(len(rows[0])))
    room = cap
    for drop in (None, *drops) if width is not None else (None,):
        if drop is not None:
            keep.remove(drop)
        if width is None:
            break
        fixed = sum(max(len(row[i]) for row in rows) + 2 for i in keep[:-1])
        room = width - fixed if cap is None else min(cap, width - fixed)
        if room >= least:
            break
    if room is not None:
        room = max(room, least)
    chosen = [tuple(row[i] for i in keep) for row in rows]
    last = len(keep) - 1
    cut = [(*row[:last], one_line(row[last], room) if room else row[last]) for row in chosen]
    return align(cut, right={keep.index(i) for i in right if i in keep})


def align(rows: Sequence[tuple[str, ...]], *, right: set[int]) -> list[str]:
    """Cells two spaces apart, padded to each column's widest; trailing spaces dropped."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines
