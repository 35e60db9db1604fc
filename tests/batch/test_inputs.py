"""Reading a batch's input: every format, and every way an input can be broken or hostile.

A broken item costs that item (a record with one sentence naming where it is), never
the job; nothing is held whole, however long a line or large a file.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from cortan.batch.inputs import (
    InputSpec,
    Record,
    check_ids,
    check_input,
    count_records,
    detect_format,
    is_listed,
    read_records,
)
from cortan.core.errors import UsageError

MAX = 1000


def read(path: Path, fmt: str, **spec: object) -> list[Record]:
    return list(read_records(InputSpec(str(path), fmt, **spec), max_bytes=MAX))  # type: ignore[arg-type]


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [("a.jsonl", None, "jsonl"), ("a.NDJSON", None, "jsonl"), ("a.csv", None, "csv"),
     ("a.tsv", None, "tsv"), ("a.txt", None, "lines"), ("-", None, "lines"),
     ("a.txt", "jsonl", "jsonl")],
)  # fmt: skip
def test_the_format_comes_from_the_flag_else_the_name(
    name: str, given: str | None, expected: str
) -> None:
    assert detect_format(name, given) == expected


def test_a_folder_is_files_and_a_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    assert detect_format(str(tmp_path), None) == "files"
    with pytest.raises(UsageError, match="--format 'xml' is not one of jsonl, csv"):
        detect_format("a", "xml")


def test_inputs_that_cannot_be_read_at_all_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read .*nope.jsonl: there is no such file"):
        check_input(InputSpec(str(tmp_path / "nope.jsonl"), "jsonl"))
    with pytest.raises(UsageError, match="is a folder"):
        check_input(InputSpec(str(tmp_path), "jsonl"))
    with pytest.raises(UsageError, match="cannot come from stdin"):
        check_input(InputSpec("-", "files"))


def test_json_lines_ids_strings_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.jsonl",
        '{"id": "a", "prompt": "one"}\n\n   \n"two"\r\n{"id": 7, "text": "three"}\n{"id": true}',
    )
    records = read(path, "jsonl")
    assert [(r.position, r.id, r.where) for r in records] == [
        (0, "a", "line 1"), (1, 4, "line 4"), (2, 7, "line 5"), (3, 6, "line 6"),
    ]  # fmt: skip
    assert records[1].fields == {"prompt": "two"}
    assert records[2].fields["text"] == "three"
    assert all(r.error is None for r in records)
    assert count_records(InputSpec(str(path), "jsonl"), max_bytes=MAX) == 4


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"not json", "line 1 is not JSON (Expecting value)"),
        (b"[1, 2]", "line 1 is JSON but not an object or a string"),
        (b'{"a": 1', "line 1 is not JSON (Expecting ',' delimiter)"),
        (b'{"a": "\xff"}', "line 1 is not UTF-8 text (byte 0xff at column 8)"),
        (b"[" * 100_000, "line 1 is JSON nested too deeply to read"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "line 1 is not JSON (a number too long to read)"),
    ],
    ids=["text", "array", "cut", "latin1", "deep", "huge-int"],
)
def test_a_bad_json_line_is_one_sentence_and_the_rest_still_reads(
    tmp_path: Path, line: bytes, error: str
) -> None:
    path = write(tmp_path, "in.jsonl", line + b'\n{"prompt": "fine"}\n')
    bad, good = list(read_records(InputSpec(str(path), "jsonl"), max_bytes=200_000))
    assert bad.error is not None and bad.error.startswith(error), bad.error
    assert (bad.position, bad.id) == (0, 1)
    assert good.error is None and good.fields == {"prompt": "fine"}


def test_a_line_past_the_limit_is_dropped_without_being_held(tmp_path: Path) -> None:
    path = write(tmp_path, "in.txt", "x" * (MAX * 50) + "\nshort\n" + "y" * (MAX + 1))
    long_, short, last = read(path, "lines")
    assert long_.error == "line 1 is longer than 1000 bytes (setting max_input_bytes)"
    assert short.fields == {"line": "short"}
    assert last.error is not None and last.error.startswith("line 3 is longer")
    assert count_records(InputSpec(str(path), "lines"), max_bytes=MAX) == 3


def test_lines_strip_endings_and_a_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "in.txt", b"\xef\xbb\xbffirst\r\n\nsecond\nthird")
    assert [r.fields["line"] for r in read(path, "lines")] == ["first", "second", "third"]
    assert [r.id for r in read(path, "lines")] == [1, 3, 4]


def test_csv_rows_with_quotes_newlines_ids_and_short_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "in.csv",
        'id,text,lang\nr1,"hello, world",en\nr2,"two\nlines",fr\n\n,short\n',
    )
    records = read(path, "csv")
    assert [(r.id, r.where) for r in records] == [
        ("r1", "row 1 (line 2)"), ("r2", "row 2 (line 3)"), (3, "row 3 (line 6)"),
    ]  # fmt: skip
    assert records[1].fields["text"] == "two\nlines"
    assert records[2].fields == {"id": "", "text": "short", "lang": ""}
    tsv = write(tmp_path, "in.tsv", "text\tn\na,b\t1\n")
    assert read(tsv, "tsv")[0].fields == {"text": "a,b", "n": "1"}


def test_a_csv_row_with_more_cells_than_the_header_fails_that_row(tmp_path: Path) -> None:
    """`2,hello, world` was the text "hello", " world" dropped without a word (red team);
    empty cells past the header (a spreadsheet's trailing commas) are harmless."""
    path = write(tmp_path, "in.csv", "id,text\n1,fine\n2,hello, world\n3,ok,,\n")
    one, two, three = read(path, "csv")
    assert one.fields == {"id": "1", "text": "fine"}
    assert (two.id, two.error) == (
        "2",
        "row 2 (line 3) has 3 cells but the header names 2 (a delimiter in a cell that is "
        "not quoted?)",
    )
    assert three.fields == {"id": "3", "text": "ok"}


def test_a_csv_quote_that_never_closes_costs_one_record(tmp_path: Path) -> None:
    rows = "".join(f"{n},fine\n" for n in range(2, 400))
    path = write(tmp_path, "in.csv", 'id,text\n1,"never closed\n' + rows)
    records = read(path, "csv")
    first = records[0]
    assert first.error is not None
    assert "longer than 1000 bytes (a quote that never closes?)" in first.error
    assert [r.error for r in records[1:]] == [None] * (len(records) - 1)
    assert records[-1].fields == {"id": "399", "text": "fine"}


def test_a_csv_quote_open_at_the_end_costs_its_line_only(tmp_path: Path) -> None:
    """The rows after it were one cell of its row, silently, with exit 0 (red team)."""
    path = write(tmp_path, "in.csv", 'id,text\n1,hello\n3,"never closed\n4,after\n5,last\n')
    one, broken, four, five = read(path, "csv")
    assert one.fields == {"id": "1", "text": "hello"}
    assert broken.error == "line 3 is not valid CSV (a quote there never closes)"
    assert (four.where, four.fields) == ("row 3 (line 4)", {"id": "4", "text": "after"})
    assert (five.where, five.fields) == ("row 4 (line 5)", {"id": "5", "text": "last"})


def test_a_csv_record_broken_in_the_middle_costs_that_record(tmp_path: Path) -> None:
    """A quote closed by a later row's quote: one item fails, named; none is made up."""
    path = write(tmp_path, "in.csv", 'id,text\n3,"open\n4,a "quoted" word\n5,fine\n')
    broken, five = read(path, "csv")
    assert broken.error is not None and broken.error.startswith("line 2 is not valid CSV")
    assert five.fields == {"id": "5", "text": "fine"}


def test_csv_that_is_not_utf8_fails_the_row_only(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", b"text\ncaf\xe9\nok\n")
    bad, good = read(path, "csv")
    assert bad.error == "line 2 is not UTF-8 text (byte 0xe9 at column 4)"
    assert good.fields == {"text": "ok"}


def test_csv_columns_the_command_needs_are_checked_at_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "id,body\n1,x\n")
    with pytest.raises(UsageError, match=r"in.csv has no column 'text' \(the command uses it; "):
        read(path, "csv", columns=("text",))
    empty = write(tmp_path, "empty.csv", ",\n1,2\n")
    with pytest.raises(UsageError, match="the first row must name the columns"):
        read(empty, "csv")


def test_a_folder_sorted_hidden_left_out_glob_and_limits(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    (root / "b").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "z.md").write_text("last")
    (root / "a.md").write_text("first")
    (root / "b" / "c.txt").write_text("nested")
    (root / ".hidden.md").write_text("no")
    (root / ".git" / "x.md").write_text("no")
    (root / "big.md").write_bytes(b"x" * (MAX + 1))
    records = read(root, "files")
    assert [r.id for r in records] == ["a.md", "b/c.txt", "big.md", "z.md"]
    assert records[1].fields == {"path": "b/c.txt", "name": "c.txt", "content": b"nested"}
    assert records[2].error == "file big.md is larger than 1000 bytes (setting max_input_bytes)"
    assert [r.id for r in read(root, "files", glob="*.md")] == ["a.md", "big.md", "z.md"]
    assert [r.id for r in read(root, "files", glob="b/*")] == ["b/c.txt"]
    assert count_records(InputSpec(str(root), "files"), max_bytes=MAX) == 4


def test_a_folder_leaves_out_the_output_by_any_name(tmp_path: Path) -> None:
    """The job's output in its input folder (or a link to it) is not an item; the
    places of the items after it close up, and the counting pass agrees."""
    root = tmp_path / "notes"
    root.mkdir()
    (root / "a.md").write_text("first")
    out = root / "out.jsonl"
    out.write_text('{"id": "a.md"}\n')
    (root / "sub").mkdir()
    (root / "sub" / "link.jsonl").symlink_to(out)
    (root / "z.md").write_text("last")
    found = out.stat()
    spec = InputSpec(str(root), "files")
    records = list(read_records(spec, max_bytes=MAX, leave_out=(found.st_dev, found.st_ino)))
    assert [(r.position, r.id) for r in records] == [(0, "a.md"), (1, "z.md")]
    assert count_records(spec, max_bytes=MAX, leave_out=(found.st_dev, found.st_ino)) == 2
    assert [r.id for r in read(root, "files")] == ["a.md", "out.jsonl", "sub/link.jsonl", "z.md"]
    assert is_listed(root, out, None) and not is_listed(root, out, "*.md")
    assert not is_listed(root, tmp_path / "elsewhere.jsonl", None)
    assert not is_listed(root, root / ".cache" / "out.jsonl", None)


def test_check_ids_refuses_a_repeat_and_names_both_places(tmp_path: Path) -> None:
    path = write(
        tmp_path, "in.jsonl",
        '{"id": 5, "prompt": "a"}\n{"id": "5", "prompt": "b"}\nnot json\n{"prompt": "c"}\n'
        '{"id": "' + "x" * 100 + '", "prompt": "d"}\n{"id": 4, "prompt": "e"}\n',
    )  # fmt: skip
    spec = InputSpec(str(path), "jsonl")
    with pytest.raises(UsageError) as caught:
        list(check_ids(read_records(spec, max_bytes=MAX)))
    # line 3 is broken (its id, 3, is its place: not checked); line 4's id is its number
    assert str(caught.value).startswith("line 6 has the id 4, as line 4 does: each item")
    ids = [r.id for r in itertools.islice(check_ids(read_records(spec, max_bytes=MAX)), 5)]
    assert ids == [5, "5", 3, 4, "x" * 100]


def test_an_unreadable_file_is_one_record(tmp_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads a file whatever its mode")
    root = tmp_path / "docs"
    root.mkdir()
    secret = root / "secret.md"
    secret.write_text("x")
    secret.chmod(0)
    (record,) = read(root, "files")
    assert record.error == "file secret.md cannot be read (Permission denied)"


def test_reading_streams_a_large_input(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("w") as file:
        for n in range(20_000):
            file.write(json.dumps({"id": n, "prompt": f"p{n}"}) + "\n")
    records = read_records(InputSpec(str(path), "jsonl"), max_bytes=MAX)
    first = next(records)
    assert first.id == 0
    assert sum(1 for _ in records) == 19_999
