"""Reading a batch's input: JSON lines, CSV, plain lines or a folder of files, streamed.

Layer: batch (a front end). Each reader turns its input into :class:`Record` s, one
per item, in order, holding one item in memory at a time: a file of a million lines
costs what a file of ten does. What the input is comes from ``--format``, else from
the path (``.jsonl``/``.ndjson``, ``.csv``, ``.tsv``, a folder; anything else, and
stdin, is lines).

An item's place in the input (``position``, from 0) is what a resumed job knows it
by; blank lines are not items. Its ``id`` is the ``id`` field where the input has
one (``--id-field``), else its line number (JSON lines, lines), its row number
(CSV) or its path (a folder).

Hostile or broken input costs one item, never the job: a line that is not UTF-8, is
not JSON, or runs past ``max_input_bytes`` (skipped without being held), a CSV
record whose quote never closes, a file too large or unreadable, each becomes a
record with an ``error`` sentence naming where it is. Only a failure to read the
input at all (a vanished file, a disk error) stops the job.

Two items of one job must not share an id (:func:`check_ids`): their output lines
could not be told apart. Only JSON lines and CSV can repeat one (:data:`ID_FORMATS`);
a line's id is its number, a file's its path.

A folder that holds the job's own output (``cortan batch notes/ -o notes/out.jsonl``)
lists it like any file: it would be sent as an item, half written, and on a resume
with the answers of the run before. The reader is handed the output's identity
(:data:`FileId`, device and inode: a link to it is the same file) and leaves it out.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import json
import os
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Literal, NamedTuple, get_args

from cortan.core.errors import UsageError, why_unreadable
from cortan.core.text import format_size, shorten

Format = Literal["jsonl", "csv", "tsv", "lines", "files"]
FORMATS: tuple[str, ...] = get_args(Format)
STDIN = "-"
_SUFFIXES: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
}
_SKIP_CHUNK = 1 << 16
#: The formats whose items name their own ids (``--id-field``), which may repeat.
ID_FORMATS: tuple[Format, ...] = ("jsonl", "csv", "tsv")
#: Characters of an id shown in a sentence.
SHOWN_ID = 60
#: A file by identity, (device, inode): whatever name or link reaches it.
FileId = tuple[int, int]


class Record(NamedTuple):
    """One item of the input: its fields, or why it could not be read."""

    position: int
    id: str | int
    where: str  # names the item in a sentence: "line 7", "row 3 (line 5)", "file a.md"
    fields: Mapping[str, object]
    error: str | None = None
    size: int = 0  # bytes read for it, to bound how many are held at once


class InputSpec(NamedTuple):
    """Where the input is and how to read it."""

    path: str  # a file, a folder, or "-" for stdin
    format: Format
    text_field: str = "prompt"  # a JSON line that is a bare string is this field
    id_field: str = "id"
    glob: str | None = None  # a folder: only files whose path or name matches
    columns: tuple[str, ...] = ()  # a CSV must have these (the template's fields, --field)


def detect_format(path: str, given: str | None) -> Format:
    """The format ``--format`` names, else the one the path suggests."""
    if given is not None:
        if given not in FORMATS:
            raise UsageError(f"--format {given!r} is not one of {', '.join(FORMATS)}")
        return given  # type: ignore[return-value]  # checked just above
    if path != STDIN and Path(path).is_dir():
        return "files"
    return _SUFFIXES.get(Path(path).suffix.lower(), "lines")


def check_input(spec: InputSpec) -> None:
    """Refuse an input that cannot be read at all, before anything runs (exit 2)."""
    if spec.path == STDIN:
        if spec.format == "files":
            raise UsageError("a folder of files cannot come from stdin: give the folder's path")
        if sys.stdin is None:  # `cortan batch <&-`: an internal error before
            raise UsageError("stdin is closed: name the input file, or pipe the items in")
        return
    path = Path(spec.path)
    if spec.format == "files":
        if not path.is_dir():
            raise UsageError(f"{spec.path} is not a folder (--format files reads one)")
        return
    if path.is_dir():
        raise UsageError(f"{spec.path} is a folder: --format files reads the files in it")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {spec.path}: {why_unreadable(exc)}") from None


def read_records(
    spec: InputSpec, *, max_bytes: int, leave_out: FileId | None = None
) -> Iterator[Record]:
    """Every item of the input, in order, streamed; a folder's file ``leave_out`` (the
    job's output) is not one."""
    if spec.format == "files":
        yield from _read_files(spec, max_bytes, leave_out)
        return
    with _open(spec.path) as stream:
        if spec.format == "jsonl":
            yield from _read_jsonl(stream, spec, max_bytes)
        elif spec.format in ("csv", "tsv"):
            yield from _read_csv(stream, spec, max_bytes)
        else:
            yield from _read_lines(stream, max_bytes)


