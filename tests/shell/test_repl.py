"""The REPL driven through prompt-toolkit's pipe input, against the loopback servers.

Assertions are on what a user sees (the console's text), what the server
received, the conversation and the history: never on prompt-toolkit's bytes.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prompt_toolkit.application import create_app_session
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from cortan.app import App, make_repl
from cortan.config.load import load_settings
from cortan.core.events import (
    ChatCancelled,
    ChatEnded,
    ChatFailed,
    ChatFinished,
    ThinkingDelta,
    TokenDelta,
)
from cortan.shell.prompt import parse_history
from cortan.shell.repl import Repl
from cortan.store import SessionStore
from tests.servers import FakeOllama, FakeOpenAI, Reply

ALT_ENTER = "\x1b\r"


@dataclass
class Shell:
    """A running REPL, its input pipe, its console and the events it produced."""

    repl: Repl
    pipe: PipeInput
    console: Console
    ended: asyncio.Queue[ChatEnded]
    deltas: asyncio.Queue[str]
    task: asyncio.Task[None]
    thoughts: asyncio.Queue[str] = field(default_factory=asyncio.Queue)  # ThinkingDelta texts

    @property
    def screen(self) -> str:
        file = self.console.file
        assert isinstance(file, io.StringIO)
        return file.getvalue()

    @property
    def text(self) -> str:
        """The screen with the console's line wrapping undone (every run of spaces one)."""
        return " ".join(self.screen.split())

    async def send(self, text: str) -> None:
        self.pipe.send_text(text)
        await asyncio.sleep(0)

    async def ask(self, line: str) -> ChatEnded:
        self.pipe.send_text(line + "\r")
        return await asyncio.wait_for(self.ended.get(), 10)

    async def command(self, line: str) -> None:
        """Run a slash command and wait until the prompt is back."""
        marker = f"/__done_{id(line)}"
        before = self.screen
        self.pipe.send_text(line + "\r" + marker + "\r")
        await wait_for(lambda: f"unknown command {marker}" in self.screen[len(before) :])

    async def exit(self) -> None:
        self.pipe.send_text("\x04")
        await asyncio.wait_for(self.task, 10)


async def wait_for(predicate: object, timeout: float = 10) -> None:
    async def poll() -> None:
        while not (callable(predicate) and predicate()):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


@pytest.fixture
def pipe() -> Iterator[PipeInput]:
    with create_pipe_input() as inp, create_app_session(input=inp, output=DummyOutput()):
        yield inp


@pytest.fixture
async def shell(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> AsyncIterator[Shell]:
    shell = start_shell(pipe, isolated_env / "history")
    yield shell
    if not shell.task.done():
        shell.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await shell.task
    await shell.repl.services.aclose()


def start_shell(
    pipe: PipeInput,
    history: Path | None,
    store: SessionStore | None = None,
    first_input: str | None = None,
) -> Shell:
    console = Console(file=io.StringIO(), width=80, color_system=None)
    app = App.build(load_settings())
    ended: asyncio.Queue[ChatEnded] = asyncio.Queue()
    deltas: asyncio.Queue[str] = asyncio.Queue()
    app.bus.subscribe(ChatFinished, ended.put_nowait, priority=200)
    app.bus.subscribe(ChatFailed, ended.put_nowait, priority=200)
    app.bus.subscribe(ChatCancelled, ended.put_nowait, priority=200)
    app.bus.subscribe(TokenDelta, lambda e: deltas.put_nowait(e.text))
    repl = make_repl(
        app, console, history_path=history, store=store, input=pipe, output=DummyOutput()
    )
    task = asyncio.ensure_future(repl.run(first_input))
    shell = Shell(repl, pipe, console, ended, deltas, task)
    app.bus.subscribe(ThinkingDelta, lambda e: shell.thoughts.put_nowait(e.text))
    return shell


def sent_messages(server: FakeOllama, index: int = -1) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = server.chat_requests[index].json["messages"]
    return messages


async def test_a_colour_code_typed_at_the_prompt_is_dropped(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    """prompt_toolkit read ESC[31m, pasted without bracketed paste, as a mouse report and
    stopped on its own traceback with "Press ENTER to continue" (red team)."""
    await shell.ask("\x1b[31mhi\x1b[0m there")
    assert sent_messages(ollama_env)[-1]["content"] == "hi there"
    assert "Traceback" not in shell.screen
    await shell.exit()


async def test_two_turns_carry_the_conversation(shell: Shell, ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["About 2 million."]))
    assert isinstance(await shell.ask("Capital of France?"), ChatFinished)
    assert isinstance(await shell.ask("Population?"), ChatFinished)
    assert sent_messages(ollama_env) == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Population?"},
    ]
    assert "Paris." in shell.screen and "About 2 million." in shell.screen
    assert "ollama:llama3.2:latest · 7 in / 1 out" in shell.screen  # the dim footer
    await shell.exit()


