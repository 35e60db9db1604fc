"""Model output cannot drive the terminal: every kind of escape, through every output path.

Each attack arrives the way a hostile or broken server would send it, through the
loopback servers: in the answer text (split across pieces, so a sequence straddles
two of them), in the JSON of a 4xx/5xx error body, in an error in the middle of a
stream, and in the model names of ``/api/tags`` and ``/v1/models``. The bytes that
reach stdout and stderr are checked in a pipe and in a pseudo-terminal, where the
markdown renderer and rich's tables run and a pyte screen shows what a person sees.
"""

from __future__ import annotations

import json
import os

import pexpect
import pyte
import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command
from tests.servers import FakeOllama, FakeOpenAI, Reply

ATTACKS = {
    "csi-clear-screen": "\x1b[2J\x1b[H",
    "csi-cursor-moves": "\x1b[10A\x1b[5;5H",
    "osc0-title": "\x1b]0;pwned\x07",
    "osc8-hyperlink": "\x1b]8;;http://evil.example/\x1b\\click here\x1b]8;;\x1b\\",
    "osc52-clipboard": "\x1b]52;c;cm0gLXJmIH4=\x07",
    "dcs": "\x1bP1$r0m\x1b\\",
    "c1-8bit-csi": "\x9b2J",
    "bidi-override": "invoice\u202efdp.exe",
    "rich-markup": "[link=http://evil.example/]docs[/link]",
}
PAYLOAD = " | ".join(ATTACKS.values())
C0 = {chr(c) for c in range(0x20)} - {"\n", "\t"}
C1 = {chr(c) for c in range(0x80, 0xA0)}
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
DANGEROUS = frozenset(C0 | C1 | BIDI | {"\x7f"})
# What a hostile sequence would look like in a terminal's raw bytes. rich's own output on
# a terminal uses SGR styles and, for the live view, cursor-up and erase-line only.
FORBIDDEN_BYTES = (
    b"\x1b]",  # any OSC: title, hyperlink, clipboard
    b"\x1bP",  # DCS
    b"\x1b[2J",
    b"\x1b[H",
    b"\x1b[10A",
    b"\x1b[5;5H",
    b"\x07",
)


def pieces_of(text: str, size: int = 3) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def assert_clean_text(text: str) -> None:
    assert not DANGEROUS & set(text), repr(text)


def assert_visible(text: str) -> None:
    """The attacks are shown, not obeyed: as control pictures and <U+XXXX>."""
    for shown in ("␛[2J", "␛]0;pwned␇", "␛]52;c;", "<U+009B>2J", "<U+202E>"):
        assert shown in text, (shown, text)


# -- pipes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [[], ["--no-stream"]], ids=["streamed", "no-stream"])
def test_answer_from_ollama_in_a_pipe(
    cortan: type[CortanRunner], ollama_env: FakeOllama, mode: list[str]
) -> None:
    ollama_env.queue(Reply(pieces=pieces_of(PAYLOAD)))
    result = cortan.run("ask", *mode, "--no-stdin", "x")
    assert result.code == 0, result.stderr
    assert_clean_text(result.stdout)
    assert_visible(result.stdout)
    assert ATTACKS["rich-markup"] in result.stdout  # plain text stays as it was


def test_answer_from_openai_in_a_pipe(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    openai_env.queue(Reply(pieces=pieces_of(PAYLOAD, 2)))
    result = cortan.run("ask", "--no-stdin", "x")
    assert result.code == 0, result.stderr
    assert_clean_text(result.stdout)
    assert_visible(result.stdout)


def test_json_output_escapes_every_control_and_keeps_the_text(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=pieces_of(PAYLOAD + "\x7f\u2066")))
    result = cortan.run("ask", "--json", "--no-stdin", "x")
    assert result.code == 0, result.stderr
    assert_clean_text(result.stdout.rstrip("\n"))
    assert json.loads(result.stdout)["content"] == PAYLOAD + "\x7f\u2066"  # exact for scripts


