"""`cortan ask -x` / `--xl`: only a fenced code block of the answer, as `llm -x` (issue 21)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortan.render.extract import CodeBlocks, extract_code, get_code_blocks
from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, Reply

ANSWER = (
    "Here is how:\n\n```bash\nls -l | wc -l\necho done\n```\n\nOr in Python:\n\n"
    "~~~python\nprint(len(__import__('os').listdir()))\n~~~\n"
)


def test_the_first_code_block_is_printed_plain(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=[ANSWER[i : i + 5] for i in range(0, len(ANSWER), 5)]))
    result = cortan.run("ask", "-x", "count files")
    assert result.code == 0, result.stderr
    assert result.stdout == "ls -l | wc -l\necho done\n"


def test_extract_last_takes_the_last_block(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=[ANSWER]))
    result = cortan.run("ask", "--xl", "count files")
    assert result.stdout == "print(len(__import__('os').listdir()))\n"


def test_an_answer_without_a_block_is_printed_whole(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["No code ", "needed: use ", "`ls`."]))
    result = cortan.run("ask", "-x", "count files")
    assert (result.code, result.stdout) == (0, "No code needed: use `ls`.\n")


def test_json_carries_the_code(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=[ANSWER]), Reply(pieces=["none here"]))
    report = json.loads(cortan.run("ask", "-x", "--json", "q").stdout)
    assert report["code"] == "ls -l | wc -l\necho done\n"
    assert report["content"] == ANSWER
    assert json.loads(cortan.run("ask", "-x", "--json", "q").stdout)["code"] is None


def test_the_first_block_is_printed_before_the_answer_ends(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["```\nfirst\n```\n", "and then a long tail"], fault="never_end"))
    proc = cortan.popen("ask", "-x", "q")
    assert proc.stdout is not None
    started = time.monotonic()
    assert proc.stdout.readline() == b"first\n"
    assert time.monotonic() - started < 20
    result = cortan.interrupt(proc)
    assert result.stdout == ""  # nothing more: the rest of the answer is not wanted


def test_escape_codes_in_the_code_are_neutralised(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(
        Reply(pieces=["```\nrm \x1b[2J -rf\n```\n"]), Reply(pieces=["```\n\x1b]0;t\x07\n```"])
    )
    assert "\x1b" not in cortan.run("ask", "-x", "q").stdout
    assert "\x1b" in cortan.run("ask", "-x", "--raw", "q").stdout  # --raw: the bytes as sent


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-x", "--xl"], "either --extract or --extract-last"),
        (["-x", "--schema", "name str"], "leave out --extract"),
    ],
)
def test_conflicting_flags_fail_in_one_sentence(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: list[str], says: str
) -> None:
    result = cortan.run("ask", *args, "q")
    assert result.code == 2
    assert says in result.stderr
    assert_one_sentence(result.stderr)
    assert not ollama_env.chat_requests


@pytest.mark.parametrize(
    ("text", "blocks"),
    [
        ("```\na\n```", ["a\n"]),
        ("```py\na\n\nb\n````\nc\n```", ["a\n\nb\n"]),  # a longer closing fence closes
        ("````\n```\nin\n```\n````", ["```\nin\n```\n"]),  # a shorter one does not
        ("~~~\n```\n~~~", ["```\n"]),  # nor the other character
        ("  ```\n  two\n    four\n  ```", ["two\n  four\n"]),  # the fence's indent comes off
        ("- item\n\n      ```\n      nested\n      ```", []),  # not top level: indented code
        ("> ```\n> quoted\n> ```", []),
        ("``` a ` b\nx\n```", []),  # a backtick in the info string: not a fence
        ("```\nnever closed", ["never closed\n"]),
        ("```\r\nwindows\r\n```\r\n", ["windows\n"]),
        ("", []),
    ],
)
def test_what_counts_as_a_block(text: str, blocks: list[str]) -> None:
    assert get_code_blocks(text) == blocks


@given(st.text(alphabet="`~ \nab>-", max_size=60), st.lists(st.integers(0, 60), max_size=6))
def test_pieces_anywhere_find_the_same_blocks(text: str, cuts: list[int]) -> None:
    scanner = CodeBlocks()
    start = 0
    for cut in sorted(cuts):
        scanner.feed(text[start:cut])
        start = max(start, cut)
    scanner.feed(text[start:])
    scanner.end()
    assert scanner.blocks == get_code_blocks(text)


def test_extract_code_first_and_last() -> None:
    assert extract_code(ANSWER) == "ls -l | wc -l\necho done\n"
    assert extract_code(ANSWER, last=True) == "print(len(__import__('os').listdir()))\n"
    assert extract_code("no code") is None