async def test_history_persists_across_runs(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> None:
    first = start_shell(pipe, isolated_env / "history")
    await first.ask("remember me")
    await first.exit()
    await first.repl.services.aclose()
    second = start_shell(pipe, isolated_env / "history")
    await wait_for(lambda: "remember me" in list(second.repl.session.history.get_strings()))
    second.pipe.send_text("\x1b[A\r")  # Up recalls it; Enter sends it again
    await asyncio.wait_for(second.ended.get(), 10)
    assert sent_messages(ollama_env)[-1]["content"] == "remember me"
    await second.exit()
    await second.repl.services.aclose()
    assert (isolated_env / "history").stat().st_mode & 0o777 == 0o600


async def test_a_huge_history_file_loads_only_its_newest_entries(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> None:
    # Before: prompt-toolkit read the whole file, and a line with no end whole (a 1 GB
    # file of NULs took 2 GB of memory and half a minute before Up recalled anything).
    path = isolated_env / "history"
    entry = "\n# 2026-01-01 00:00:00\n+{}\n"
    with path.open("w") as file:
        file.write(entry.format("the oldest"))
        file.write("\0" * (3 << 20))  # one line of 3 MiB, no line end
        for n in range(20_000):
            file.write(entry.format(f"padding {n}"))
        file.write("\n# 2026-01-02 00:00:00\n+first line\n+second line\n")
    path.chmod(0o600)
    shell = start_shell(pipe, path)
    strings = shell.repl.session.history.get_strings
    await wait_for(lambda: "first line\nsecond line" in list(strings()))
    loaded = list(strings())
    assert loaded[-1] == "first line\nsecond line"
    assert "the oldest" not in loaded
    assert all("\0" not in line for line in loaded)
    assert 10_000 < len(loaded) < 20_002
    await shell.exit()
    await shell.repl.services.aclose()


async def test_no_history_writes_nothing(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> None:
    shell = start_shell(pipe, None)
    await shell.ask("secret thought")
    await shell.exit()
    await shell.repl.services.aclose()
    assert not (isolated_env / "data").exists()


async def test_triple_quote_block_and_alt_enter(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.ask('"""\rline one\rline two\r"""')
    assert sent_messages(ollama_env)[-1]["content"] == "line one\nline two"
    await shell.ask("first" + ALT_ENTER + "second")
    assert sent_messages(ollama_env)[-1]["content"] == "first\nsecond"
    await shell.exit()


async def test_bracketed_paste_keeps_newlines(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.ask("\x1b[200~pasted\nlines\x1b[201~")
    assert sent_messages(ollama_env)[-1]["content"] == "pasted\nlines"
    await shell.exit()


async def test_double_slash_sends_text(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.ask("//etc/hosts is a file")
    assert sent_messages(ollama_env)[-1]["content"] == "/etc/hosts is a file"
    await shell.exit()


async def test_unknown_command_suggests(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.command("/modle")
    assert "unknown command /modle; did you mean /model?" in shell.screen
    assert ollama_env.chat_requests == []
    await shell.exit()


async def test_model_show_and_switch(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.command("/model")
    assert "model: ollama:llama3.2:latest" in shell.screen
    await shell.command("/model ollama:qwen2.5-coder:7b")
    await shell.ask("hi")
    assert ollama_env.chat_requests[-1].json["model"] == "qwen2.5-coder:7b"
    await shell.command("/model ollama:")
    assert "has a provider but no model" in shell.screen
    await shell.exit()


async def test_models_lists_every_provider(shell: Shell) -> None:
    await shell.command("/models")
    assert "ollama:llama3.2:latest" in shell.screen
    assert "ollama:qwen2.5-coder:7b" in shell.screen
    assert "openai: OpenAI needs an API key" in shell.screen  # a provider that cannot answer
    await shell.exit()


async def test_models_says_once_when_a_listing_was_cut(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> None:
    ollama_env.models = [f"m{i}:latest" for i in range(1001)]
    shell = start_shell(pipe, isolated_env / "history")
    try:
        await shell.command("/models")
        cut = "ollama: the server lists 1000 models or more; cortan reads the first 1000"
        assert shell.screen.count(cut) == 1
        assert "ollama:m999:latest" in shell.screen and "ollama:m1000:latest" not in shell.screen
        await shell.exit()
    finally:
        await shell.repl.services.aclose()


async def test_system_prompt(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.command("/system")
    assert "no system prompt" in shell.screen
    await shell.command("/system You are terse.")
    await shell.ask("hi")
    assert sent_messages(ollama_env)[0] == {"role": "system", "content": "You are terse."}
    await shell.command("/system")
    assert "system: You are terse." in shell.screen
    await shell.exit()


async def test_clear_starts_over(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.ask("one")
    await shell.command("/clear")
    await shell.ask("two")
    assert sent_messages(ollama_env) == [{"role": "user", "content": "two"}]
    await shell.exit()


async def test_failure_then_retry(shell: Shell, ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(status=400, error="model runner crashed"), Reply(pieces=["fine"]))
    ended = await shell.ask("try this")
    assert isinstance(ended, ChatFailed)
    assert "rejected the request (400)" in shell.screen
    assert shell.repl.conversation.turns == []
    shell.pipe.send_text("/retry\r")
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert isinstance(ended, ChatFinished) and ended.content == "fine"
    assert sent_messages(ollama_env) == [{"role": "user", "content": "try this"}]
    await wait_for(lambda: shell.repl.conversation.turns)
    assert [t.answer for t in shell.repl.conversation.turns] == ["fine"]
    await shell.exit()


async def test_retry_replaces_the_last_answer(shell: Shell, ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["first"]), Reply(pieces=["second"]))
    await shell.ask("q")
    shell.pipe.send_text("/retry\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    assert sent_messages(ollama_env) == [{"role": "user", "content": "q"}]
    await wait_for(lambda: [t.answer for t in shell.repl.conversation.turns] == ["second"])
    await shell.exit()


async def test_ctrl_c_mid_answer_keeps_partial_and_shell(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["partial", "more"], fault="never_end", fault_after=1))
    shell.pipe.send_text("long question\r")
    assert await asyncio.wait_for(shell.deltas.get(), 10) == "partial"
    os.kill(os.getpid(), signal.SIGINT)  # what the terminal sends for Ctrl-C while streaming
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert isinstance(ended, ChatCancelled) and ended.content == "partial"
    assert await asyncio.to_thread(ollama_env.wait_disconnect, 5)
    await wait_for(lambda: shell.repl.conversation.turns)
    turn = shell.repl.conversation.turns[-1]
    assert (turn.answer, turn.interrupted) == ("partial", True)
    assert "[interrupted]" in shell.screen
    assert isinstance(await shell.ask("still there?"), ChatFinished)
    assert sent_messages(ollama_env)[-2] == {"role": "assistant", "content": "partial"}
    await shell.exit()


async def test_ctrl_c_while_the_model_thinks_says_the_answer_never_began(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    """Ctrl-C during a long thought left only `thought for 4.0 s … (/thinking shows it)`
    above the prompt, as if the answer had been nothing."""
    ollama_env.queue(
        Reply(thinking=["Let me see."], pieces=["4"], fault="never_end", fault_after=0)
    )
    shell.pipe.send_text("2+2?\r")
    assert await asyncio.wait_for(shell.thoughts.get(), 10) == "Let me see."
    os.kill(os.getpid(), signal.SIGINT)
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert isinstance(ended, ChatCancelled) and ended.content == ""
    await wait_for(lambda: "[interrupted before the answer began]" in shell.screen)
    assert "thought for" in shell.screen
    await shell.exit()


async def test_ctrl_c_at_prompt(shell: Shell) -> None:
    await shell.send("half typed\x03")
    await wait_for(lambda: shell.repl.session.default_buffer.text == "")
    await shell.send("\x03")
    await wait_for(lambda: "Ctrl-D or /exit leaves" in shell.screen)
    assert not shell.task.done()
    await shell.send("\x03")
    await asyncio.wait_for(shell.task, 10)


async def test_exit_and_quit(shell: Shell) -> None:
    await shell.send("/quit\r")
    await asyncio.wait_for(shell.task, 10)


async def test_help_lists_commands(shell: Shell) -> None:
    await shell.command("/help")
    for name in ("/model", "/models", "/system", "/clear", "/retry", "/edit", "/file", "/usage"):
        assert name in shell.screen
    assert "Alt-Enter" in shell.screen
    await shell.exit()


async def test_help_on_a_narrow_terminal_wraps_within_its_column(shell: Shell) -> None:
    """At 60 columns each summary wrapped back to column 0, under the command names."""
    shell.console.width = 60
    await wait_for(lambda: "Ctrl-D leaves" in shell.screen)  # the banner, drawn wider
    before = len(shell.screen)
    await shell.command("/help")
    rows = shell.screen[before:].split("Keys:")[0].splitlines()
    column = 2 + max(len(c.usage) for c in shell.repl.commands) + 2
    assert len(rows) > len(list(shell.repl.commands))  # some summaries did wrap
    for row in rows:
        assert len(row) <= 60, row
        assert row.startswith(("  /", " " * column)), row
    await shell.exit()


async def test_file_attaches_to_next_message(
    shell: Shell, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("the data\n")
    await shell.command(f"/file {notes}")
    assert "attached" in shell.screen
    await shell.ask("summarise")
    content = sent_messages(ollama_env)[-1]["content"]
    assert "the data" in content and content.endswith("summarise")
    await shell.ask("again")
    assert sent_messages(ollama_env)[-1]["content"] == "again"  # attached once only
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\x01\x02")
    await shell.command(f"/file {binary}")
    assert "binary" in shell.screen
    await shell.exit()


async def test_usage(shell: Shell) -> None:
    await shell.ask("hi")
    await shell.command("/usage")
    assert "this conversation: 1 turn, 7 tokens in, 4 out" in shell.screen
    await shell.exit()


def used_tokens(screen: str) -> int:
    """The last /usage's "context: about N of" figure."""
    import re

    return int(re.findall(r"context: about (\d+) of", screen)[-1])


async def test_usage_counts_a_file_waiting_to_be_sent(shell: Shell, tmp_path: Path) -> None:
    """`/file notes.md` then `/usage`: the file was left out of "context used", so a file
    that could not fit looked as if it would."""
    notes = tmp_path / "notes.md"
    notes.write_text("word " * 4000)
    await shell.command("/usage")
    before = used_tokens(shell.screen)
    await shell.command(f"/file {notes}")
    await shell.command("/usage")
    assert used_tokens(shell.screen) >= before + 2000
    assert "counting 1 attachment waiting for the next message" in shell.text
    await shell.exit()


async def test_edit_sends_what_the_editor_saved(
    shell: Shell, ollama_env: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'w').write('from the editor\\n')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    shell.pipe.send_text("/edit\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    assert sent_messages(ollama_env)[-1]["content"] == "from the editor"
    assert "› from the editor" in shell.screen  # what was sent shows in the transcript
    await shell.exit()


async def test_what_edit_sent_is_in_the_history(
    shell: Shell, isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up and Ctrl-R find the prompt written in the editor, as bash keeps what
    Ctrl-X Ctrl-E ran: only `/edit` was kept, and the text was lost to them."""
    editor = tmp_path / "editor.py"
    editor.write_text("import sys\nopen(sys.argv[1], 'w').write('from the editor\\n')\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    shell.pipe.send_text("/edit\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    buffer = shell.repl.session.default_buffer
    await shell.send("\x1b[A")  # Up
    await wait_for(lambda: buffer.text == "from the editor")
    await shell.send("\x03")
    await wait_for(lambda: buffer.text == "")
    await shell.exit()
    assert parse_history((isolated_env / "history").read_text()) == ["/edit", "from the editor"]


async def test_edit_without_visual_or_editor_opens_vi_as_git_does(
    shell: Shell, ollama_env: FakeOllama, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With neither variable set, /edit refused; git, crontab and less fall back to vi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    vi = bin_dir / "vi"
    vi.write_text(f"#!{sys.executable}\nimport sys\nopen(sys.argv[1], 'w').write('from vi\\n')\n")
    vi.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.delenv("EDITOR", raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    shell.pipe.send_text("/edit\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    assert sent_messages(ollama_env)[-1]["content"] == "from vi"
    await shell.exit()


@pytest.mark.parametrize(
    ("written", "sentence"),
    [
        ("b'text\\x00more'", "the edited prompt looks like binary data"),
        ("b'caf\\xe9'", "the edited prompt is not valid UTF-8 text"),
        ("b'x' * 2_000_000", "the edited prompt is over max_input_bytes"),
    ],
)
async def test_edit_refuses_what_no_prompt_may_be(
    shell: Shell,
    ollama_env: FakeOllama,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    written: str,
    sentence: str,
) -> None:
    """Binary was sent with U+FFFD in it, and any size was read whole."""
    editor = tmp_path / "editor.py"
    editor.write_text(f"import sys\nopen(sys.argv[1], 'wb').write({written})\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    await shell.command("/edit")
    assert sentence in shell.screen
    assert ollama_env.chat_requests == []
    await shell.exit()


@pytest.mark.parametrize(
    "leaves",
    [
        "os.remove(path)",
        "os.remove(path); os.mkfifo(path)",
        "os.remove(path); os.symlink('/dev/zero', path)",
    ],
    ids=["removed", "a FIFO", "a link to /dev/zero"],
)
async def test_edit_when_the_editor_leaves_no_file(
    shell: Shell,
    ollama_env: FakeOllama,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    leaves: str,
) -> None:
    """Before: an internal error that ended the shell (removed), or a hang (a FIFO)."""
    editor = tmp_path / "editor.py"
    editor.write_text(f"import os, sys\npath = sys.argv[1]\n{leaves}\n")
    monkeypatch.setenv("EDITOR", f"{sys.executable} {editor}")
    await asyncio.wait_for(shell.command("/edit"), 10)
    assert "the editor left no file to read; nothing sent" in shell.screen
    assert ollama_env.chat_requests == []
    await shell.ask("still here?")
    assert len(ollama_env.chat_requests) == 1
    await shell.exit()


async def test_a_fault_in_one_command_leaves_the_shell_running(
    shell: Shell, ollama_env: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault no sentence was written for (here the temporary folder /edit needs
    cannot be made) ended the shell, and with it the model chosen and files attached."""
    import tempfile

    def refuse(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no temporary folder \x1b[2J today")

    monkeypatch.setattr(tempfile, "TemporaryDirectory", refuse)
    monkeypatch.setenv("EDITOR", "true")
    await asyncio.wait_for(shell.command("/edit"), 10)
    assert "internal error: RuntimeError: no temporary folder" in shell.screen
    assert "the shell goes on" in shell.screen
    assert "\x1b[2J" not in shell.screen
    assert not shell.task.done()
    await shell.ask("still here?")
    assert len(ollama_env.chat_requests) == 1
    await shell.exit()


async def test_set_vi_keys(shell: Shell) -> None:
    from prompt_toolkit.enums import EditingMode

    await shell.command("/set vi")
    assert shell.repl.session.editing_mode == EditingMode.VI
    await shell.exit()


@pytest.fixture
def warm_role(config_file: Path) -> None:
    config_file.write_text('[roles.warm]\nsystem = "Be warm."\ntemperature = 0.2\n')


@pytest.fixture
async def warm_shell(
    pipe: PipeInput, ollama_env: FakeOllama, warm_role: None
) -> AsyncIterator[Shell]:
    """A shell whose config has a role with a temperature, ``warm``."""
    shell = start_shell(pipe, None)
    yield shell
    if not shell.task.done():
        shell.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await shell.task
    await shell.repl.services.aclose()


async def test_set_a_generation_option_then_drop_it(
    warm_shell: Shell, ollama_env: FakeOllama
) -> None:
    """/set KEY VALUE is `ask -o KEY=VALUE` for the turns to come (ollama run's
    `/set parameter`); it wins over a role's temperature; /set KEY - drops it."""
    shell = warm_shell
    await shell.command("/role warm")
    await shell.command("/set temperature 0.7")
    await shell.command("/set stop=END,STOP")
    await shell.ask("hi")
    options = sent_options(ollama_env)
    assert (options["temperature"], options["stop"]) == (0.7, ["END", "STOP"])
    await shell.command("/set")
    assert "temperature = 0.7; stop = END,STOP" in shell.text
    await shell.command("/set temperature -")
    await shell.ask("again")
    options = sent_options(ollama_env)
    assert (options["temperature"], options["stop"]) == (0.2, ["END", "STOP"])
    await shell.command("/set stop -")
    await shell.command("/set")
    assert "options: temperature = 0.2 (role)" in shell.text
    await shell.exit()


async def test_set_refuses_what_no_request_can_carry(shell: Shell, ollama_env: FakeOllama) -> None:
    for line, said in [
        ("/set temprature 0.5", "unknown option 'temprature' (did you mean temperature?)"),
        ("/set top_k lots", "option top_k needs a whole number, not 'lots'"),
        ("/set temperature nan", "option temperature needs a finite number, not 'nan'"),
        ("/set seed", "usage: /set seed VALUE (or /set seed - to drop it)"),
        ("/set bogus -", "unknown option 'bogus'"),
    ]:
        await shell.command(line)
        assert said in shell.text, line
    await shell.ask("hi")
    options = sent_options(ollama_env)
    assert not {"temperature", "top_k", "seed"} & set(options), options
    await shell.exit()


async def test_control_characters_in_a_line_are_stripped(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    await shell.ask("\x1b[200~a\x07b\x1b]0;x\x07c\x1b[201~")
    assert "\x07" not in sent_messages(ollama_env)[-1]["content"]
    await shell.exit()


def test_completion_of_commands_models_and_paths(tmp_path: Path) -> None:
    from cortan.shell.actions import make_command_table
    from cortan.shell.completion import ShellCompleter

    (tmp_path / "notes.txt").write_text("x")
    completer = ShellCompleter(
        make_command_table(), {"model": lambda: ["ollama:llama3.2:latest", "openai:gpt-4o"]}
    )

    def complete(text: str) -> list[str]:
        found = completer.get_completions(Document(text), CompleteEvent())
        return [c.text for c in found]

    assert "/model" in complete("/") and "/models" in complete("/mo")
    first = next(iter(completer.get_completions(Document("/he"), CompleteEvent())))
    assert first.display_meta_text == "list commands and keys"
    assert complete("/model open") == ["openai:gpt-4o"]
    assert complete("/model llama") == ["ollama:llama3.2:latest"]
    assert complete(f"/file {tmp_path}/no") == ["tes.txt"]
    assert complete("hello /mo") == []


@pytest.fixture
async def stored_shell(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> AsyncIterator[Shell]:
    from cortan.store import SessionStore

    store = SessionStore.open(isolated_env / "data")
    shell = start_shell(pipe, None, store=store)
    yield shell
    if not shell.task.done():
        shell.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await shell.task
    await shell.repl.services.aclose()
    store.close()


@pytest.mark.parametrize("name", ["#5", "123", "x" * 300])
async def test_save_refuses_a_bad_name_before_anything_is_stored(
    stored_shell: Shell, ollama_env: FakeOllama, name: str
) -> None:
    # Before: "/save #5" on a new conversation said "saved as '#5'", and then every
    # exchange failed to be stored and was dropped from the conversation.
    shell = stored_shell
    await shell.command(f"/save {name}")
    assert "saved as" not in shell.screen
    assert "a session name" in shell.screen
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["1789."]))
    await shell.ask("Capital of France?")
    await shell.ask("And the revolution?")
    assert "not saved" not in shell.screen
    assert [m["content"] for m in sent_messages(ollama_env)] == [
        "Capital of France?", "Paris.", "And the revolution?",
    ]  # fmt: skip
    await shell.exit()


async def test_save_sessions_and_load(stored_shell: Shell, ollama_env: FakeOllama) -> None:
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["ok"]), Reply(pieces=["1789."]))
    await shell.ask("Capital of France?")
    await shell.command("/save geo")
    await shell.command("/clear")
    await shell.ask("unrelated")
    await shell.command("/sessions")
    assert "geo" in shell.screen and "(unnamed)" in shell.screen
    await shell.command("/load geo")
    assert "loaded geo: 1 turn" in shell.screen
    await shell.ask("And the revolution?")
    assert sent_messages(ollama_env) == [
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And the revolution?"},
    ]
    assert shell.repl.services.store is not None
    geo = shell.repl.services.store.find("geo")
    assert geo is not None
    assert [m.content for m in shell.repl.services.store.messages(geo.id)][-1] == "1789."
    await shell.command("/load nosuch")
    assert "no stored conversation 'nosuch'" in shell.screen
    await shell.exit()


async def test_role_sets_system_prompt(shell: Shell, ollama_env: FakeOllama) -> None:
    await shell.command("/role shell")
    await shell.ask("list files")
    assert sent_messages(ollama_env)[0]["role"] == "system"
    assert "shell command" in sent_messages(ollama_env)[0]["content"]
    await shell.command("/role nosuchrole")
    assert "nosuchrole" in shell.screen
    await shell.exit()


async def test_role_alone_says_the_role_in_use_and_dash_drops_it(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    """`/role` alone was a red usage line, where `/model`, `/system` and `/think` alone
    say what is in use; and a role could not be dropped."""
    await shell.command("/role")
    assert "no role (/role NAME uses one: code, explain, review, shell)" in shell.text
    await shell.command("/role shell")
    before = len(shell.screen)
    await shell.command("/role")
    assert "role: shell (Answer with exactly one shell command" in shell.screen[before:]
    await shell.command("/role -")
    assert "role dropped: no system prompt" in shell.text
    await shell.ask("list files")
    assert sent_messages(ollama_env)[0]["role"] == "user"  # no system prompt went
    await shell.exit()


def test_session_completion(tmp_path: Path) -> None:
    from cortan.shell.actions import make_command_table
    from cortan.shell.completion import ShellCompleter

    completer = ShellCompleter(make_command_table(), {"session": lambda: ["geo", "work"]})
    found = completer.get_completions(Document("/load g"), CompleteEvent())
    assert [c.text for c in found] == ["geo"]


AWS_KEY = "AKIA" + "Z7QH2LXW5B3N6PDR"  # built at run time: not a literal secret in the repo


@pytest.fixture
def remote_ollama(ollama_env: FakeOllama, config_file: Path) -> FakeOllama:
    """The fake Ollama, configured as if it were a remote host (the secret guard applies)."""
    config_file.write_text(
        f'[providers.ollama]\nkind = "ollama"\nhosts = ["{ollama_env.url}"]\nlocal = false\n'
    )
    return ollama_env


async def test_secret_asks_before_sending(
    pipe: PipeInput, remote_ollama: FakeOllama, isolated_env: Path
) -> None:
    shell = start_shell(pipe, None)
    shell.pipe.send_text(f"my key is {AWS_KEY}\r")
    await wait_for(lambda: "AWS" in shell.screen)  # what was found, and where; then the question
    assert AWS_KEY not in shell.screen
    shell.pipe.send_text("n\r")
    await wait_for(lambda: "not sent" in shell.screen)
    assert remote_ollama.chat_requests == []
    shell.pipe.send_text(f"again {AWS_KEY}\r")
    await wait_for(lambda: shell.screen.count("AWS") >= 2)
    shell.pipe.send_text("y\r")
    endings = [await asyncio.wait_for(shell.ended.get(), 10) for _ in range(3)]
    # Refused twice by the guard (each prompt checked once), then sent after the yes.
    assert [getattr(e, "kind", "finished") for e in endings] == ["secret", "secret", "finished"]
    assert AWS_KEY in sent_messages(remote_ollama)[-1]["content"]
    assert len(remote_ollama.chat_requests) == 1
    await shell.exit()
    await shell.repl.services.aclose()


async def test_a_secret_not_sent_stays_out_of_the_history_file(
    pipe: PipeInput, remote_ollama: FakeOllama, isolated_env: Path
) -> None:
    """A key pasted by mistake and refused is not left on disk by the history either."""
    history = isolated_env / "history"
    shell = start_shell(pipe, history)
    shell.pipe.send_text(f"my key is {AWS_KEY}\r")
    await wait_for(lambda: "AWS" in shell.screen)
    shell.pipe.send_text("n\r")
    await wait_for(lambda: "not sent" in shell.screen)
    assert "nor went into the history file" in shell.screen
    remote_ollama.queue(Reply(pieces=["ok"]))
    await shell.ask("a plain line")
    await shell.exit()
    await shell.repl.services.aclose()
    written = history.read_text()
    assert AWS_KEY not in written
    assert "+a plain line" in written
    assert remote_ollama.chat_requests[-1].json["messages"][-1]["content"] == "a plain line"


async def test_a_line_refused_for_its_size_stays_out_of_the_history_file(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paste over max_input_bytes was written whole to the history file, to be read
    back at every start, though it was never sent; Up still recalls it in this shell."""
    monkeypatch.setenv("CORTAN_MAX_INPUT_BYTES", "2000")
    history = isolated_env / "history"
    shell = start_shell(pipe, history)
    shell.pipe.send_text("big " + "x" * 3000 + "\r")
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert getattr(ended, "kind", None) == "input"
    assert "max_input_bytes" in shell.screen
    await shell.ask("a plain line")
    await shell.exit()
    await shell.repl.services.aclose()
    written = history.read_text()
    assert "+a plain line" in written
    assert "xxxx" not in written
    assert ollama_env.chat_requests[-1].json["messages"][-1]["content"] == "a plain line"


async def test_each_prompt_is_guarded_once(
    pipe: PipeInput, remote_ollama: FakeOllama, isolated_env: Path
) -> None:
    """The guard asks where a request goes once per prompt: the REPL does not check first."""
    from cortan.core.requests import ChatRequest
    from cortan.engine.bus import EventBus
    from cortan.engine.chat import Chat
    from cortan.engine.context import ContextManager
    from cortan.engine.guard import Guard, find_remote_provider
    from cortan.engine.manager import ModelManager

    settings = load_settings()
    asked: list[int] = []
    bus = EventBus()
    manager = ModelManager(bus, settings)

    def find_remote(request: ChatRequest) -> str | None:
        asked.append(request.request_id)
        return find_remote_provider(manager.router, settings.providers, request)

    context = ContextManager(system=None, settings=settings, models=manager)
    chat = Chat(
        bus, Guard(max_bytes=settings.max_input_bytes, find_remote=find_remote), context, manager
    )
    bus.handle(ChatRequest, chat.run)
    app = App(settings, bus, chat, manager)
    ended: asyncio.Queue[ChatEnded] = asyncio.Queue()
    bus.subscribe(ChatFinished, ended.put_nowait, priority=200)
    console = Console(file=io.StringIO(), width=80, color_system=None)
    repl = make_repl(app, console, history_path=None, input=pipe, output=DummyOutput())
    task = asyncio.ensure_future(repl.run())
    pipe.send_text("hello\r")
    first = await asyncio.wait_for(ended.get(), 10)
    assert asked == [first.request_id]  # checked once, on its way through Chat.run
    assert len(remote_ollama.chat_requests) == 1
    pipe.send_text("\x04")
    await asyncio.wait_for(task, 10)
    await app.aclose()


async def test_thinking_folds_to_one_line_and_shows_whole_on_request(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(thinking=["First I add.\n", "Then I check."], pieces=["4"]))
    ended = await shell.ask("2+2?")
    assert isinstance(ended, ChatFinished) and ended.thinking == "First I add.\nThen I check."
    await wait_for(lambda: "thought for" in shell.screen)
    folded = shell.screen
    assert "(/thinking shows it)" in folded
    assert "First I add." not in folded  # live under the spinner, then folded away
    await shell.command("/thinking")
    assert "First I add.\nThen I check." in shell.screen
    await shell.command("/think high")
    await shell.ask("again")
    assert sent_body(ollama_env)["think"] == "high"
    await shell.command("/think default")
    await shell.ask("once more")
    assert "think" not in sent_body(ollama_env)


def sent_options(server: FakeOllama) -> dict[str, object]:
    options = sent_body(server).get("options", {})
    assert isinstance(options, dict)
    return options


def sent_body(server: FakeOllama) -> dict[str, object]:
    body = server.chat_requests[-1].json
    assert isinstance(body, dict)
    return body


CTRL_R = "\x12"


async def start_search(shell: Shell, query: str) -> None:
    """Ask two questions, then Ctrl-R for ``query``: the older one is found and shown."""
    await shell.ask("alpha question")
    await shell.ask("beta question")
    await shell.send(CTRL_R + query)
    await wait_for(lambda: found(shell) == "alpha question")


def found(shell: Shell) -> str | None:
    """What the line shows while a Ctrl-R search is open (None: no search is)."""
    from prompt_toolkit.search import SearchState

    layout = shell.repl.session.app.layout
    target = layout.search_target_buffer_control
    if not layout.is_searching or target is None or target.search_buffer is None:
        return None
    query = SearchState(target.search_buffer.text, target.search_state.direction)
    return target.buffer.document_for_search(query).text  # what the line previews


async def test_ctrl_r_enter_sends_the_entry_found(shell: Shell, ollama_env: FakeOllama) -> None:
    """Enter takes what Ctrl-R found and sends it, as in readline (issue 21)."""
    await start_search(shell, "alph")
    shell.pipe.send_text("\r")
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert isinstance(ended, ChatFinished)
    assert sent_messages(ollama_env)[-1]["content"] == "alpha question"
    assert len(ollama_env.chat_requests) == 3
    await shell.exit()


@pytest.mark.parametrize(
    ("key", "cursor"),
    [("\x1b", None), ("\x1b[C", "end"), ("\x1b[D", "start"), ("\x05", "end"), ("\x01", "start")],
    ids=["escape", "right", "left", "ctrl-e", "ctrl-a"],
)
async def test_ctrl_r_then_a_movement_key_takes_the_entry_to_edit(
    shell: Shell, ollama_env: FakeOllama, key: str, cursor: str | None
) -> None:
    """Esc, → and the other movement keys leave the search with the entry on the line."""
    await start_search(shell, "alph")
    await shell.send(key)
    layout = shell.repl.session.app.layout
    await wait_for(lambda: not layout.is_searching)  # Esc alone waits for the key timeout
    buffer = shell.repl.session.default_buffer
    assert buffer.text == "alpha question"
    if cursor is not None:
        assert buffer.cursor_position == (len(buffer.text) if cursor == "end" else 0)
    assert len(ollama_env.chat_requests) == 2  # nothing sent until Enter
    shell.pipe.send_text(" again\r" if cursor == "end" else "\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    expected = "alpha question again" if cursor == "end" else "alpha question"
    assert sent_messages(ollama_env)[-1]["content"] == expected
    await shell.exit()


async def test_ctrl_c_in_a_search_gives_the_line_back(shell: Shell) -> None:
    """Ctrl-C (or Ctrl-G) leaves the search and restores what was typed before it."""
    await shell.ask("alpha question")
    await shell.send("typed" + CTRL_R + "alph")
    await wait_for(lambda: found(shell) == "alpha question")
    buffer = shell.repl.session.default_buffer
    await shell.send("\x03")
    await wait_for(lambda: not shell.repl.session.app.layout.is_searching)
    assert buffer.text == "typed"
    assert "Ctrl-D or /exit leaves" not in shell.screen
    await shell.send("\x03")  # now Ctrl-C clears the line, so that Ctrl-D may leave
    await wait_for(lambda: buffer.text == "")
    await shell.exit()


@pytest.mark.parametrize("leave", ["\x03", "\x07"], ids=["ctrl-c", "ctrl-g"])
async def test_leaving_a_search_after_ctrl_r_again_gives_the_line_back(
    shell: Shell, leave: str
) -> None:
    """Ctrl-R again (the next older match) moved the line itself to that entry, so
    Ctrl-C or Ctrl-G left the match on the line and lost what was typed."""
    await shell.ask("alpha question")
    await shell.ask("beta question")
    await shell.send("typed" + CTRL_R + "question")
    await wait_for(lambda: found(shell) == "beta question")
    await shell.send(CTRL_R)
    await wait_for(lambda: found(shell) == "alpha question")
    buffer = shell.repl.session.default_buffer
    await shell.send(leave)
    await wait_for(lambda: not shell.repl.session.app.layout.is_searching)
    assert buffer.text == "typed"
    assert buffer.cursor_position == len("typed")
    await shell.send("\x03")
    await wait_for(lambda: buffer.text == "")
    await shell.exit()


async def test_retry_replaces_the_exchange_in_the_store(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """/retry replaces the last answer on disk too: /load and -c never send the discarded one."""
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["first"]), Reply(pieces=["second"]))
    await shell.ask("Capital of France?")
    await shell.ask("q")
    shell.pipe.send_text("/retry\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    await shell.command("/save retried")
    store = shell.repl.services.store
    assert store is not None
    found = store.find("retried")
    assert found is not None
    stored = [(m.role, m.content) for m in store.messages(found.id)]
    assert stored == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "q"),
        ("assistant", "second"),
    ]
    await shell.command("/clear")
    await shell.command("/load retried")
    await shell.ask("next")
    assert [m["content"] for m in sent_messages(ollama_env)] == [
        "Capital of France?",
        "Paris.",
        "q",
        "second",
        "next",
    ]
    await shell.exit()


async def test_a_failed_retry_leaves_the_conversation_as_it_was(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """The answer /retry would replace stays, on screen and on disk, until a new one comes."""
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["first"]), Reply(status=400, error="model runner crashed"))
    await shell.ask("q")
    shell.pipe.send_text("/retry\r")
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert isinstance(ended, ChatFailed)
    await wait_for(lambda: "the conversation is unchanged" in shell.screen)
    assert [t.answer for t in shell.repl.conversation.turns] == ["first"]
    await shell.ask("next")
    assert [m["content"] for m in sent_messages(ollama_env)] == ["q", "first", "next"]
    recorder = shell.repl.services.recorder
    store = shell.repl.services.store
    assert store is not None and recorder is not None and recorder.conversation_id is not None
    from cortan.store.records import select_history

    kept = select_history(store.messages(recorder.conversation_id))
    assert [m.content for m in kept] == ["q", "first", "next", "Hello, world!"]
    await shell.exit()


async def test_model_refuses_a_misspelt_provider(shell: Shell, ollama_env: FakeOllama) -> None:
    """`/model opneai:gpt-4o` used to become the Ollama model `opneai:gpt-4o` (issue 21)."""
    await shell.command("/model opneai:gpt-4o")
    assert "no provider named 'opneai'" in shell.text
    assert "did you mean 'openai:gpt-4o'?" in shell.text
    assert shell.repl.conversation.model is None  # unchanged
    await shell.exit()


async def test_model_refuses_what_ollama_does_not_have(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    """Ollama's list is the truth: a model it lacks is refused, with the nearest it has."""
    await asyncio.to_thread(shell.repl.models.loaded.wait, 10)
    await shell.command("/model ollama:llama3.3")
    assert "ollama has no model 'llama3.3'" in shell.text
    assert "did you mean 'ollama:llama3.2:latest'?" in shell.text
    assert "`cortan models pull llama3.3` gets it" in shell.text
    assert shell.repl.conversation.model is None
    await shell.command("/model llama3.2")  # the tag defaults to latest, as in Ollama
    assert shell.repl.conversation.model == "llama3.2"
    ollama_env.models = [*ollama_env.models, "llama3.3:latest"]  # pulled meanwhile
    await shell.command("/model ollama:llama3.3")
    assert shell.repl.conversation.model == "ollama:llama3.3"  # the list was asked again
    await shell.exit()


async def test_model_says_the_near_name_an_openai_server_lists(
    openai_env: FakeOpenAI, shell: Shell
) -> None:
    """`/model openai:gpt-4o-minx` was taken without a word: an OpenAI-compatible server
    may answer to names it does not list, so it is kept, with the listed name near it."""
    await asyncio.to_thread(shell.repl.models.loaded.wait, 10)
    await shell.command("/model openai:gpt-4o-minx")
    assert "openai does not list 'gpt-4o-minx'; did you mean 'openai:gpt-4o-mini'?" in shell.text
    assert shell.repl.conversation.model == "openai:gpt-4o-minx"
    await shell.command("/model openai:my-finetune")  # nothing near: nothing said
    assert "does not list 'my-finetune'" not in shell.text
    await shell.exit()


async def test_session_by_id_opens_an_unnamed_conversation(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """`cortan chat --session 7` (or '#7') opens conversation 7; an unknown id is refused."""
    from cortan.core.errors import UsageError
    from cortan.shell.sessions import load_session

    shell = stored_shell
    ollama_env.queue(Reply(pieces=["Paris."]))
    await shell.ask("Capital of France?")
    store, recorder = shell.repl.services.store, shell.repl.services.recorder
    assert store is not None and recorder is not None and recorder.conversation_id is not None
    first = recorder.conversation_id
    await shell.command("/clear")
    load_session(shell.repl, store, recorder, f"#{first}", create=True)
    assert [t.answer for t in shell.repl.conversation.turns] == ["Paris."]
    with pytest.raises(UsageError, match="no stored conversation '99'"):
        load_session(shell.repl, store, recorder, "99", create=True)
    await shell.exit()


async def test_sessions_lists_aligned_with_dates_and_first_prompts(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    shell = stored_shell
    await shell.ask("Capital of France?")
    await shell.command("/save geo")
    await shell.command("/clear")
    await shell.ask("unrelated question")
    await shell.command("/sessions")
    lines = [line for line in shell.screen.splitlines() if "Capital" in line or "unrelated" in line]
    lines = [line for line in lines if "#" in line]
    assert len(lines) == 2, shell.screen
    newest, older = lines
    assert newest.startswith(" *  #2") and older.startswith("    #1  geo")
    assert newest.index("unrelated") == older.index("Capital")  # aligned, cut to fit
    assert all(len(line) <= 80 for line in shell.screen.splitlines())  # nothing wraps
    assert newest.index("ollama:llama3.2:latest") == older.index("ollama:llama3.2:latest")
    import re

    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", older)  # when it was last used
    await shell.exit()


async def test_sessions_in_a_narrow_window_drops_columns_not_lines(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """At 50 columns (a split pane) every /sessions row wrapped over two lines."""
    shell = stored_shell
    await shell.ask("Capital of France?")
    await shell.command("/save geo")
    shell.console.width = 50
    before = len(shell.screen)
    await shell.command("/sessions")
    listing = shell.screen[before:].split("unknown command")[0]
    rows = [line for line in listing.splitlines() if "#1" in line]
    assert len(rows) == 1 and "geo" in rows[0] and "Capital" in rows[0], listing
    assert all(len(line) <= 50 for line in listing.splitlines()), listing
    await shell.exit()


async def test_sessions_says_when_it_shows_only_the_newest(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    shell = stored_shell
    for prompt in ("one", "two", "three"):
        await shell.ask(prompt)
        await shell.command("/clear")
    await shell.command("/sessions 2")
    assert "the newest 2 of 3 shown; /sessions 3 shows them all" in shell.text
    await shell.exit()


async def test_load_counts_turns_and_usage_knows_their_tokens(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """After /load, "1 turn" (not "1 turns"), and /usage counts the stored tokens."""
    shell = stored_shell
    await shell.ask("hi")
    await shell.command("/save one")
    await shell.command("/clear")
    await shell.command("/load one")
    assert "loaded one: 1 turn" in shell.text and "1 turns" not in shell.text
    await shell.command("/usage")
    assert "this conversation: 1 turn, 7 tokens in, 4 out" in shell.text
    await shell.exit()


async def test_piped_text_that_starts_the_shell_is_shown(
    pipe: PipeInput, ollama_env: FakeOllama, isolated_env: Path
) -> None:
    """`cat notes | cortan chat`: the transcript says what started the conversation."""
    shell = start_shell(pipe, None, first_input="first line of notes\nsecond line\n")
    await asyncio.wait_for(shell.ended.get(), 10)
    assert "› piped text (2 lines, 32 bytes): first line of notes" in shell.text
    assert shell.screen.index("piped text") < shell.screen.index("Hello, world!")
    await shell.exit()
    await shell.repl.services.aclose()


async def test_load_recaps_where_the_conversation_stood(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["Paris is the capital."]))
    await shell.ask("Capital of France?")
    await shell.command("/save geo")
    await shell.command("/clear")
    await shell.command("/load geo")
    assert "last: › Capital of France? → Paris is the capital." in shell.text
    await shell.exit()


async def test_thinking_is_the_conversations_after_clear_and_load(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """After /clear, /copy said "nothing to copy yet" while /thinking still showed the
    thought of the conversation just left; after /load, not the loaded one's."""
    shell = stored_shell
    ollama_env.queue(Reply(thinking=["Paris, surely."], pieces=["Paris."]))
    await shell.ask("Capital of France?")
    await shell.command("/save geo")
    await shell.command("/clear")
    before = len(shell.text)
    await shell.command("/thinking")
    assert "no reasoning yet" in shell.text[before:]
    assert "Paris, surely." not in shell.text[before:]
    await shell.command("/load geo")
    before = len(shell.text)
    await shell.command("/thinking")
    assert "Paris, surely." in shell.text[before:]
    await shell.exit()


async def test_fork_goes_on_in_a_copy_and_leaves_the_original(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """/fork NAME copies the conversation so far; what follows goes to the copy only."""
    shell = stored_shell
    await shell.command("/fork too-early")
    assert "nothing to fork" in shell.text
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["Lyon."]))
    await shell.ask("Capital of France?")
    await shell.command("/save trunk")
    await shell.command("/fork branch")
    assert "forked #" in shell.text and "trunk as #" in shell.text and "branch" in shell.text
    await shell.ask("Second city?")
    assert [m["content"] for m in sent_messages(ollama_env)] == [
        "Capital of France?", "Paris.", "Second city?",
    ]  # fmt: skip
    store = shell.repl.services.store
    assert store is not None
    trunk, branch = store.find("trunk"), store.find("branch")
    assert trunk is not None and branch is not None
    assert [m.content for m in store.messages(trunk.id)] == ["Capital of France?", "Paris."]
    assert [m.content for m in store.messages(branch.id)] == [
        "Capital of France?", "Paris.", "Second city?", "Lyon.",
    ]  # fmt: skip
    await shell.command("/fork branch")  # a taken name: one sentence, nothing made
    assert "already exists" in shell.text
    assert store.count_conversations() == 2
    await shell.exit()


async def test_regenerate_is_retry(stored_shell: Shell, ollama_env: FakeOllama) -> None:
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["first"]), Reply(pieces=["second"]))
    await shell.ask("q")
    shell.pipe.send_text("/regenerate\r")
    ended = await asyncio.wait_for(shell.ended.get(), 10)
    assert isinstance(ended, ChatFinished)
    assert [t.answer for t in shell.repl.conversation.turns] == ["second"]
    await shell.exit()


async def test_chat_continue_loads_the_conversation_used_last(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """`cortan chat -c` opens where the newest message went (issue 21)."""
    from cortan.cli.chat import ShellOptions, _apply_options
    from cortan.core.errors import UsageError

    shell = stored_shell
    store = shell.repl.services.store
    assert store is not None
    with pytest.raises(UsageError, match="no earlier conversation"):
        await _apply_options(shell.repl, ShellOptions(continue_last=True))
    used = store.create("used")
    store.create("made-later")
    store.add_message(used.id, "user", "earlier question")
    store.add_message(used.id, "assistant", "earlier answer")
    await _apply_options(shell.repl, ShellOptions(continue_last=True))
    await shell.ask("go on")
    assert [m["content"] for m in sent_messages(ollama_env)] == [
        "earlier question", "earlier answer", "go on",
    ]  # fmt: skip
    await shell.exit()


async def test_a_model_gone_from_the_server_points_to_model_then_retry(
    shell: Shell, ollama_env: FakeOllama
) -> None:
    """'/retry tries again' after "not on Ollama" (a /load of a conversation whose
    model this server lacks, a model removed) asked for the same missing model again."""
    ollama_env.models.clear()
    ended = await shell.ask("hello")
    assert isinstance(ended, ChatFailed) and ended.kind == "model_not_found"
    assert "/model NAME picks one it has (/models lists them), then /retry" in shell.text
    assert "/retry tries again" not in shell.text
    await shell.exit()


async def test_an_image_for_a_model_that_cannot_see_points_to_model_then_retry(
    shell: Shell, ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """'/retry tries again' after this refusal sent the same image to the same model."""
    import base64

    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
    photo = tmp_path / "cat.png"
    photo.write_bytes(png)
    ollama_env.models.append("llava:latest")
    for name in ("llava", "llava:latest"):
        ollama_env.capabilities[name] = ["completion", "vision"]
    await shell.command(f"/attach {photo}")
    assert f"attached image {photo} ({len(png)} bytes) to the next message" in shell.text
    ended = await shell.ask("what is this?")
    assert isinstance(ended, ChatFailed) and ended.kind == "capability"
    assert "/model NAME picks one that can, then /retry" in shell.text
    assert "/retry tries again" not in shell.text
    await shell.command("/model ollama:llava")
    ollama_env.queue(Reply(pieces=["A cat."]))
    await shell.send("/retry\r")
    assert isinstance(await asyncio.wait_for(shell.ended.get(), 10), ChatFinished)
    sent = ollama_env.chat_requests[-1].json
    assert sent["model"] == "llava"
    assert sent["messages"][-1]["images"] == [base64.b64encode(png).decode()]
    await shell.exit()


async def test_retry_after_load_replaces_the_loaded_answer(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """/retry right after /load regenerates the answer the recap shows, on disk too.

    Before: "nothing to retry yet", though docs/repl.md promises /retry replaces the
    last answer and /load has just shown it.
    """
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["first"]), Reply(pieces=["second"]))
    await shell.ask("Capital of France?")
    await shell.ask("q")
    await shell.command("/save old")
    await shell.command("/clear")
    await shell.command("/load old")
    shell.pipe.send_text("/retry\r")
    await asyncio.wait_for(shell.ended.get(), 10)
    assert "nothing to retry" not in shell.screen
    assert [m["content"] for m in sent_messages(ollama_env)] == [
        "Capital of France?",
        "Paris.",
        "q",
    ]
    assert [t.answer for t in shell.repl.conversation.turns] == ["Paris.", "second"]
    store = shell.repl.services.store
    assert store is not None
    found = store.find("old")
    assert found is not None
    assert [m.content for m in store.messages(found.id)] == [
        "Capital of France?",
        "Paris.",
        "q",
        "second",
    ]
    await shell.exit()


async def test_load_says_when_it_switches_the_model(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """A loaded conversation answers with its own model: the "loaded" line says so.

    Before: `/model X` then `/load old` went back to old's model in silence, and the
    next answer came from a model the user had just switched away from.
    """
    shell = stored_shell
    await shell.ask("hi")
    await shell.command("/save old")
    await shell.command("/clear")
    await shell.command("/model ollama:qwen2.5-coder:7b")
    await shell.command("/load old")
    assert (
        "loaded old: 1 turn; model: ollama:llama3.2:latest (was ollama:qwen2.5-coder:7b)"
        in shell.text
    )
    await shell.command("/load old")  # the same model again: nothing to say
    assert shell.text.count("(was ") == 1
    await shell.exit()


async def test_save_refuses_a_name_another_conversation_holds(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """`/save old` on a new conversation, with 'old' taken, said "saved as 'old'" and then
    stored the new exchanges into the other conversation 'old', mixing the two."""
    shell = stored_shell
    ollama_env.queue(Reply(pieces=["a1"]), Reply(pieces=["a2"]))
    await shell.ask("first")
    await shell.command("/save old")
    await shell.command("/clear")
    await shell.command("/save old")
    assert "a session named 'old' already exists" in shell.text
    await shell.ask("second")
    store = shell.repl.services.store
    assert store is not None
    found = store.find("old")
    assert found is not None
    assert [m.content for m in store.messages(found.id)] == ["first", "a1"]
    await shell.exit()


async def test_save_before_the_first_exchange_says_when_it_is_stored(
    stored_shell: Shell, ollama_env: FakeOllama
) -> None:
    """Nothing is stored before the first answer: "saved as" claimed what /sessions denied."""
    shell = stored_shell
    await shell.command("/save later")
    assert "saved as" not in shell.text
    assert "'later' from its first exchange" in shell.text
    await shell.exit()