@pytest.mark.parametrize("status", [400, 500])
def test_server_text_in_an_error_body(
    cortan: type[CortanRunner], ollama_env: FakeOllama, status: int
) -> None:
    ollama_env.default = Reply(status=status, error=PAYLOAD)
    result = cortan.run("ask", "--no-stdin", "x", env={"CORTAN_RETRY__ATTEMPTS": "1"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert_clean_text(result.stderr)
    assert "␛[2J" in result.stderr


def test_openai_error_message_and_in_stream_error(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    env = {"CORTAN_RETRY__ATTEMPTS": "1"}
    openai_env.queue(Reply(status=503, error=PAYLOAD))
    failed = cortan.run("ask", "--no-stdin", "x", env=env)
    openai_env.queue(Reply(pieces=["ok "], fault="error_in_stream", error=PAYLOAD))
    mid = cortan.run("ask", "--no-stdin", "x", env=env)
    for result in (failed, mid):
        assert result.code == 1
        assert_one_sentence(result.stderr)
        assert_clean_text(result.stderr + result.stdout)
        assert "␛[2J" in result.stderr


def test_ollama_in_stream_error(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["partial "], fault="error_in_stream", error=PAYLOAD))
    result = cortan.run("ask", "--no-stdin", "x")
    assert (result.code, result.stdout) == (1, "partial \n")
    assert_clean_text(result.stderr)
    assert_visible(result.stderr)


HOSTILE_NAMES = [f"evil{value}:latest" for value in ATTACKS.values()]


def test_model_names_from_servers_in_a_pipe(
    cortan: type[CortanRunner], ollama_env: FakeOllama, openai_env: FakeOpenAI
) -> None:
    ollama_env.models = [*HOSTILE_NAMES, "llama3.2:latest"]
    openai_env.models = HOSTILE_NAMES
    table = cortan.run("models")
    listed = cortan.run("models", "--json")
    assert table.code == 0, table.stderr
    assert_clean_text(table.stdout + table.stderr)
    assert "␛]0;pwned␇" in table.stdout
    assert ATTACKS["rich-markup"] in table.stdout  # shown as text, not read as markup
    assert_clean_text(listed.stdout)
    names = [model["name"] for model in json.loads(listed.stdout)["models"]]
    assert set(HOSTILE_NAMES) <= set(names)


# -- a pseudo-terminal ----------------------------------------------------------------------

ROWS, COLS = 40, 120


class PtyRun:
    """cortan on a pseudo-terminal (stdout and stderr both), read to the end."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        command = cortan_command()
        child = pexpect.spawn(
            command[0], [*command[1:], *args], env=env, dimensions=(ROWS, COLS), encoding=None
        )
        chunks = []
        while True:
            try:
                chunks.append(child.read_nonblocking(65536, timeout=20))
            except pexpect.EOF:
                break
        child.close()
        self.code = child.exitstatus
        self.raw = b"".join(chunks)
        self.screen = pyte.Screen(COLS, ROWS)
        pyte.ByteStream(self.screen).feed(self.raw)

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def assert_safe(self) -> None:
        for sequence in FORBIDDEN_BYTES:
            assert sequence not in self.raw, (sequence, self.raw)
        decoded = self.raw.decode("utf-8")  # strict: a stray 8-bit control byte fails here
        assert not (C1 | BIDI) & set(decoded), decoded  # U+009B is an 8-bit CSI
        assert self.screen.title == "" and self.screen.icon_name == ""


@pytest.fixture
def tty_env() -> dict[str, str]:
    return {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLS), "LINES": str(ROWS)}


@pytest.mark.e2e
def test_markdown_renderer_on_a_terminal(ollama_env: FakeOllama, tty_env: dict[str, str]) -> None:
    answer = f"# Title\n\nText {PAYLOAD}\n\n```\ncode {PAYLOAD}\n```\n\n- item {PAYLOAD}\n"
    ollama_env.queue(Reply(pieces=pieces_of(answer, 4)))
    run = PtyRun(["ask", "x"], tty_env)
    assert run.code == 0, run.raw
    run.assert_safe()
    assert "␛[2J" in run.text and "<U+202E>" in run.text
    assert "\x1b[" in run.raw.decode()  # it really rendered, with rich's own styles


@pytest.mark.e2e
def test_errors_and_model_tables_on_a_terminal(
    ollama_env: FakeOllama, tty_env: dict[str, str]
) -> None:
    ollama_env.models = [*HOSTILE_NAMES, "llama3.2:latest"]
    table = PtyRun(["models", "-p", "ollama"], tty_env)
    assert table.code == 0, table.raw
    table.assert_safe()
    assert "docs[/link]" in table.text  # the markup is text, not a hidden link
    ollama_env.default = Reply(status=500, error=PAYLOAD)
    failed = PtyRun(["ask", "x"], {**tty_env, "CORTAN_RETRY__ATTEMPTS": "1"})
    assert failed.code == 1
    failed.assert_safe()
    assert "reported an error" in failed.text


@pytest.mark.e2e
def test_raw_is_refused_on_a_terminal(ollama_env: FakeOllama, tty_env: dict[str, str]) -> None:
    ollama_env.queue(Reply(pieces=pieces_of(PAYLOAD)))
    run = PtyRun(["ask", "--raw", "x"], tty_env)
    assert run.code == 0, run.raw
    run.assert_safe()
    assert "--raw is ignored on a terminal" in run.text


def test_raw_passes_every_byte_to_a_pipe(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=pieces_of(PAYLOAD)))
    result = cortan.run("ask", "--raw", "--no-stdin", "x")
    assert result.stdout == PAYLOAD  # every byte, and nothing added (issue 21)
