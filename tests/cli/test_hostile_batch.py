"""`cortan batch` against hostile inputs and outputs: one sentence, the documented exit
code, the input never harmed, the partial output kept (red team, docs/batch.md)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command, wait_until
from tests.servers import FakeOllama, Reply


def test_output_hard_linked_to_the_input_is_refused_and_the_input_kept(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    other = tmp_path / "out.jsonl"
    os.link(source, other)  # another name for the same file: opening it "w" empties the input
    result = cortan.run("batch", str(source), "-o", str(other))
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "is the input itself" in result.stderr
    assert source.read_text() == '{"prompt": "a"}\n{"prompt": "b"}\n'
    assert ollama_env.chat_requests == []


def test_output_that_is_the_session_store_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, isolated_env: Path
) -> None:
    # Before: the store was truncated and written over: every conversation lost.
    assert cortan.run("ask", "--no-stdin", "--session", "kept", "first").code == 0
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    link = tmp_path / "out.jsonl"
    link.symlink_to(isolated_env / "data" / "cortan.db")
    for output in (isolated_env / "data" / "cortan.db", link):
        result = cortan.run("batch", str(source), "-o", str(output))
        assert result.code == 2, result.stderr
        assert_one_sentence(result.stderr)
        assert "is cortan's own cortan.db" in result.stderr
    assert "kept" in cortan.run("sessions", "list").stdout


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("where", ["-o", "stdout"])
def test_output_that_cannot_be_written_fails_in_one_sentence(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, where: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    if where == "-o":
        result = cortan.run("batch", str(source), "-o", "/dev/full")
        code, stderr = result.code, result.stderr
    else:
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                [*cortan_command(), "batch", str(source)],
                stdin=subprocess.DEVNULL,
                stdout=full,
                stderr=subprocess.PIPE,
                timeout=60,
                check=False,
            )
        code, stderr = done.returncode, done.stderr.decode()
    assert code == 1, stderr
    assert_one_sentence(stderr)
    assert "internal error" not in stderr
    assert "no space left on device (the lines before are kept)" in stderr
    # Resumable: what was answered is committed, so a run to a real file writes it all.
    out = tmp_path / "out.jsonl"
    again = cortan.run("batch", str(source), "-o", str(out))
    assert again.code == 0, again.stderr
    assert [json.loads(line)["finish_reason"] for line in out.read_text().splitlines()] == [
        "stop",
        "stop",
    ]


@pytest.mark.parametrize(
    ("template", "sentence"),
    [
        ("/dev/zero", "cannot read the template /dev/zero: it is larger than 1 MiB"),
        ("big", "cannot read the template {tmp}/big: it is larger than 1 MiB"),
        ("folder", "cannot read the template {tmp}/folder: it is a folder"),
    ],
)
def test_a_template_file_that_never_ends_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, template: str, sentence: str
) -> None:
    # Before: /dev/zero was read whole, memory growing until the machine stopped it.
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    (tmp_path / "folder").mkdir()
    with (tmp_path / "big").open("wb") as big:
        big.truncate(5 << 20)
    path = template if template.startswith("/") else str(tmp_path / template)
    result = cortan.run("batch", str(source), "--template-file", path, timeout=20)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert sentence.format(tmp=tmp_path) in result.stderr
    assert ollama_env.chat_requests == []


def test_a_template_from_a_pipe_is_read(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # `--template-file <(…)`: a pipe is read to its end, as cat would.
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    fifo = tmp_path / "template"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf 'Q: {{line}}' > {fifo}"])
    result = cortan.run("batch", str(source), "--template-file", str(fifo), timeout=20)
    writer.wait(timeout=10)
    assert result.code == 0, result.stderr
    assert ollama_env.chat_requests[-1].json["messages"][-1]["content"] == "Q: a"


@pytest.mark.parametrize(
    ("where", "sentence"),
    [("folder", "it is a folder"), ("missing/out.jsonl", "its folder does not exist")],
)
def test_an_output_path_that_cannot_be_made(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, where: str, sentence: str
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    (tmp_path / "folder").mkdir()
    result = cortan.run("batch", str(source), "-o", str(tmp_path / where))
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert f"cannot write {tmp_path / where}: {sentence}" in result.stderr


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_link_loop_in_a_folder_costs_its_item_not_the_job(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("first\n")
    (folder / "loop1").symlink_to("loop2")
    (folder / "loop2").symlink_to("loop1")
    (folder / "z.md").write_text("last\n")
    result = cortan.run("batch", str(folder), "-p", "summarise")
    assert result.code == 4, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["finish_reason"]) for o in out] == [
        ("a.md", "stop"),
        ("loop1", "error"),
        ("loop2", "error"),
        ("z.md", "stop"),
    ]
    assert "file loop1 cannot be read" in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_pipe_a_socket_and_a_dangling_link_each_cost_their_item(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    """They were skipped without a word: nine answers for ten files, and no one told."""
    import socket

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("first\n")
    os.mkfifo(folder / "b.fifo")  # never opened: it would wait for a writer
    (folder / "c.md").symlink_to("gone.md")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "d.sock"))
        result = cortan.run("batch", str(folder), "-p", "summarise", timeout=30)
    assert result.code == 4, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(o["id"], o["finish_reason"]) for o in out] == [
        ("a.md", "stop"),
        ("b.fifo", "error"),
        ("c.md", "error"),
        ("d.sock", "error"),
    ]
    assert "file b.fifo cannot be read (a named pipe, not a regular file)" in result.stderr
    assert "file c.md cannot be read (a link to nothing)" in result.stderr
    assert "file d.sock cannot be read (a socket, not a regular file)" in result.stderr
    assert len(ollama_env.chat_requests) == 1


def test_non_finite_numbers_in_options_fail_the_item_as_input(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # They reached the wire as `Infinity`/`NaN` (not JSON), and the server's refusal was
    # reported as a reply cortan cannot parse (bad_response), blaming the server.
    source = tmp_path / "in.jsonl"
    source.write_text(
        '{"prompt": "a", "options": {"temperature": 1e999}}\n'
        '{"prompt": "b", "options": {"top_p": NaN}}\n'
        '{"prompt": "c", "options": {"temperature": -Infinity}}\n'
        '{"prompt": "d"}\n'
    )
    result = cortan.run("batch", str(source))
    assert result.code == 4, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["error"]["kind"] if o.get("error") else "ok" for o in out] == [
        "input",
        "input",
        "input",
        "ok",
    ]
    assert "line 1: option 'temperature' must be a finite number" in result.stderr
    assert len(ollama_env.chat_requests) == 1


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e999"])
def test_a_non_finite_option_on_the_command_line_is_a_usage_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, value: str
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n')
    result = cortan.run("batch", str(source), "--option", f"temperature={value}")
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "option temperature needs a finite number" in result.stderr  # as ask says it
    assert ollama_env.chat_requests == []


def test_many_workers_ask_the_server_about_the_model_once(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # Each worker sent its own /api/show while the first was under way: with -j 4096 the
    # SDK's connection pool spun on thousands of them, no item answered in 20 s, and
    # SIGTERM went unheard for a minute.
    ollama_env.show_delay = 0.3
    source = tmp_path / "in.txt"
    source.write_text("".join(f"q{i}\n" for i in range(8)))
    result = cortan.run("batch", str(source), "-j", "8")
    assert result.code == 0, result.stderr
    shows = [r for r in ollama_env.requests if r.path == "/api/show"]
    assert len(shows) == 1
    assert len(ollama_env.chat_requests) == 8


def test_a_429_asking_to_wait_a_day_fails_the_rest_at_once(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # The first item failed at once (the wait is past retry.deadline), then every next
    # item waited out the server's pause: the job hung for the day it asked.
    ollama_env.queue(Reply(status=429, error="slow down", headers={"retry-after": "86400"}))
    source = tmp_path / "in.txt"
    source.write_text("a\nb\nc\n")
    result = cortan.run("batch", str(source), timeout=30)
    assert result.code == 4, result.stderr
    assert "Traceback" not in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["error"]["kind"] for o in out] == ["rate_limited"] * 3
    assert all("past retry.deadline (60 s)" in o["error"]["message"] for o in out)
    assert len(ollama_env.chat_requests) == 1  # the others were not sent into the pause


def test_a_closed_stdin_is_a_usage_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # `cortan batch <&-` ended in "internal error: AttributeError: 'NoneType' object …".
    proc = cortan.popen("batch", stdin=None, preexec_fn=lambda: os.close(0))
    _, err = proc.communicate(timeout=30)
    stderr = err.decode()
    assert proc.returncode == 2, stderr
    assert_one_sentence(stderr)
    assert "stdin is closed: name the input file, or pipe the items in" in stderr


def test_a_reader_that_goes_away_is_141_and_the_job_resumes(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # `cortan batch … | head -1` exited 1, which a script reads as a failure; `cortan ask`
    # and docs/scripting.md say 141 (128 + SIGPIPE), nothing said.
    source = tmp_path / "in.txt"
    source.write_text("".join(f"q{i}\n" for i in range(600)))  # past a pipe's 64 KiB
    command = " ".join(cortan_command())
    script = f'{command} batch {source} | head -1 >/dev/null; echo "${{PIPESTATUS[0]}}"'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-1] == "141", done.stderr
    assert "error" not in done.stderr and "Traceback" not in done.stderr
    again = cortan.run("batch", str(source), timeout=60)
    assert again.code == 0, again.stderr
    assert len(again.stdout.splitlines()) == 600
    assert "batch: resuming: " in again.stderr


def test_stdout_appended_to_the_input_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # `cortan batch in.txt >> in.txt` read its own answers as new items without end:
    # 3,000 lines became 13,160 answers in 40 s, and counting.
    source = tmp_path / "in.txt"
    text = "".join(f"q{i}\n" for i in range(600))  # past what the reader takes at once
    source.write_text(text)
    with source.open("ab") as same:
        done = subprocess.run(
            [*cortan_command(), "batch", str(source)],
            stdin=subprocess.DEVNULL, stdout=same, stderr=subprocess.PIPE, timeout=60,
            check=False,
        )  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert_one_sentence(stderr)
    assert f"stdout is the input {source} itself: write the output elsewhere" in stderr
    assert source.read_text() == text
    assert ollama_env.chat_requests == []


def test_items_from_a_producer_still_running_are_asked_as_they_arrive(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    # `tail -f log | cortan batch`: the lines were handed on in chunks of 256, so two lines
    # from a producer that had not ended were never asked (SIGTERM: "0 answered").
    proc = cortan.popen("batch", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        for n, line in enumerate([b"first\n", b"second\n"], 1):
            proc.stdin.write(line)
            proc.stdin.flush()
            asked = wait_until(lambda: len(ollama_env.chat_requests) == n, timeout=15)  # noqa: B023
            assert asked, "the item was not asked"
        out, err = proc.communicate(timeout=30)  # closes stdin: the producer ends
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert [json.loads(line)["id"] for line in out.decode().splitlines()] == [1, 2]


def test_a_progress_interval_too_small_to_wait_is_a_config_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path, tmp_path: Path
) -> None:
    # 1e-300 was taken: the progress loop slept no time at all and spun a core (5.3x the
    # CPU of the same 5 s job).
    config_file.write_text("[batch]\nprogress_interval = 1e-300\n")
    source = tmp_path / "in.txt"
    source.write_text("a\n")
    result = cortan.run("batch", str(source))
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "batch.progress_interval" in result.stderr
    assert ollama_env.chat_requests == []


def _batch_into(folder: Path, out: Path, where: str) -> tuple[int, str]:
    """``cortan batch folder -p …`` writing to ``out`` with ``-o``, or with ``> out``."""
    command = [*cortan_command(), "batch", str(folder), "-p", "Summarise"]
    with out.open("wb") if where == "stdout" else open(os.devnull, "wb") as stdout:
        done = subprocess.run(
            [*command, "-o", str(out)] if where == "-o" else command,
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE, timeout=60,
            check=False,
        )  # fmt: skip
    return done.returncode, done.stderr.decode()


@pytest.mark.parametrize("where", ["-o", "stdout"])
def test_the_output_written_into_the_input_folder_is_not_an_item(
    ollama_env: FakeOllama, tmp_path: Path, where: str
) -> None:
    """``cortan batch notes/ -o notes/out.jsonl`` read its own output as an item: half
    written on the first run, the earlier run's answers on the next. The job is the
    same wherever its output goes: one written elsewhere first resumes."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for name in ("a.md", "b.md", "z.md"):  # out.jsonl sorts between b.md and z.md
        (folder / name).write_text(f"{name} text\n")
    note = "batch: the folder's file out.jsonl is the output: it is not one of the items"
    code, stderr = _batch_into(folder, tmp_path / "elsewhere.jsonl", where)
    assert code == 0, stderr
    assert note not in stderr
    out = folder / "out.jsonl"
    for _ in range(2):
        code, stderr = _batch_into(folder, out, where)
        assert code == 0, stderr
        ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
        assert ids == ["a.md", "b.md", "z.md"]
        assert stderr.count(note) == 1, stderr
        assert "resuming: 3 items answered by an earlier run" in stderr
    assert len(ollama_env.chat_requests) == 3