def check_ids(records: Iterator[Record]) -> Iterator[Record]:
    """``records``, stopped by a UsageError (exit 2) at the first whose id an earlier
    one has, naming both. A record that could not be read is not checked: its id is its
    place, and its line says where it is. The ids are kept on disk (:mod:`cortan.store.seen`),
    so a million-line input still costs a few hundred lines' memory."""
    from cortan.store.seen import SeenNames

    with contextlib.closing(SeenNames()) as seen:
        for record in records:
            if record.error is None:
                # 5 and "5" are two ids: they are written apart in the output
                first = seen.add(f"{type(record.id).__name__}:{record.id}", record.where)
                if first is not None:
                    raise UsageError(_repeated_id(record, first))
            yield record


def _repeated_id(record: Record, first: str) -> str:
    shown = shorten(json.dumps(record.id, ensure_ascii=False), SHOWN_ID)
    return (
        f"{record.where} has the id {shown}, as {first} does: each item needs an id of its "
        "own, which names its output line (--id-field picks another field)"
    )


def count_records(
    spec: InputSpec, *, max_bytes: int, leave_out: FileId | None = None
) -> int | None:
    """How many items the input holds (a second pass, streamed), or None for stdin."""
    if spec.path == STDIN:
        return None
    if spec.format in ("jsonl", "lines"):
        with _open(spec.path) as stream:
            return sum(1 for _, line in _lines(stream, max_bytes) if line is None or line.strip())
    return sum(1 for _ in read_records(spec, max_bytes=max_bytes, leave_out=leave_out))


def _open(path: str) -> BinaryIO:
    if path == STDIN:
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(path, "rb")


# -- lines ------------------------------------------------------------------------------


def _lines(stream: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes without the line ending) for each line; None for one too long.

    A line past ``max_bytes`` is read through in pieces and dropped, never held.
    """
    number = 0
    while line := stream.readline(max_bytes + 1):
        number += 1
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while (rest := stream.readline(_SKIP_CHUNK)) and not rest.endswith(b"\n"):
                pass
            yield number, None
            continue
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):  # a BOM some editors write
            line = line[3:]
        yield number, line.rstrip(b"\n").removesuffix(b"\r")


def _too_long(where: str, max_bytes: int) -> str:
    return f"{where} is longer than {format_size(max_bytes)} (setting max_input_bytes)"


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadInput(
            f"{where} is not UTF-8 text (byte 0x{data[exc.start]:02x} at column {exc.start + 1})"
        ) from None


class _BadInput(Exception):
    """One item's input cannot be read; the sentence says where and why."""


def _read_lines(stream: BinaryIO, max_bytes: int) -> Iterator[Record]:
    position = 0
    for number, data in _lines(stream, max_bytes):
        where = f"line {number}"
        if data is not None and not data.strip():
            continue
        try:
            if data is None:
                raise _BadInput(_too_long(where, max_bytes))
            yield Record(position, number, where, {"line": _decode(data, where)}, size=len(data))
        except _BadInput as exc:
            yield Record(position, number, where, {}, str(exc))
        position += 1


# -- JSON lines -------------------------------------------------------------------------


def _read_jsonl(stream: BinaryIO, spec: InputSpec, max_bytes: int) -> Iterator[Record]:
    position = 0
    for number, data in _lines(stream, max_bytes):
        where = f"line {number}"
        if data is not None and not data.strip():
            continue
        try:
            if data is None:
                raise _BadInput(_too_long(where, max_bytes))
            fields = _parse_json(_decode(data, where), spec.text_field, where)
            item_id = _get_id(fields, spec.id_field, number)
            yield Record(position, item_id, where, fields, size=len(data))
        except _BadInput as exc:
            yield Record(position, number, where, {}, str(exc))
        position += 1


