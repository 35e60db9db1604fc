"""Sessions end to end: `ask` storing and continuing, `sessions …`, `logs`, over the fake Ollama."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cortan.store import SessionStore, get_store_path
from tests.conftest import CortanRunner, assert_one_sentence, cortan_command
from tests.servers import FakeOllama, FakeOpenAI, Reply


@pytest.fixture
def data_dir(isolated_env: Path) -> Path:
    return isolated_env / "data"


@pytest.fixture
def store(data_dir: Path) -> Iterator[SessionStore]:
    with SessionStore.open(data_dir) as opened:
        yield opened


def sent(server: FakeOllama, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = server.chat_requests[index].json
    return body


def ok(cortan: type[CortanRunner], *args: str, **kwargs: Any) -> str:
    result = cortan.run(*args, **kwargs)
    assert result.code == 0, result.stderr
    return result.stdout


# -- ask: stored by default, continued on request ------------------------------------------


def test_every_ask_is_stored_in_its_own_conversation(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ok(cortan, "ask", "first question")
    ok(cortan, "ask", "second question")
    with SessionStore.open(data_dir) as store:
        conversations = store.list_conversations()
        assert [c.title for c in conversations] == ["second question", "first question"]
        user, answer = store.messages(conversations[0].id)
    assert (user.content, answer.content, answer.status) == (
        "second question",
        "Hello, world!",
        "complete",
    )
    assert (answer.model, answer.provider, answer.prompt_tokens) == ("llama3.2:latest", "ollama", 7)


def test_continue_sends_history_with_the_conversation_model_and_system(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["Paris."]))
    ok(cortan, "ask", "-m", "ollama:qwen2.5-coder:7b", "-s", "Be terse.", "capital of France?")
    ok(cortan, "ask", "-c", "and of Italy?")
    body = sent(ollama_env)
    assert body["model"] == "qwen2.5-coder:7b"
    assert body["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "and of Italy?"},
    ]


def test_a_question_left_unanswered_goes_with_the_next_not_as_a_turn_of_its_own(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """Two user turns in a row, which a template that insists on alternating turns
    (llama.cpp serving Mistral's) refuses on every later turn: a stuck conversation."""
    ollama_env.queue(Reply(pieces=[]), Reply(pieces=["Short."]))
    ok(cortan, "ask", "-s", "Be terse.", "explain monads in depth")
    ok(cortan, "ask", "-c", "shorter, please")
    ok(cortan, "ask", "-c", "thanks")
    assert sent(ollama_env, 1)["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "explain monads in depth\n\nshorter, please"},
    ]
    roles = [m["role"] for m in sent(ollama_env)["messages"]]
    assert roles == ["system", "user", "assistant", "user"]


def test_flags_override_a_continued_conversation(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ok(cortan, "ask", "-s", "old system", "one")
    ok(cortan, "ask", "-c", "-m", "ollama:qwen2.5-coder:7b", "-s", "new system", "two")
    ok(cortan, "ask", "-c", "three")
    body = sent(ollama_env)
    assert body["model"] == "qwen2.5-coder:7b"  # the model that last answered
    assert body["messages"][0] == {"role": "system", "content": "new system"}
    assert [m["content"] for m in body["messages"] if m["role"] == "user"] == [
        "one",
        "two",
        "three",
    ]


def test_session_name_starts_then_continues(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ok(cortan, "ask", "--session", "trip", "plan a trip")
    ok(cortan, "ask", "unrelated")
    ok(cortan, "ask", "--session", "trip", "add a day")
    assert [m["content"] for m in sent(ollama_env)["messages"]] == [
        "plan a trip",
        "Hello, world!",
        "add a day",
    ]
    with SessionStore.open(data_dir) as store:
        trip = store.get_by_name("trip")
        assert trip is not None
        assert trip.message_count == 4


def test_piped_data_is_stored_as_it_was_sent(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ok(cortan, "ask", "summarise", input="line one\n")
    ok(cortan, "ask", "-c", "shorter")
    first = sent(ollama_env)["messages"][0]["content"]
    assert first == "Input from stdin:\n```\nline one\n```\n\nsummarise"


def test_listings_show_the_first_prompt_as_typed_not_as_framed(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """The stored message starts with the framed input ("Input from stdin: ```…"); a
    listing shows what was typed, naming what came with it."""
    notes = tmp_path / "notes.txt"
    notes.write_text("meeting at noon\n")
    ok(cortan, "ask", "summarise   this\nplease", "-f", str(notes), input="line one\n")
    ok(cortan, "ask", "-c", "shorter")
    ok(cortan, "ask", "hello", input="")
    listed = json.loads(ok(cortan, "sessions", "list", "--json"))
    assert [c["first_prompt"] for c in listed] == [
        "hello",
        f"summarise this please [stdin, file {notes}]",
    ]
    table = ok(cortan, "sessions", "list")
    assert "Input from" not in table and "summarise this please" in table


def test_a_title_naming_many_hostile_file_names_is_one_bounded_line(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """A file name may hold a newline or an escape, and a prompt may come with sixty
    files: the title was two lines, or cut off in the middle of a name."""
    names = [f"f{n:02}\x1b[2J\n.txt" for n in range(60)]
    for name in names:
        (tmp_path / name).write_text("x")
    files = [arg for name in names for arg in ("-f", str(tmp_path / name))]
    ok(cortan, "ask", "many files", *files)
    (title,) = [c["first_prompt"] for c in json.loads(ok(cortan, "sessions", "list", "--json"))]
    assert "\n" not in title and len(title) <= 200
    assert title.startswith(f"many files [file {tmp_path}/f00\x1b[2J .txt, ")
    assert title.endswith(" more]")


def test_continue_with_nothing_to_continue(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "-c", "hello?")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "no earlier conversation" in result.stderr
    assert ollama_env.chat_requests == []


def test_continue_and_session_together(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "-c", "--session", "x", "hi")
    assert result.code == 2
    assert_one_sentence(result.stderr)


@pytest.mark.parametrize("form", ["{id}", "#{id}"])
def test_an_unnamed_conversation_resumes_by_the_id_json_gave(
    cortan: type[CortanRunner], ollama_env: FakeOllama, form: str
) -> None:
    """`--json` names the conversation; `--session 7` or `'#7'` goes on with it (issue 21)."""
    ollama_env.queue(Reply(pieces=["Paris."]))
    report = json.loads(ok(cortan, "ask", "--json", "capital of France?"))
    conversation_id = report["conversation_id"]
    assert isinstance(conversation_id, int)
    ok(cortan, "ask", "unrelated")
    again = json.loads(
        ok(cortan, "ask", "--json", "--session", form.format(id=conversation_id), "and Italy?")
    )
    assert again["conversation_id"] == conversation_id
    assert [m["content"] for m in sent(ollama_env)["messages"]] == [
        "capital of France?",
        "Paris.",
        "and Italy?",
    ]


def test_json_without_a_store_has_no_conversation_id(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    report = json.loads(ok(cortan, "ask", "--json", "--no-log", "hi"))
    assert report["conversation_id"] is None


@pytest.mark.parametrize("ref", ["42", "#42"])
def test_an_id_that_is_not_stored_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, ref: str
) -> None:
    """An id cannot start a conversation (ids are given, not chosen): one sentence, exit 2."""
    ok(cortan, "ask", "one")  # a store exists, without conversation 42
    result = cortan.run("ask", "--session", ref, "hi")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "no stored conversation #42" in result.stderr
    assert len(ollama_env.chat_requests) == 1


def test_killed_question_is_not_sent_again(
    cortan: type[CortanRunner], ollama_env: FakeOllama, store: SessionStore
) -> None:
    first = store.create()
    store.add_message(first.id, "user", "asked, then the process died")
    ok(cortan, "ask", "-c", "again")
    assert sent(ollama_env)["messages"] == [{"role": "user", "content": "again"}]


# -- keeping things out of the store ------------------------------------------------------


def test_no_log_stores_nothing_and_creates_no_file(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ok(cortan, "ask", "--no-log", "secret question")
    ok(cortan, "ask", "also secret", env={"CORTAN_LOG": "false"})
    assert not get_store_path(data_dir).exists()


def test_no_log_reads_a_continued_conversation_without_adding_to_it(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ok(cortan, "ask", "kept")
    ok(cortan, "ask", "-c", "--no-log", "not kept")
    assert [m["content"] for m in sent(ollama_env)["messages"]] == [
        "kept",
        "Hello, world!",
        "not kept",
    ]
    with SessionStore.open(data_dir) as store:
        assert store.stats().messages == 2
        assert store.search("not kept") == []


# -- crashes, concurrency, foreign files ---------------------------------------------------


def test_kill_9_mid_answer_keeps_the_question(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ollama_env.queue(Reply(pieces=["so far", "x"], fault="never_end", fault_after=1))
    with cortan.popen("ask", "--no-stdin", "do not lose me") as proc:
        assert proc.stdout is not None
        assert proc.stdout.read(6) == b"so far"
        proc.kill()
        proc.wait(10)
    conn = sqlite3.connect(get_store_path(data_dir))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT role, content FROM messages").fetchall()
    finally:
        conn.close()
    assert rows == [("user", "do not lose me")]
    assert "do not lose me" in ok(cortan, "logs")


def test_two_asks_at_once_are_both_stored(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ollama_env.default = Reply(pieces=["a", "b", "c", "d"], delay=0.05)
    procs = [cortan.popen("ask", "--no-stdin", f"terminal {i}") for i in (1, 2)]
    for proc in procs:
        with proc:
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert out == b"abcd\n"
    with SessionStore.open(data_dir) as store:
        conversations = store.list_conversations()
        assert sorted(c.title for c in conversations) == ["terminal 1", "terminal 2"]
        assert [c.message_count for c in conversations] == [2, 2]


@pytest.mark.parametrize(
    ("kind", "args"),
    [
        ("garbage", ("ask", "hi")),
        ("garbage", ("sessions", "show", "x")),
        ("foreign-sqlite", ("ask", "hi")),
        ("foreign-sqlite", ("logs",)),
    ],
)
def test_a_file_that_is_not_a_store_is_named_and_left_alone(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    data_dir: Path,
    kind: str,
    args: tuple[str, ...],
) -> None:
    path = get_store_path(data_dir)
    data_dir.mkdir()
    if kind == "garbage":
        path.write_bytes(b"\x00\x01 not a database \xff" * 64)
    else:
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE notes (text TEXT)")
        conn.commit()
        conn.close()
    before = path.read_bytes()
    result = cortan.run(*args)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert str(path) in result.stderr
    assert "not a cortan session store" in result.stderr
    assert path.read_bytes() == before
    assert ollama_env.chat_requests == []


def test_store_files_are_private(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ok(cortan, "ask", "hi")
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(get_store_path(data_dir).stat().st_mode) == 0o600


# -- cortan sessions ----------------------------------------------------------------------


@pytest.fixture
def two_sessions(store: SessionStore) -> tuple[int, int]:
    work = store.create("work", model="ollama:llama3.2:latest", system="be brief")
    store.add_message(work.id, "user", "what is WAL?")
    store.add_message(
        work.id, "assistant", "A write-ahead log.", model="llama3.2:latest", provider="ollama",
        prompt_tokens=12, completion_tokens=5, duration=0.8,
    )  # fmt: skip
    other = store.create()
    store.add_message(other.id, "user", "unnamed \x1b[2J question")
    store.add_message(other.id, "assistant", "cut", status="interrupted")
    return work.id, other.id


def test_sessions_list(cortan: type[CortanRunner], two_sessions: tuple[int, int]) -> None:
    out = ok(cortan, "sessions", "list")
    header, newest, older = out.splitlines()
    assert header.split() == ["ID", "NAME", "MSGS", "UPDATED", "MODEL", "FIRST", "PROMPT"]
    assert newest.split()[0] == str(two_sessions[1])
    assert "\x1b" not in out
    assert "␛[2J" in newest
    assert older.split()[:3] == [str(two_sessions[0]), "work", "2"]
    data = json.loads(ok(cortan, "sessions", "list", "--json"))
    assert [(d["id"], d["name"], d["messages"]) for d in data] == [
        (two_sessions[1], None, 2),
        (two_sessions[0], "work", 2),
    ]


def test_sessions_list_without_a_store(cortan: type[CortanRunner], data_dir: Path) -> None:
    result = cortan.run("sessions", "list")
    assert (result.code, result.stdout) == (0, "")
    assert "no stored conversations" in result.stderr
    assert not data_dir.exists()


def test_sessions_show(cortan: type[CortanRunner], two_sessions: tuple[int, int]) -> None:
    out = ok(cortan, "sessions", "show", "work")
    assert out.splitlines()[0].startswith(f"#{two_sessions[0]} work · ollama:llama3.2:latest")
    assert "system: be brief" in out
    assert "what is WAL?" in out
    assert "A write-ahead log." in out
    assert "12+5 tok" in out
    assert "0.8 s" in out
    other = ok(cortan, "sessions", "show", f"#{two_sessions[1]}")
    assert "\x1b" not in other
    assert "interrupted" in other


def test_sessions_rename(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], store: SessionStore
) -> None:
    ok(cortan, "sessions", "rename", "work", "job")
    ok(cortan, "sessions", "rename", str(two_sessions[1]), "misc")
    assert store.find("job") is not None
    assert store.find("misc") is not None
    taken = cortan.run("sessions", "rename", "misc", "job")
    assert taken.code == 2
    assert_one_sentence(taken.stderr)
    assert "already exists" in taken.stderr


def test_sessions_rm_needs_yes_off_a_terminal(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], store: SessionStore
) -> None:
    refused = cortan.run("sessions", "rm", "work", stdin=subprocess.DEVNULL)
    assert refused.code == 2
    assert "--yes" in refused.stderr
    assert store.find("work") is not None
    ok(cortan, "sessions", "rm", "work", "--yes")
    assert store.find("work") is None
    assert store.messages(two_sessions[0]) == []
    assert store.search("write-ahead") == []


def test_sessions_rm_asks_on_a_terminal(two_sessions: tuple[int, int], store: SessionStore) -> None:
    import pexpect

    command, *args = cortan_command()
    for answer, kept in (("n", True), ("y", False)):
        child = pexpect.spawn(
            command, [*args, "sessions", "rm", "work"], env=dict(os.environ), timeout=20
        )
        child.expect(r"Delete #\d+ work and its 2 messages\? \[y/N\]")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == (1 if kept else 0)
        assert (store.find("work") is not None) is kept


@pytest.mark.parametrize(("args", "code"), [(("rm", "--yes", "nope"), 1), (("export", "#99"), 2)])
def test_unknown_session(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], args: tuple[str, ...], code: int
) -> None:
    result = cortan.run("sessions", *args)
    assert result.code == code
    assert_one_sentence(result.stderr)
    assert "cortan sessions list" in result.stderr


def test_export_markdown(cortan: type[CortanRunner], two_sessions: tuple[int, int]) -> None:
    out = ok(cortan, "sessions", "export", "work", "--format", "md")
    lines = out.splitlines()
    assert lines[0] == "# work"
    assert "## System" in lines
    assert "be brief" in lines
    assert any(line.startswith("## User · ") for line in lines)
    assert any(line.startswith("## Assistant (llama3.2:latest) · ") for line in lines)
    assert "A write-ahead log." in lines


def test_export_json_to_a_private_file(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], tmp_path: Path
) -> None:
    target = tmp_path / "work.json"
    ok(cortan, "sessions", "export", "work", "--format", "json", "-o", str(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = json.loads(target.read_text())
    assert (data["name"], data["system"], data["model"]) == (
        "work",
        "be brief",
        "ollama:llama3.2:latest",
    )
    answer = data["messages"][1]
    assert (answer["role"], answer["content"], answer["status"]) == (
        "assistant",
        "A write-ahead log.",
        "complete",
    )
    assert (answer["prompt_tokens"], answer["completion_tokens"], answer["duration_s"]) == (
        12,
        5,
        0.8,
    )
    assert answer["created"].endswith("+00:00")


@pytest.mark.parametrize(("suffix", "is_json"), [(".json", True), (".JSON", True), (".md", False)])
def test_export_format_follows_the_file_name(
    cortan: type[CortanRunner],
    two_sessions: tuple[int, int],
    tmp_path: Path,
    suffix: str,
    is_json: bool,
) -> None:
    """`-o db.json` wrote markdown (issue 21): without --format, the suffix says which."""
    target = tmp_path / f"work{suffix}"
    ok(cortan, "sessions", "export", "work", "-o", str(target))
    text = target.read_text()
    if is_json:
        assert json.loads(text)["name"] == "work"
    else:
        assert text.startswith("# work")


def test_export_refuses_a_format_the_file_name_contradicts(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], tmp_path: Path
) -> None:
    target = tmp_path / "work.json"
    result = cortan.run("sessions", "export", "work", "--format", "md", "-o", str(target))
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "work.json" in result.stderr and "--format md" in result.stderr
    assert not target.exists()


@pytest.mark.parametrize(
    ("where", "code", "sentence"),
    [
        ("folder", 2, "cannot write {path}: it is a folder"),
        ("missing/work.md", 2, "cannot write {path}: its folder does not exist"),
        ("/dev/full", 1, "cannot write {path}: no space left on device"),
    ],
)
def test_export_to_a_place_that_cannot_take_it(
    cortan: type[CortanRunner],
    two_sessions: tuple[int, int],
    tmp_path: Path,
    where: str,
    code: int,
    sentence: str,
) -> None:
    # Before: Python's "No such file or directory" for a missing folder, and a full
    # disk was exit 2, as if the command line were wrong.
    (tmp_path / "folder").mkdir()
    path = Path(where) if where.startswith("/") else tmp_path / where
    result = cortan.run("sessions", "export", "work", "-o", str(path))
    assert result.code == code, result.stderr
    assert_one_sentence(result.stderr)
    assert sentence.format(path=path) in result.stderr


def test_export_that_fills_the_disk_leaves_no_half_file(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], tmp_path: Path
) -> None:
    from tests.security.test_readonly_store import fill, tiny_disk

    disk = tmp_path / "disk"
    with tiny_disk(disk):
        fill(disk)
        result = cortan.run("sessions", "export", "work", "-o", str(disk / "work.md"))
        left = sorted(p.name for p in disk.iterdir())
    assert result.code == 1, result.stderr
    assert "no space left on device" in result.stderr
    assert left == ["filler"]  # before: an empty work.md, looking like an export


def test_sessions_list_json_has_the_first_prompt(
    cortan: type[CortanRunner], two_sessions: tuple[int, int]
) -> None:
    data = json.loads(ok(cortan, "sessions", "list", "--json"))
    assert [c["first_prompt"] for c in data] == ["unnamed \x1b[2J question", "what is WAL?"]


def test_export_to_a_pipe_keeps_the_exact_text(
    cortan: type[CortanRunner], two_sessions: tuple[int, int]
) -> None:
    data = json.loads(ok(cortan, "sessions", "export", str(two_sessions[1]), "--format", "json"))
    assert data["messages"][0]["content"] == "unnamed \x1b[2J question"


# -- cortan logs --------------------------------------------------------------------------


def test_logs_newest_first_with_model_and_tokens(
    cortan: type[CortanRunner], two_sessions: tuple[int, int]
) -> None:
    lines = ok(cortan, "logs").splitlines()
    assert lines[0].split() == ["ID", "TIME", "SESSION", "ROLE", "MODEL", "TOKENS", "TEXT"]
    assert "[interrupted] cut" in lines[1]
    assert "work" in lines[3]
    assert "llama3.2:latest" in lines[3]
    assert "12+5 tok" in lines[3]
    two = ok(cortan, "logs", "-n", "1").splitlines()  # one exchange: a question, its answer
    assert [line.split()[4] for line in two[1:]] == ["assistant", "user"]


def test_logs_shows_the_ids_logs_rm_takes(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], store: SessionStore
) -> None:
    """README: `cortan logs rm 812 813`, by id; the table showed none (only `--json` did)."""
    work, _ = two_sessions
    line = next(x for x in ok(cortan, "logs").splitlines() if "A write-ahead log." in x)
    result = cortan.run("logs", "rm", line.split()[0])
    assert result.code == 0, result.stderr
    assert [m.content for m in store.messages(work)] == ["what is WAL?"]


def test_logs_n_counts_exchanges(cortan: type[CortanRunner], store: SessionStore) -> None:
    """`logs -n 2` is two questions with their answers, as in `llm logs` (issue 21)."""
    first, second = store.create(), store.create()
    for conversation, prompt in ((first, "q1"), (second, "q2"), (first, "q3")):
        store.add_message(conversation.id, "user", prompt)
        store.add_message(conversation.id, "assistant", f"a{prompt[1]}")
    store.add_message(second.id, "user", "q4, never answered")
    data = json.loads(ok(cortan, "logs", "--json", "-n", "2"))
    assert [e["content"] for e in data] == ["q4, never answered", "a3", "q3"]
    data = json.loads(ok(cortan, "logs", "--json", "-n", "3"))
    assert [e["content"] for e in data] == ["q4, never answered", "a3", "q3", "a2", "q2"]


def test_logs_on_a_terminal_fit_its_width() -> None:
    from cortan.cli.transcript import log_rows
    from cortan.store import StoredMessage

    long = StoredMessage(1, 7, "user", "word " * 50, 0.0, conversation_name="a name")
    fitted = log_rows([long], width=100)
    assert all(len(line) < 100 for line in fitted)
    assert len(fitted[1]) < len(log_rows([long])[1])  # a pipe keeps the usual 60 characters


def test_logs_json(cortan: type[CortanRunner], two_sessions: tuple[int, int]) -> None:
    entries = json.loads(ok(cortan, "logs", "--json", "-n", "2"))
    assert [e["role"] for e in entries] == ["assistant", "user", "assistant", "user"]
    assert entries[2]["conversation"] == "work"
    assert entries[2]["model"] == "llama3.2:latest"
    assert entries[2]["completion_tokens"] == 5


@pytest.mark.parametrize("text", ['" * NEAR( - (x ^ : AND', 'WAL" OR "x'])
def test_logs_query_with_hostile_text(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], text: str
) -> None:
    result = cortan.run("logs", "-q", text)  # tests/store/test_search.py tries many more
    assert result.code == 0, result.stderr
    assert "error" not in result.stderr


def test_logs_query_finds_words(cortan: type[CortanRunner], two_sessions: tuple[int, int]) -> None:
    entries = json.loads(ok(cortan, "logs", "--json", "-q", "wal?"))
    assert [e["content"] for e in entries] == ["what is WAL?"]
    assert json.loads(ok(cortan, "logs", "--json", "-q", "write-ahead")) != []
    nothing = cortan.run("logs", "-q", "zebra")
    assert (nothing.code, nothing.stdout) == (0, "")
    assert "no matching messages" in nothing.stderr


def test_a_damaged_store_is_one_sentence(
    cortan: type[CortanRunner], store: SessionStore, data_dir: Path
) -> None:
    for i in range(300):
        store.add_message(store.create().id, "user", f"message {i} " * 40)
    store.close()
    path = get_store_path(data_dir)
    data = bytearray(path.read_bytes())
    data[4096 * 2 :] = b"\x07" * (len(data) - 4096 * 2)
    path.write_bytes(bytes(data))
    result = cortan.run("logs")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert str(path) in result.stderr


# -- continue, fork and logs rm (issue 21) -------------------------------------------------


def test_continue_takes_the_conversation_last_used_not_the_last_created(
    cortan: type[CortanRunner], ollama_env: FakeOllama, store: SessionStore
) -> None:
    older = store.create("older")
    store.create("newer")  # created after, but never used again
    store.add_message(older.id, "user", "used last")
    store.add_message(older.id, "assistant", "yes")
    ok(cortan, "ask", "-c", "go on")
    assert [m["content"] for m in sent(ollama_env)["messages"]] == ["used last", "yes", "go on"]


def test_continue_passes_over_a_conversation_that_never_had_an_answer(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """A misspelt model's question is stored, failed; `-c` went on with it, and failed
    the same way every time, instead of with the conversation the person was having."""
    ok(cortan, "ask", "what is WAL?")
    missing = cortan.run("ask", "-m", "ollama:nosuch", "typo question")
    assert missing.code == 1 and "nosuch" in missing.stderr
    ok(cortan, "ask", "-c", "and why?")
    assert [m["content"] for m in sent(ollama_env)["messages"]] == [
        "what is WAL?", "Hello, world!", "and why?",
    ]  # fmt: skip
    assert sent(ollama_env)["model"] == "llama3.2:latest"


def test_ask_fork_goes_on_in_a_copy(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> None:
    ollama_env.queue(Reply(pieces=["Paris."]), Reply(pieces=["Lyon."]))
    ok(cortan, "ask", "--session", "trip", "capital of France?")
    report = json.loads(ok(cortan, "ask", "--session", "trip", "--fork", "--json", "second?"))
    assert [m["content"] for m in sent(ollama_env)["messages"]] == [
        "capital of France?", "Paris.", "second?",
    ]  # fmt: skip
    with SessionStore.open(data_dir) as opened:
        trip = opened.get_by_name("trip")
        assert trip is not None and trip.message_count == 2  # the original is as it was
        copy = opened.get(report["conversation_id"])
        assert copy is not None and copy.id != trip.id
        assert [m.content for m in opened.messages(copy.id)] == [
            "capital of France?", "Paris.", "second?", "Lyon.",
        ]  # fmt: skip
    ok(cortan, "ask", "-c", "--fork", "third?")  # -c: the copy, used last, is copied again
    with SessionStore.open(data_dir) as opened:
        assert opened.count_conversations() == 3


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--fork", "q"), "name it with -c or --session"),
        (("--session", "nope", "--fork", "q"), "no stored conversation 'nope' to fork"),
        (("-c", "--fork", "--no-log", "q"), "--no-log"),
    ],
)
def test_ask_fork_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: tuple[str, ...], says: str
) -> None:
    ok(cortan, "ask", "first")
    result = cortan.run("ask", *args)
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert says in result.stderr
    assert len(ollama_env.chat_requests) == 1  # nothing sent


def test_logs_rm_by_id_and_by_session(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], store: SessionStore
) -> None:
    work, other = two_sessions
    entries = json.loads(ok(cortan, "logs", "--json"))
    answer = next(e["id"] for e in entries if e["content"] == "A write-ahead log.")
    result = cortan.run("logs", "rm", str(answer))
    assert (result.code, result.stdout) == (0, "")
    assert "1 message removed" in result.stderr
    assert [m.content for m in store.messages(work)] == ["what is WAL?"]
    result = cortan.run("logs", "rm", str(answer), "99999")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert f"no stored message with id {answer}, 99999" in result.stderr
    result = cortan.run("logs", "rm", "--session", "work")
    assert result.code == 0, result.stderr
    assert store.get(work) is None and store.get(other) is not None
    result = cortan.run("logs", "rm", "--session", "work")
    assert result.code == 1
    assert "nothing to remove" in result.stderr


def test_logs_rm_all_needs_yes_without_a_terminal(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], store: SessionStore
) -> None:
    result = cortan.run("logs", "rm", "--all")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "--yes" in result.stderr
    assert store.count_conversations() == 2
    result = cortan.run("logs", "rm", "--all", "--yes")
    assert result.code == 0, result.stderr
    assert "2 conversations removed" in result.stderr
    assert store.count_conversations() == 0
    result = cortan.run("logs", "rm", "--all", "--yes")
    assert result.code == 1
    assert "nothing to remove" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ((), 2),  # nothing named
        (("1", "--all"), 2),  # two ways at once
        (("not-a-number",), 2),
        (("-5",), 2),
        (("9" * 40,), 2),  # past SQLite's 64-bit integers: a usage error, not an internal one
    ],
)
def test_logs_rm_bad_input(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], args: tuple[str, ...], code: int
) -> None:
    result = cortan.run("logs", "rm", *args)
    assert result.code == code, result.stderr
    assert_one_sentence(result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_logs_rm_with_no_store(cortan: type[CortanRunner], data_dir: Path) -> None:
    result = cortan.run("logs", "rm", "--all", "--yes")
    assert result.code == 1
    assert "nothing is stored yet" in result.stderr
    assert not data_dir.exists() or not get_store_path(data_dir).exists()


def test_a_session_on_a_small_llama_cpp_window_never_gets_stuck(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    """llama.cpp started with a small -c refuses the grown conversation; every turn still
    answers, saying when it left more out (issue 21)."""
    openai_env.context_size = 1500
    openai_env.default = Reply(pieces=[" ".join(["answer"] * 80)])
    told = []
    for turn in range(6):
        result = cortan.run("ask", "--session", "long", f"turn {turn} " + " ".join(["w"] * 300))
        assert result.code == 0, result.stderr
        assert "Traceback" not in result.stderr
        told.append(result.stderr)
    assert openai_env.refused >= 1
    assert any("refused the conversation as longer than its 1500-token window" in t for t in told)


def test_a_window_a_server_named_is_remembered_by_the_next_process(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, data_dir: Path
) -> None:
    """Each `ask --session` is a process of its own: the window and the count a refusal
    taught are kept in the store, so later turns are fitted at once, one request each,
    instead of failing first and asking again (issue 21)."""
    openai_env.context_size = 1500
    openai_env.default = Reply(pieces=[" ".join(["answer"] * 80)])
    requests = []
    for turn in range(6):
        before = len(openai_env.chat_requests)
        result = cortan.run("ask", "--session", "long", f"turn {turn} " + " ".join(["w"] * 300))
        assert result.code == 0, result.stderr
        requests.append(len(openai_env.chat_requests) - before)
    assert openai_env.refused == 1, requests
    first = requests.index(2)
    assert requests[first + 1 :] == [1] * (5 - first)
    # Another server behind the same provider name learned nothing: its own window counts.
    with sqlite3.connect(get_store_path(data_dir)) as db:
        rows = db.execute("SELECT model, window FROM model_windows").fetchall()
    assert rows == [(f"openai:gpt-4o-mini@{openai_env.url}/v1", 1500)]


def test_logs_rm_all_asks_on_a_terminal(two_sessions: tuple[int, int], store: SessionStore) -> None:
    import pexpect

    command, *args = cortan_command()
    for answer, kept in (("n", True), ("y", False)):
        child = pexpect.spawn(
            command, [*args, "logs", "rm", "--all"], env=dict(os.environ), timeout=20
        )
        child.expect(r"Delete all 2 conversations and their messages\? \[y/N\]")
        child.sendline(answer)
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == (1 if kept else 0)
        assert (store.count_conversations() == 2) is kept


def test_removing_a_session_that_is_not_there_exits_1_as_logs_rm_does(
    cortan: type[CortanRunner], two_sessions: tuple[int, int]
) -> None:
    """`sessions rm nosuch` exited 2 while `logs rm --session nosuch` exited 1: deleting
    what is not there is 1 for both (docs/scripting.md), as for rm."""
    for args in (["sessions", "rm", "nosuch", "--yes"], ["logs", "rm", "--session", "nosuch"]):
        result = cortan.run(*args)
        assert result.code == 1, (args, result.stderr)
        assert_one_sentence(result.stderr)
        assert "nothing to remove" in result.stderr
    assert cortan.run("sessions", "show", "nosuch").code == 2  # naming it to read: usage


# -- a store another process holds ----------------------------------------------------------

HOLD_EXCLUSIVE = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA locking_mode = EXCLUSIVE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE conversations SET name = name")
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture
def held_store(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data_dir: Path
) -> Iterator[None]:
    """The store, held with an exclusive lock by another process (a sqlite3 shell)."""
    assert cortan.run("ask", "--no-stdin", "--session", "kept", "first").code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_EXCLUSIVE, str(get_store_path(data_dir))],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.kill()
        holder.communicate()


def test_ask_answers_while_another_process_holds_the_store(
    cortan: type[CortanRunner], held_store: None
) -> None:
    # Before: exit 1 and nothing asked, though a new question needs no stored turn.
    result = cortan.run("ask", "--no-stdin", "second")
    assert (result.code, result.stdout) == (0, "Hello, world!\n"), result.stderr
    assert result.stderr.count("cortan: warning:") == 1
    assert "stayed locked by another process" in result.stderr
    assert "this exchange is not stored" in result.stderr


def test_continuing_while_another_process_holds_the_store_says_so(
    cortan: type[CortanRunner], ollama_env: FakeOllama, held_store: None
) -> None:
    result = cortan.run("ask", "--no-stdin", "--session", "kept", "more")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "stayed locked by another process" in result.stderr
    assert len(ollama_env.chat_requests) == 1  # the first question only


@pytest.mark.parametrize("own", ["cortan.db", "history"])
def test_export_never_writes_over_cortans_own_files(
    cortan: type[CortanRunner], two_sessions: tuple[int, int], data_dir: Path, own: str
) -> None:
    # Before: `-o ~/.local/share/cortan/cortan.db` wrote the markdown over the store:
    # every conversation lost.
    (data_dir / "history").write_text("\n# 2026-01-01\n+kept\n")
    result = cortan.run("sessions", "export", "work", "-o", str(data_dir / own))
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert f"is cortan's own {own}, which writing there would destroy" in result.stderr
    assert (data_dir / "history").read_text() == "\n# 2026-01-01\n+kept\n"
    assert "work" in ok(cortan, "sessions", "list")


def test_listings_on_a_narrow_terminal_drop_columns_not_lines() -> None:
    """At 50 columns (a split pane) `cortan logs` and `sessions list` wrapped every row;
    a pipe (no width) keeps every column for scripts."""
    from cortan.cli.transcript import conversation_rows, log_rows
    from cortan.store import Conversation, StoredMessage

    message = StoredMessage(
        812, 7, "user", "why is the sky blue " * 5, 0.0, conversation_name="a name"
    )
    conversation = Conversation(
        7, "a name", 0.0, 0.0, "ollama:llama3.2:latest", None, 12, "why is the sky blue"
    )
    for lines in (log_rows([message], width=50), conversation_rows([conversation], width=50)):
        assert all(len(line) < 50 for line in lines), lines
        assert len(lines) == 2 and lines[1].split()[0] in ("812", "7"), lines
        assert "why is the" in lines[1], lines
    assert log_rows([message])[0].split()[:3] == ["ID", "TIME", "SESSION"]
    assert "MODEL" in conversation_rows([conversation])[0]