@pytest.mark.parametrize(
    ("name", "text", "args", "sentence"),
    [
        ("in.jsonl", '{"id": "r1", "prompt": "a"}\n{"id": "r2", "prompt": "b"}\n\n'
         '{"id": "r1", "prompt": "c"}\n', [], 'line 4 has the id "r1", as line 1 does'),
        ("in.csv", "id,text\nr1,a\nr2,b\nr1,c\n", ["-t", "{text}"],
         'row 3 (line 4) has the id "r1", as row 1 (line 2) does'),
    ],
)  # fmt: skip
def test_two_items_with_one_id_are_refused_before_anything_is_sent(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path,
    name: str, text: str, args: list[str], sentence: str,
) -> None:  # fmt: skip
    """Two output lines with one id could not be told apart; they ran and were written."""
    source = tmp_path / name
    source.write_text(text)
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n")
    result = cortan.run("batch", str(source), *args, "-o", str(out))
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert "each item needs an id of its own" in result.stderr
    assert ollama_env.chat_requests == []
    assert out.read_text() == "kept\n"  # refused before -o was opened


def test_a_repeated_id_from_stdin_stops_the_job_there(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """Stdin is read as it comes, so it cannot be checked first: the job stops at the
    repeat, before it is sent (5 and "5" are two ids)."""
    text = '{"id": 7, "prompt": "a"}\n{"id": "7", "prompt": "b"}\n{"id": 7, "prompt": "c"}\n'
    result = cortan.run("batch", "-F", "jsonl", input=text)
    assert result.code == 2, result.stderr
    assert "cortan: error: line 3 has the id 7, as line 1 does" in result.stderr
    assert "Traceback" not in result.stderr
    assert "c" not in {r.json["messages"][-1]["content"] for r in ollama_env.chat_requests}