def _parse_json(text: str, text_field: str, where: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except RecursionError:
        raise _BadInput(f"{where} is JSON nested too deeply to read") from None
    except ValueError as exc:
        # Past 4300 digits Python's own message advises sys.set_int_max_str_digits().
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "a number too long to read"
        raise _BadInput(f"{where} is not JSON ({reason})") from None
    if isinstance(value, str):
        return {text_field: value}
    if not isinstance(value, dict):
        raise _BadInput(f"{where} is JSON but not an object or a string")
    return value


def _get_id(fields: Mapping[str, object], id_field: str, default: int) -> str | int:
    value = fields.get(id_field)
    if isinstance(value, str | int) and not isinstance(value, bool) and value != "":
        return value
    return default


# -- CSV --------------------------------------------------------------------------------


class _CsvLines:
    """The decoded lines a CSV reader asks for, one at a time, with what they cost.

    An iterator class, not a generator: raising for one bad line must not end it,
    and Python's CSV reader starts each record afresh after an error (its state is
    reset on every call), so the next record reads as if nothing happened.

    The lines of the record being read are kept until it ends (at most a record's
    worth): a quote still open at the end of the file costs its first line only, and
    the lines after it are read again as records of their own (:meth:`replay`).
    Without that, the rows after it were one cell of its row, silently.
    """

    def __init__(self, stream: BinaryIO, max_bytes: int) -> None:
        self._lines = _lines(stream, max_bytes)
        self._max = max_bytes
        self._record: list[tuple[int, bytes | None]] = []  # the record's lines so far
        self._again: list[tuple[int, bytes | None]] = []  # to read again, last first
        self.number = 0  # the line last read
        self.record_bytes = 0  # read since the last record ended

    def __iter__(self) -> _CsvLines:
        return self

    @property
    def next_number(self) -> int:
        """The number of the line the next record starts on."""
        return self._again[-1][0] if self._again else self.number + 1

    def end_record(self) -> None:
        self._record.clear()
        self.record_bytes = 0

    def replay(self) -> None:
        """The record read so far was broken: read its lines after the first again."""
        self._again.extend(reversed(self._record[1:]))
        self.end_record()

    def __next__(self) -> str:
        self.number, data = self._again.pop() if self._again else next(self._lines)
        self._record.append((self.number, data))
        where = f"line {self.number}"
        if data is None:
            raise _BadInput(_too_long(where, self._max))
        self.record_bytes += len(data) + 1
        if self.record_bytes > self._max:
            raise _BadInput(
                f"the record ending at {where} is longer than {format_size(self._max)} "
                "(a quote that never closes?)"
            )
        return _decode(data, where) + "\n"


def _read_csv(stream: BinaryIO, spec: InputSpec, max_bytes: int) -> Iterator[Record]:
    csv.field_size_limit(max(max_bytes, csv.field_size_limit()))
    lines = _CsvLines(stream, max_bytes)
    # strict: a quote open at the end of the file is an error, not a cell to its end
    reader = csv.reader(lines, delimiter="\t" if spec.format == "tsv" else ",", strict=True)
    header: list[str] | None = None
    position = 0
    while True:
        first = lines.next_number
        try:
            row = next(reader)
        except StopIteration:
            return
        except (_BadInput, csv.Error) as exc:
            where = f"line {first}" if isinstance(exc, csv.Error) else ""
            reason = str(exc).replace("unexpected end of data", "a quote there never closes")
            message = f"{where} is not valid CSV ({reason})" if where else str(exc)
            if "unexpected end of data" in str(exc):
                lines.replay()  # a quote open to the end: the lines after it are rows
            else:  # broken or too long: the record is skipped whole, as one item
                lines.end_record()
            if header is None:
                raise UsageError(f"{spec.path}: the header row cannot be read: {message}") from None
            yield Record(position, position + 1, f"row {position + 1}", {}, message)
            position += 1
            continue
        lines.end_record()
        if header is None:
            header = _check_header(row, spec)
            continue
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        where = f"row {position + 1} (line {first})"
        fields = dict(zip(header, row, strict=False))
        fields.update((name, "") for name in header[len(row) :])  # a short row: empty cells
        size = sum(len(cell) for cell in row)
        item_id = _get_id(fields, spec.id_field, position + 1)
        if any(cell.strip() for cell in row[len(header) :]):
            yield Record(position, item_id, where, {}, _too_many_cells(where, row, header))
        else:
            yield Record(position, item_id, where, fields, size=size)
        position += 1


def _too_many_cells(where: str, row: list[str], header: list[str]) -> str:
    """Why a row with cells past the header's fails: they were dropped without a word,
    and a comma in a cell left unquoted cut the prompt short."""
    return (
        f"{where} has {len(row)} cells but the header names {len(header)} "
        "(a delimiter in a cell that is not quoted?)"
    )


def _check_header(row: list[str], spec: InputSpec) -> list[str]:
    """The column names; a usage error when the command needs one the file lacks."""
    names = [name.strip() for name in row]
    where = "stdin" if spec.path == STDIN else spec.path
    if not any(names):
        raise UsageError(f"{where}: the first row must name the columns (it is empty)")
    missing = [name for name in spec.columns if name not in names]
    if missing:
        raise UsageError(
            f"{where} has no column {missing[0]!r} (the command uses it; its columns: "
            f"{', '.join(names)})"
        )
    return names


# -- a folder of files ------------------------------------------------------------------


def _read_files(spec: InputSpec, max_bytes: int, leave_out: FileId | None) -> Iterator[Record]:
    """Every file under the folder, sorted by path; hidden files and folders left out."""
    root = Path(spec.path)
    for position, found in enumerate(_walk(root, spec.glob, leave_out)):
        path, kind, problem = found
        name = path.relative_to(root).as_posix()
        where = f"{kind} {name}"
        try:
            if problem is not None:
                raise _BadInput(f"{where} cannot be read ({problem})")
            content = _read_file(path, where, max_bytes)
        except _BadInput as exc:
            yield Record(position, name, where, {"path": name, "name": path.name}, str(exc))
            continue
        fields = {"path": name, "name": path.name, "content": content}
        yield Record(position, name, where, fields, size=len(content))


def is_listed(root: Path, path: Path, glob: str | None) -> bool:
    """Whether a folder's listing takes ``path``: under ``root``, nothing hidden on the
    way, and matching ``glob`` by name or by its path in the folder."""
    if not path.is_relative_to(root):
        return False
    relative = path.relative_to(root)
    if any(part.startswith(".") for part in relative.parts):
        return False
    return _matches(path.name, relative.as_posix(), glob)


def _matches(name: str, relative: str, glob: str | None) -> bool:
    return not glob or fnmatch.fnmatch(name, glob) or fnmatch.fnmatch(relative, glob)


def _is_file(entry: os.DirEntry[str], wanted: FileId) -> bool:
    """Whether ``entry`` is the file ``wanted``, or a link to it (a stat only for a link
    or an inode that matches)."""
    try:
        if not entry.is_symlink() and entry.inode() != wanted[1]:
            return False
        found = entry.stat()
    except OSError:  # a link to nothing, a loop: not the output, said as its own item
        return False
    return (found.st_dev, found.st_ino) == wanted


def _walk(
    root: Path, glob: str | None, leave_out: FileId | None = None
) -> Iterator[tuple[Path, str, str | None]]:
    """(path, "file", None) for each file in path order (``a.md``, ``b/c.md``,
    ``big.md``), or (path, "folder" or "file", why) for a folder that cannot be listed
    or an entry that is not a file to read (a loop, a link to nothing, a named pipe, a
    socket or a device): it costs its own item with the reason, never silently dropped,
    and a pipe is never opened (it would wait for a writer). Links to folders are not
    followed (no loops); links to files are. The file ``leave_out`` is not listed."""
    stack = [iter(_list(root))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):
            try:
                stack.append(iter(_list(path)))
            except OSError as exc:
                yield path, "folder", exc.strerror or str(exc)
            continue
        if not _matches(entry.name, path.relative_to(root).as_posix(), glob):
            continue
        if leave_out is not None and _is_file(entry, leave_out):
            continue
        try:
            is_file = entry.is_file()
        except OSError as exc:  # a link loop (ELOOP): the item fails, the job goes on
            yield path, "file", exc.strerror or str(exc)
            continue
        yield path, "file", None if is_file else _not_a_file(path)


def _not_a_file(path: Path) -> str:
    """Why an entry that is not a regular file, even through its link, is not read."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a link to nothing"
    except OSError as exc:
        return exc.strerror or str(exc)
    for test, kind in _KINDS:
        if test(mode):
            return f"{kind}, not a regular file"
    return "not a regular file"


_KINDS = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
)


def _list(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def _read_file(path: Path, where: str, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise _BadInput(f"{where} cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise _BadInput(
            f"{where} is larger than {format_size(max_bytes)} (setting max_input_bytes)"
        )
    return data
