"""`cortan ask` end to end: the installed command against loopback servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CortanRunner, assert_one_sentence, cortan_command
from tests.servers import FakeOllama, FakeOpenAI, Reply

EXIT_READER_GONE = 141  # 128 + SIGPIPE, as `yes | head -1` reports it


def user_message(server: FakeOllama | FakeOpenAI, index: int = -1) -> str:
    messages = server.chat_requests[index].json["messages"]
    return str(messages[-1]["content"])


def test_ollama_answer_streams_to_stdout(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "Why", "is", "the", "sky", "blue?")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert result.stderr == ""
    body = ollama_env.chat_requests[0].json
    assert body["model"] == "llama3.2:latest"
    assert body["messages"] == [{"role": "user", "content": "Why is the sky blue?"}]


def test_openai_answer_with_system_prompt(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    result = cortan.run("ask", "-s", "Be brief.", "hi")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    request = openai_env.chat_requests[0]
    assert request.headers["authorization"] == "Bearer sk-test-key"
    assert request.json["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request.json["stream_options"] == {"include_usage": True}


def test_model_flag_routes_to_named_provider(
    cortan: type[CortanRunner], ollama_env: FakeOllama, openai_env: FakeOpenAI
) -> None:
    result = cortan.run("ask", "-m", "ollama:qwen2.5-coder:7b", "hi")
    assert result.code == 0, result.stderr
    assert ollama_env.chat_requests[0].json["model"] == "qwen2.5-coder:7b"
    assert openai_env.chat_requests == []


def test_bare_model_name_uses_default_provider(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    result = cortan.run("ask", "-m", "gpt-4o", "hi")
    assert result.code == 0, result.stderr
    assert openai_env.chat_requests[0].json["model"] == "gpt-4o"


def test_piped_text_is_framed_with_instruction_after(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "summarise this", input="line one\nline two\n")
    assert result.code == 0, result.stderr
    assert user_message(ollama_env) == (
        "Input from stdin:\n```\nline one\nline two\n```\n\nsummarise this"
    )


def test_instruction_position_before_is_a_setting(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    env = {"CORTAN_INSTRUCTION_POSITION": "before"}
    result = cortan.run("ask", "summarise", input="data ``` with a fence\n", env=env)
    assert result.code == 0, result.stderr
    assert user_message(ollama_env) == (
        "summarise\n\nInput from stdin:\n````\ndata ``` with a fence\n````"
    )


def test_stdin_alone_is_the_prompt(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    assert cortan.run("ask", input="What is 2+2?\n").code == 0
    assert cortan.run("ask", "-", input="What is 3+3?\n").code == 0
    assert user_message(ollama_env, 0) == "What is 2+2?\n"
    assert user_message(ollama_env, 1) == "What is 3+3?\n"


def test_no_stdin_leaves_stdin_alone(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "--no-stdin", "hi", input="not for cortan\n")
    assert result.code == 0
    assert user_message(ollama_env) == "hi"


def test_dev_null_stdin_as_under_cron(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "hi", stdin=subprocess.DEVNULL)
    assert result.code == 0, result.stderr
    assert user_message(ollama_env) == "hi"


def test_parent_holding_stdin_open_does_not_hang(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    proc = cortan.popen("ask", "hi", stdin=subprocess.PIPE, env=_env(CORTAN_STDIN_TIMEOUT="0.3"))
    with proc:
        assert proc.stdout is not None and proc.stderr is not None
        out = proc.stdout.read()  # stdin stays open and silent the whole time
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read()
    assert out.decode() == "Hello, world!\n"
    assert "nothing arrived on stdin" in err.decode()
    assert user_message(ollama_env) == "hi"


def test_while_read_loop_keeps_its_lines(
    tmp_path: Path, cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    listing = tmp_path / "list"
    listing.write_text("first question\nsecond question\nthird question\n")
    command = " ".join(cortan_command())
    script = f'while read line; do {command} ask "$line"; done < {listing}'
    done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    asked = [r.json["messages"][-1]["content"] for r in ollama_env.chat_requests]
    assert asked == ["first question", "second question", "third question"]


def test_json_output(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["4"], prompt_tokens=11, completion_tokens=1))
    result = cortan.run("ask", "--json", "2+2?")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["content"] == "4"
    assert report["model"] == "llama3.2:latest"
    assert report["provider"] == "ollama"
    assert report["finish_reason"] == "stop"
    assert report["usage"] == {"prompt_tokens": 11, "completion_tokens": 1, "thinking_tokens": None}
    assert report["timings"]["total_s"] >= report["timings"]["first_token_s"] >= 0


def test_openai_usage_in_json(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    openai_env.queue(Reply(pieces=["a", "b"], prompt_tokens=5, completion_tokens=2))
    report = json.loads(cortan.run("ask", "--json", "x").stdout)
    assert report["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "thinking_tokens": None}
    assert report["content"] == "ab"


def test_no_stream_prints_once(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["one ", "two"]))
    result = cortan.run("ask", "--no-stream", "x")
    assert (result.code, result.stdout) == (0, "one two\n")


def test_pipe_output_is_flushed_per_piece(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["first ", "second"], delay=1.0))
    proc = cortan.popen("ask", "--no-stdin", "x")
    assert proc.stdout is not None
    start = time.monotonic()
    assert proc.stdout.read(6) == b"first "
    assert time.monotonic() - start < 20
    assert proc.poll() is None  # the second piece has not come yet
    proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_escape_sequences_are_neutralised_in_pipes(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["a\x1b[2Jb", "\x1b]52;c;ZXZpbA==\x07"]))
    result = cortan.run("ask", "x")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "␛[2J" in result.stdout


def test_raw_passes_bytes_when_not_a_terminal(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["a\x1b[1mb"]), Reply(pieces=["c\x1b[1md\n"]))
    assert cortan.run("ask", "--raw", "x").stdout == "a\x1b[1mb"  # no newline it did not send
    assert cortan.run("ask", "--raw", "x").stdout == "c\x1b[1md\n"


def test_raw_no_stream_is_raw_too(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["a\x1b[1m", "b"]))
    assert cortan.run("ask", "--raw", "--no-stream", "x").stdout == "a\x1b[1mb"


def test_dash_then_words_sends_stdin_with_the_instruction(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """`ask - "summarise"` used to send the prompt "- summarise" (issue 21)."""
    result = cortan.run("ask", "-", "summarise", "this", input="the data\n")
    assert result.code == 0, result.stderr
    assert user_message(ollama_env) == "Input from stdin:\n```\nthe data\n```\n\nsummarise this"


def test_a_dash_inside_the_words_is_a_word(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    assert cortan.run("ask", "what", "is", "5", "-", "3").code == 0
    assert user_message(ollama_env) == "what is 5 - 3"


# -- failures: exit code, one sentence, partial answer kept -------------------------------


def test_connection_refused(cortan: type[CortanRunner]) -> None:
    result = cortan.run("ask", "hi", env={"OLLAMA_HOST": "http://127.0.0.1:9"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "cannot reach Ollama at http://127.0.0.1:9: is `ollama serve` running?" in result.stderr


def test_stall_before_first_byte_times_out(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(first_byte_delay=30))
    result = cortan.run("ask", "hi", env={"CORTAN_TIMEOUTS__FIRST_TOKEN": "0.5"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "first token" in result.stderr


def test_connection_closed_mid_stream_keeps_partial(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(
        Reply(pieces=["partial ", "answer", "never"], fault="close_mid_stream", fault_after=2)
    )
    result = cortan.run("ask", "hi")
    assert result.code == 1
    assert result.stdout == "partial answer\n"
    assert_one_sentence(result.stderr)
    assert "closed the connection" in result.stderr


def test_malformed_line(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["ok ", "then"], fault="malformed_line", fault_after=1))
    result = cortan.run("ask", "hi")
    assert result.code == 1
    assert result.stdout.startswith("ok ")
    assert_one_sentence(result.stderr)
    assert "cannot parse" in result.stderr


def test_error_line_mid_stream(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=["so far"], fault="error_in_stream", error="out of memory"))
    result = cortan.run("ask", "hi")
    assert result.code == 1
    assert result.stdout == "so far\n"
    assert "out of memory" in result.stderr


def test_unknown_ollama_model(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "-m", "ollama:mistral", "hi")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "run `cortan models pull mistral`" in result.stderr


def test_an_unknown_model_of_a_named_ollama_provider_names_it_in_the_pull(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path
) -> None:
    """The hint was `ollama pull mistral`: on this machine, that pulls onto the local
    server (or fails with no ollama CLI), not onto the host the provider points at."""
    config_file.write_text(f'[providers.gpu]\nkind = "ollama"\nhosts = ["{ollama_env.url}"]\n')
    result = cortan.run("ask", "-m", "gpu:mistral", "hi")
    assert result.code == 1
    assert "run `cortan models pull gpu:mistral`" in result.stderr


def test_the_pull_hint_quotes_a_name_a_shell_would_run_part_of(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    """The hint is a command to paste: `cortan models pull foo;touch x` ran touch."""
    result = cortan.run("ask", "-m", "ollama:foo;touch x", "hi")
    assert result.code == 1
    assert "run `cortan models pull 'foo;touch x'` (or `ollama pull 'foo;touch x'`" in (
        result.stderr
    )


def test_unknown_openai_model(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    result = cortan.run("ask", "-m", "openai:gpt-9", "hi")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "'gpt-9' does not exist" in result.stderr


def test_wrong_api_key(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    result = cortan.run("ask", "hi", env={"OPENAI_API_KEY": "sk-wrong"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "rejected the API key: check OPENAI_API_KEY" in result.stderr
    assert "sk-wrong" not in result.stderr


def test_base_url_missing_v1(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    result = cortan.run("ask", "hi", env={"OPENAI_BASE_URL": openai_env.url})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "end in /v1" in result.stderr


def test_base_url_with_another_version_gets_a_sane_hint(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    """A base URL ending in /v2 used to get the suggestion `…/v2/v1` (issue 21)."""
    result = cortan.run("ask", "hi", env={"OPENAI_BASE_URL": openai_env.url + "/v2"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "/v2/v1" not in result.stderr
    assert f"{openai_env.url}/v1" in result.stderr


def test_an_ollama_404_without_a_reason_still_says_something(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(status=404, body=b""))  # a proxy in front, say: no body at all
    result = cortan.run("ask", "hi")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    line = result.stderr.strip()
    assert not line.endswith(":"), line
    assert "404" in line and "no reason given" in line


def test_rate_limited(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    openai_env.default = Reply(status=429, headers={"retry-after": "0"})
    result = cortan.run("ask", "--no-stdin", "hi", env={"CORTAN_RETRY__ATTEMPTS": "1"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "rate limiting" in result.stderr


def test_server_error(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    openai_env.default = Reply(status=500, error="boom")
    result = cortan.run("ask", "hi", env={"CORTAN_RETRY__ATTEMPTS": "1"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "HTTP 500" in result.stderr


def test_openai_needs_a_key(cortan: type[CortanRunner]) -> None:
    result = cortan.run("ask", "-m", "openai:gpt-4o-mini", "hi")
    assert result.code == 1
    assert "OpenAI needs an API key: set OPENAI_API_KEY" in result.stderr
    assert "or run `cortan keys set openai`" in result.stderr


def test_ctrl_c_mid_answer_flushes_partial_and_exits_130(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["so far", "x"], fault="never_end", fault_after=1))
    proc = cortan.popen("ask", "--no-stdin", "hi")
    assert proc.stdout is not None
    assert proc.stdout.read(6) == b"so far"
    result = cortan.interrupt(proc)
    assert result.code == 130
    assert result.stdout == "\n"  # the rest of the partial answer: its line is ended
    assert "Traceback" not in result.stderr
    assert ollama_env.wait_disconnect(5)


def test_json_reports_failure(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "--json", "-m", "ollama:nope", "hi")
    assert result.code == 1
    report = json.loads(result.stdout)
    assert report["error"]["kind"] == "model_not_found"
    assert report["finish_reason"] == "error"


@pytest.mark.parametrize(
    ("args", "code", "kind", "fragment"),
    [
        (["-a", "missing.png"], 1, "input", "cannot attach missing.png: there is no such file"),
        (["-f", "missing.txt"], 1, "input", "cannot attach missing.txt"),
        (["--think", "extreme"], 2, "usage", "thinking is one of"),
        (["--session", "99"], 2, "usage", "no stored conversation #99"),
        (["-c"], 2, "usage", "no earlier conversation"),
        (["--fork"], 2, "usage", "--fork copies a stored conversation"),
        (["-o", "temprature=1"], 2, "usage", "did you mean temperature?"),
    ],
)
def test_json_reports_a_request_refused_before_it_was_sent(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    args: list[str],
    code: int,
    kind: str,
    fragment: str,
) -> None:
    """docs/scripting.md: on failure --json still prints one object. A missing -a file,
    a bad flag value or nothing to continue printed nothing, and `jq` read no input."""
    result = cortan.run("ask", "--json", *args, "hi")
    assert result.code == code, result.stderr
    report = json.loads(result.stdout)
    assert report["finish_reason"] == "error" and report["error"]["kind"] == kind
    assert fragment in report["error"]["message"]
    assert report["conversation_id"] is None and report["content"] == ""
    assert_one_sentence(result.stderr)
    assert ollama_env.chat_requests == []


# -- rejected input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "the prompt is empty"),
        (b"   \n\t\n", "the prompt is empty"),
        (b"\x00\x01binary\x00", "binary data"),
        (b"caf\xe9 au lait", "not valid UTF-8"),
    ],
)
def test_bad_stdin_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, data: bytes, fragment: str
) -> None:
    result = cortan.run("ask", input=data)
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert fragment in result.stderr
    assert ollama_env.chat_requests == []


def test_oversized_stdin_is_refused_quickly(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "x", input=b"a" * 3_000_000)
    assert result.code == 1
    assert "larger than the 1 MiB limit" in result.stderr
    assert ollama_env.chat_requests == []


def test_utf16_with_bom_is_decoded(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    result = cortan.run("ask", "x", input="héllo".encode("utf-16"))
    assert result.code == 0, result.stderr
    assert "héllo" in user_message(ollama_env)


def test_control_characters_are_stripped(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    assert cortan.run("ask", "a\x1b[31mb\x07c").code == 0
    assert user_message(ollama_env) == "a[31mbc"


def _env(**values: str) -> dict[str, str]:
    import os

    return {**os.environ, **values}


def test_reader_leaving_stops_the_answer_quietly(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["first line\n", *["more "] * 100], delay=0.1))
    proc = cortan.popen("ask", "--no-stdin", "hi")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"first line\n"
    proc.stdout.close()  # like `| head -1` exiting; the next piece cannot be written
    assert proc.wait(timeout=8) == EXIT_READER_GONE  # long before the 10 s answer would end
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert "Traceback" not in err and "Broken pipe" not in err
    assert ollama_env.wait_disconnect(5)


def test_empty_model_option_is_a_usage_error_for_chat_too(cortan: type[CortanRunner]) -> None:
    result = cortan.run("chat", "-m", " ")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "option --model is empty" in result.stderr


def test_an_answer_stdout_cannot_take_fails_loudly_and_is_kept(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    """A view that cannot write fails the request: one sentence, exit 1, the answer stored."""
    from cortan.store import SessionStore

    ollama_env.queue(Reply(pieces=["caf", "é au lait"]))
    with open("/dev/full", "w") as full:  # every write: No space left on device
        done = subprocess.run(
            [*cortan_command(), "ask", "coffee?"],
            stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE, timeout=30, text=True,
        )  # fmt: skip
    assert done.returncode == 1
    assert_one_sentence(done.stderr)
    assert "could not show the answer: no space left on device\n" in done.stderr
    with SessionStore.open(isolated_env / "data") as store:
        (conversation,) = store.list_conversations()
        answer = store.messages(conversation.id)[-1]
    assert (answer.content, answer.status) == ("caf", "failed")


@pytest.mark.parametrize("encoding", ["ascii", "latin-1"])
def test_what_stdout_cannot_encode_is_shown_replaced(
    cortan: type[CortanRunner],
    ollama_env: FakeOllama,
    encoding: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ollama_env.queue(Reply(pieces=["café ", "→ ☕"]))
    monkeypatch.setenv("PYTHONIOENCODING", encoding)
    done = run_bytes(cortan, ["ask", "coffee?"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == "café → ☕\n".encode(encoding, "replace")


def test_lone_surrogates_never_reach_stdout_as_raw_bytes(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    body = (
        b'{"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z",'
        b' "message": {"role": "assistant", "content": "a\\udc9b2Jb\\ud800"}, "done": false}\n'
        b'{"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z",'
        b' "message": {"role": "assistant", "content": ""}, "done": true,'
        b' "done_reason": "stop", "eval_count": 1, "prompt_eval_count": 1}\n'
    )
    for flags in ([], ["--json"], ["--no-stream"]):
        ollama_env.queue(Reply(body=body))
        result = run_bytes(cortan, ["ask", *flags, "x"])
        assert result.returncode == 0, result.stderr
        assert b"\x9b" not in result.stdout and b"\xed" not in result.stdout
        if flags == ["--json"]:
            assert json.loads(result.stdout)["content"] == "a\ufffd2Jb\ufffd"
        else:
            assert "a\ufffd2Jb\ufffd" in result.stdout.decode()


def run_bytes(cortan: type[CortanRunner], args: list[str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*cortan_command(), *args], capture_output=True, stdin=subprocess.DEVNULL, timeout=30
    )


@pytest.mark.parametrize("args", [["ask", "hi"], ["ask", "--json", "hi"], ["sessions", "list"]])
def test_a_closed_stdout_is_one_sentence(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: list[str]
) -> None:
    done = subprocess.run(
        [*cortan_command(), *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, timeout=30,
        preexec_fn=lambda: os.close(1),
    )  # fmt: skip
    assert done.returncode == 1
    assert_one_sentence(done.stderr)
    assert "stdout is closed" in done.stderr


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_head_c_5_never_shows_a_traceback(
    cortan: type[CortanRunner], request: pytest.FixtureRequest, provider: str, tmp_path: Path
) -> None:
    """`cortan ask … | head -c 5`, again and again: no traceback, the documented code.

    Issue 21 saw a 60-line CancelledError traceback in 1 run of 8 up to 4 of 5, while the
    OpenAI stream was being closed: the writer cancelled the request's task. A closed
    stdout is now an essential observer's failure; this holds it to that, on both SDKs,
    with a long answer still streaming when `head` leaves.
    """
    server: FakeOllama | FakeOpenAI = request.getfixturevalue(f"{provider}_env")
    server.default = Reply(pieces=[f"word{i} " for i in range(2000)], delay=0.002)
    command = " ".join(cortan_command())
    err = tmp_path / "err"
    script = (
        f'{command} ask --no-stdin -m {provider}:{server.models[0]} "tell me" 2>"{err}"'
        ' | head -c 5 >/dev/null; echo "${PIPESTATUS[0]}"'
    )
    for run in range(8):
        done = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, timeout=20, check=False
        )
        stderr = err.read_text()
        assert (done.stdout.strip(), stderr) == (str(EXIT_READER_GONE), ""), f"run {run}"
    assert server.wait_disconnect(5, count=8)  # each answer stopped, not read to its end


def test_a_misspelt_provider_is_a_usage_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "-m", "opneai:gpt-4o", "hi")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert "did you mean 'openai:gpt-4o'?" in result.stderr
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_keep_the_partial_answer(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path, signum: int, code: int
) -> None:
    """A service manager's stop or a closed terminal ends the answer as Ctrl-C does (issue 15)."""
    from cortan.store import SessionStore

    ollama_env.queue(Reply(pieces=["first line\n", *["more "] * 200], delay=0.05))
    proc = cortan.popen("ask", "--no-stdin", "hi")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline() == b"first line\n"
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == code
    assert b"Traceback" not in err
    with SessionStore.open(isolated_env / "data") as store:
        (conversation,) = store.list_conversations()
        answer = store.messages(conversation.id)[-1]
    assert answer.status == "interrupted"
    assert answer.content.startswith("first line\n")
    assert ollama_env.wait_disconnect(5)
