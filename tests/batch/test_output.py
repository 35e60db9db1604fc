"""The output writer: lines in input order as soon as they can go, or as items end."""

from __future__ import annotations

import io
import json

from cortan.batch.output import OutputWriter, make_error_line, make_line
from cortan.core.events import ChatCancelled, ChatFailed, ChatFinished
from cortan.core.messages import Usage


def test_lines_go_out_in_order_as_soon_as_the_ones_before_them_ended() -> None:
    out = io.StringIO()
    written: list[int] = []
    writer = OutputWriter(out, written=written.append)
    writer.add(2, "c")
    writer.add(1, "b")
    assert (out.getvalue(), writer.waiting) == ("", 2)
    writer.add(0, "a")
    assert out.getvalue() == "a\nb\nc\n"
    assert written == [0, 1, 2]
    writer.add(4, "e")
    writer.add(3, "d")
    assert out.getvalue().splitlines() == ["a", "b", "c", "d", "e"]
    assert (writer.count, writer.waiting) == (5, 0)


def test_unordered_lines_go_out_as_items_end() -> None:
    out = io.StringIO()
    writer = OutputWriter(out, ordered=False)
    writer.add(2, "c")
    writer.add(0, "a")
    assert out.getvalue() == "c\na\n"


def test_a_line_is_the_ask_json_report_with_the_id() -> None:
    finished = ChatFinished(1, "ollama", "m", "4", "stop", Usage(3, 1), cached=True)
    line = json.loads(make_line("q7", finished))
    assert list(line)[:2] == ["id", "model"]
    assert (line["id"], line["content"], line["cached"]) == ("q7", "4", True)
    assert line["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "thinking_tokens": None}
    failed = json.loads(make_line(3, ChatFailed(1, "timeout", "too slow", content="par")))
    assert failed["error"] == {"kind": "timeout", "message": "too slow"}
    assert (failed["finish_reason"], failed["content"], failed["cached"]) == ("error", "par", False)
    assert json.loads(make_line(1, ChatCancelled(1)))["finish_reason"] == "interrupted"
    bad = json.loads(make_error_line(2, "input", "line 2 is not JSON"))
    assert bad["error"] == {"kind": "input", "message": "line 2 is not JSON"}
    assert set(bad) == set(failed)


def test_control_characters_from_the_model_are_escaped() -> None:
    finished = ChatFinished(1, "ollama", "m", "\x1b[2J\x9b", "stop")
    line = make_line(1, finished)
    assert "\x1b" not in line and "\x9b" not in line
    assert json.loads(line)["content"] == "\x1b[2J\x9b"
