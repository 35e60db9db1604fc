"""A batch's output: one JSON line per item, in input order, written as items finish.

Layer: batch (a front end). Each line is the object ``cortan ask --json`` prints for
an answer (:func:`cortan.render.report.make_report`: ``model``, ``provider``,
``content``, ``finish_reason``, ``usage``, ``timings``, and ``error`` with ``kind``
and ``message`` on failure), with the item's ``id`` first and ``cached`` last. An
item whose input could not be read has the same shape, with error kind ``input``.

In input order (the default), a finished item waits for the ones before it: the
writer keeps what came early and writes each run of consecutive items the moment
it is complete, flushing after each, so ``tail -f`` and a reading pipe see answers
as they come. How far ahead of the oldest unfinished item the job may run is the
runner's window: what the writer keeps is bounded by it. ``--unordered`` writes
each line the moment its item ends.

A reader that went away (``| head``) ends the job quietly, as it ends ``cortan ask``;
an output that cannot be written (a full disk) ends it with one sentence, what was
written before kept, and the job resumable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TextIO, TypeGuard

from cortan.core.errors import ObserverError, why_unwritable
from cortan.core.events import ChatEnded
from cortan.render.plain import reader_gone
from cortan.render.report import dump_json, make_report


def make_line(item_id: str | int, ended: ChatEnded) -> str:
    """The output line of an item that ran (without its newline)."""
    return dump_json({"id": item_id, **make_report(ended)})


def make_error_line(item_id: str | int, kind: str, message: str) -> str:
    """The output line of an item that failed before it could be sent."""
    report = {
        "id": item_id,
        "model": None,
        "provider": None,
        "content": "",
        "thinking": "",
        "finish_reason": "error",
        "error": {"kind": kind, "message": message},
        "cached": False,
    }
    return dump_json(report)


def is_kept_line(line: str | None, item_id: str | int) -> TypeGuard[str]:
    """Whether ``line``, kept in the store by an earlier run, is one this item's run wrote.

    The store can be damaged or edited by hand: a line that is not one JSON object
    naming this item would be written as if the item were answered.
    """
    if line is None or "\n" in line or "\r" in line:
        return False
    try:
        report = json.loads(line)
    except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
        return False
    return isinstance(report, dict) and report.get("id") == item_id


class OutputWriter:
    """Writes item lines to ``file``, in input order unless ``ordered`` is off.

    ``written`` is called with each position as its line goes out (the runner's
    window moves on with it).
    """

    def __init__(
        self, file: TextIO, *, ordered: bool = True, written: Callable[[int], None] | None = None
    ) -> None:
        self._file = file
        self._ordered = ordered
        self._written = written or (lambda position: None)
        self._early: dict[int, str] = {}
        self.next = 0  # in order: the position whose line goes out next
        self.count = 0  # lines written

    @property
    def waiting(self) -> int:
        """Lines kept until the items before them end."""
        return len(self._early)

    def add(self, position: int, line: str) -> None:
        """Item ``position`` ended with ``line``: write it (and any it held back) now."""
        if not self._ordered:
            self._write([line])
            self._written(position)
            return
        self._early[position] = line
        if position != self.next:
            return
        ready: list[str] = []
        start = self.next
        while self.next in self._early:
            ready.append(self._early.pop(self.next))
            self.next += 1
        self._write(ready)
        for done in range(start, self.next):
            self._written(done)

    def _write(self, lines: list[str]) -> None:
        try:
            self._file.write("".join(f"{line}\n" for line in lines))
            self._file.flush()
        except BrokenPipeError:
            raise reader_gone(self._file) from None
        except OSError as exc:  # a full disk, /dev/full, a quota: the job cannot go on
            name = getattr(self._file, "name", None)
            where = name if isinstance(name, str) else "stdout"
            reason = why_unwritable(exc)
            raise ObserverError(
                f"cannot write the output to {where}: {reason} (the lines before are kept)",
                kind="output",
            ) from None
        self.count += len(lines)
