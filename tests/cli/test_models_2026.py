"""``cortan ask`` with what 2026's models need: thinking, schemas, options, images.

Each test runs the real cortan as a user would, against the loopback servers, and
checks stdout, stderr, the exit code and what the server received.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from cortan.store import SessionStore
from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI, Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)  # recognised by its bytes


def body(server: FakeOllama | FakeOpenAI, index: int = -1) -> dict[str, Any]:
    sent = server.chat_requests[index].json
    assert isinstance(sent, dict)
    return sent


# -- thinking --------------------------------------------------------------------------


def test_piped_answer_carries_no_thinking(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(thinking=["secret ", "reasoning"], pieces=["4"]))
    result = cortan.run("ask", "--think", "on", "2+2?")
    assert result.code == 0, result.stderr
    assert result.stdout == "4\n"
    assert "reasoning" not in result.stdout + result.stderr  # stderr is no terminal either
    assert body(ollama_env)["think"] is True


def test_json_carries_thinking_apart(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(thinking=["add ", "them"], pieces=["4"]))
    result = cortan.run("ask", "--json", "--think", "high", "2+2?")
    report = json.loads(result.stdout)
    assert (report["content"], report["thinking"]) == ("4", "add them")
    assert report["timings"]["thinking_s"] >= 0
    assert body(ollama_env)["think"] == "high"


def test_thinking_is_stored_apart(
    cortan: type[CortanRunner], ollama_env: FakeOllama, isolated_env: Path
) -> None:
    ollama_env.queue(Reply(pieces=["<think>mull</think>", "4"]))
    assert cortan.run("ask", "2+2?").stdout == "4\n"
    with SessionStore.open(isolated_env / "data") as store:
        (conversation,) = store.list_conversations()
        answer = store.messages(conversation.id)[-1]
    assert (answer.content, answer.thinking) == ("4", "mull")
    shown = cortan.run("sessions", "show", f"#{conversation.id}")
    assert "(thinking) mull" in shown.stdout


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--think", "hard"], "thinking is one of on, off, low, medium, high, not 'hard'"),
        (["--think", "on", "--no-think"], "use either --think or --no-think, not both"),
    ],
)
def test_bad_thinking_flags_are_usage_errors(
    cortan: type[CortanRunner], ollama_env: FakeOllama, args: list[str], sentence: str
) -> None:
    result = cortan.run("ask", *args, "hi")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert ollama_env.chat_requests == []


# -- structured output -----------------------------------------------------------------


def test_schema_sends_format_and_prints_one_document(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=['{"name": "Ada",', ' "age": 36}']))
    result = cortan.run("ask", "--schema", "name str, age int", "who?")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Ada", "age": 36}
    sent = body(ollama_env)["format"]
    assert sent["properties"] == {"name": {"type": "string"}, "age": {"type": "integer"}}
    assert sent["required"] == ["name", "age"]


def test_schema_on_openai_is_a_response_format(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    openai_env.queue(Reply(pieces=['```json\n{"ok": true}\n```']))  # fenced: still parsed
    result = cortan.run("ask", "--json", "--schema", str(path), "ok?")
    report = json.loads(result.stdout)
    assert result.code == 0, result.stderr
    assert report["data"] == {"ok": True}
    sent = body(openai_env)["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def test_a_wrong_answer_gets_one_repair(cortan: type[CortanRunner], ollama_env: FakeOllama) -> None:
    ollama_env.queue(Reply(pieces=['{"name": 7}']), Reply(pieces=['{"name": "Ada"}']))
    result = cortan.run("ask", "--schema", "name str", "who?")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"name": "Ada"}
    assert "does not fit the schema at name" in result.stderr
    repair = body(ollama_env)["messages"]
    assert [m["role"] for m in repair[-3:]] == ["user", "assistant", "user"]
    assert repair[-2]["content"] == '{"name": 7}'


def test_an_answer_that_never_fits_exits_3_with_the_raw_text_on_stderr(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["no JSON here"]), Reply(pieces=["still none"]))
    result = cortan.run("ask", "--schema", "name str", "who?")
    assert result.code == 3
    assert result.stdout == ""
    assert "still none" in result.stderr
    assert_one_sentence(result.stderr)
    assert "even after one repair" in result.stderr
    assert len(ollama_env.chat_requests) == 2


@pytest.mark.parametrize(
    ("schema", "sentence"),
    [
        ("name strr", "unknown type 'strr'"),
        ('{"type": 5}', "the schema is not a valid JSON Schema"),
        ("{nope", "the schema is not valid JSON"),
        ("missing.json", "cannot read the schema file 'missing.json': there is no such file\n"),
        ("", "--schema is empty"),
    ],
)
def test_bad_schemas_are_usage_errors(
    cortan: type[CortanRunner], ollama_env: FakeOllama, schema: str, sentence: str
) -> None:
    result = cortan.run("ask", "--schema", schema, "hi")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert ollama_env.chat_requests == []


@pytest.mark.parametrize(
    ("content", "sentence"),
    [
        ('{"$ref": "URL/schema.json"}', "points outside it, and cortan fetches no schema"),
        ('{"$ref": "file:///etc/hostname"}', "points outside it, and cortan fetches no schema"),
        ('{"$dynamicRef": "URL/d"}', "$dynamicRef 'http"),
        # Found only once the answer came (exit 3): the model was asked for nothing.
        ('{"$ref": "#/nowhere"}', "the schema's $ref '#/nowhere' leads nowhere in it"),
        ('{"$schema": 5}', "the schema's $schema must be a string"),
        ('{"$ref": "#"}', "the schema's $ref '#' leads back to itself"),
        (
            '{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},'
            ' "$ref": "#/$defs/a"}',
            "the schema's $ref '#/$defs/a' leads back to itself",
        ),
        ('{"items": ' * 3000 + "{}" + "}" * 3000, "the schema nests objects or arrays too deeply"),
        ('{"items": ' * 400 + "{}" + "}" * 400, "the schema nests objects or arrays too deeply"),
        ('{"description": "' + "x" * (1 << 20) + '"}', "it is larger than 1 MiB"),
        ("/dev/zero", "it is not a regular file"),
        ("fifo", "it is not a regular file"),
    ],
)
def test_hostile_schema_files_are_refused_before_asking(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path, content: str, sentence: str
) -> None:
    # Before: jsonschema fetched the URL (no timeout) or read the file while checking
    # the answer, deep nesting was an internal error, /dev/zero was read forever.
    path = tmp_path / "schema.json"
    if content == "fifo":
        os.mkfifo(path)
    elif content.startswith("/dev/"):
        path.symlink_to(content)
    else:
        path.write_text(content.replace("URL", ollama_env.url))
    result = cortan.run("ask", "--schema", str(path), "hi", timeout=20)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert ollama_env.chat_requests == []
    assert all("schema.json" not in request.path for request in ollama_env.requests)


@pytest.mark.parametrize(
    ("schema", "sentence"),
    [
        # (a loop of bare $refs, '{"$ref": "#"}', is refused before asking: below)
        ('{"$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}',
         "its references loop"),
    ],
)  # fmt: skip
def test_a_schema_that_cannot_be_followed_keeps_the_answer(
    cortan: type[CortanRunner], ollama_env: FakeOllama, schema: str, sentence: str
) -> None:
    # Before: an internal error (RecursionError, Unresolvable) and the answer lost.
    ollama_env.queue(Reply(pieces=['{"a": 1}']))
    result = cortan.run("ask", "--schema", schema, "hi")
    assert result.code == 3, result.stderr
    assert result.stdout == ""
    assert '{"a": 1}' in result.stderr
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr
    assert len(ollama_env.chat_requests) == 1  # no repair: the model cannot mend the schema


def test_a_schema_file_with_a_byte_order_mark_is_read(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # Before: the mark hid the "{", and the file was read as the short form.
    path = tmp_path / "schema.json"
    path.write_bytes(b'\xef\xbb\xbf{"type": "object"}')
    ollama_env.queue(Reply(pieces=['{"a": 1}']))
    result = cortan.run("ask", "--schema", str(path), "hi")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"a": 1}


def test_an_answer_nested_past_the_parser_gets_its_repair(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    ollama_env.queue(Reply(pieces=["[" * 100_000 + "]" * 100_000]), Reply(pieces=['{"n": "x"}']))
    result = cortan.run("ask", "--schema", "n str", "hi")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"n": "x"}
    assert "the answer nests objects or arrays too deeply" in result.stderr


# -- options -----------------------------------------------------------------------------


def test_options_reach_ollama_in_its_names(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    args = ["-o", "temperature=0.2", "-o", "stop=END,STOP", "--max-tokens", "64", "-o", "seed=7"]
    assert cortan.run("ask", *args, "hi").code == 0
    options = body(ollama_env)["options"]
    assert options["temperature"] == 0.2
    assert options["num_predict"] == 64
    assert (options["seed"], options["stop"]) == (7, ["END", "STOP"])


def test_options_reach_openai_with_extras_in_the_body(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    assert cortan.run("ask", "-o", "temperature=0.5", "-o", "top_k=20", "hi").code == 0
    sent = body(openai_env)
    assert (sent["temperature"], sent["top_k"]) == (0.5, 20)


@pytest.mark.parametrize(
    ("option", "sentence"),
    [
        ("temprature=1", "unknown option 'temprature' (did you mean temperature?)"),
        ("temperature=hot", "option temperature needs a finite number, not 'hot'"),
        ("temperature=NaN", "option temperature needs a finite number, not 'NaN'"),  # bad JSON
        ("temperature=1e999", "option temperature needs a finite number, not '1e999'"),
        ("top_k=2.5", "option top_k needs a whole number, not '2.5'"),
        ("temperature", "is not key=value"),
    ],
)
def test_bad_options_are_usage_errors(
    cortan: type[CortanRunner], ollama_env: FakeOllama, option: str, sentence: str
) -> None:
    result = cortan.run("ask", "-o", option, "hi")
    assert result.code == 2
    assert_one_sentence(result.stderr)
    assert sentence in result.stderr


# -- images ------------------------------------------------------------------------------


def test_an_image_reaches_a_vision_model_and_stays_in_the_conversation(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    ollama_env.capabilities["llama3.2:latest"] = ["completion", "vision"]
    photo = tmp_path / "photo.txt"  # the name says text; the bytes say PNG
    photo.write_bytes(PNG)
    assert cortan.run("ask", "-a", str(photo), "what is this?").code == 0
    user = body(ollama_env)["messages"][-1]
    assert user["images"] == [base64.b64encode(PNG).decode()]
    photo.unlink()  # the file is gone; the conversation keeps the image
    assert cortan.run("ask", "-c", "and the colour?").code == 0
    first_turn = body(ollama_env)["messages"][0]
    assert first_turn["images"] == [base64.b64encode(PNG).decode()]


def test_an_image_on_stdin_is_an_image(cortan: type[CortanRunner], openai_env: FakeOpenAI) -> None:
    result = cortan.run(
        "ask", "-m", "openai:gpt-4o", "describe", input=PNG, env={"CORTAN_CAPABILITIES": "{}"}
    )
    assert result.code == 0, result.stderr
    content = body(openai_env)["messages"][-1]["content"]
    assert content[0] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert content[-1] == {"type": "text", "text": "describe"}


def test_a_model_that_cannot_see_is_refused_before_sending(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    photo = tmp_path / "cat.png"
    photo.write_bytes(PNG)
    result = cortan.run("ask", "-a", str(photo), "what is this?")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "cannot see images (its server lists: completion, tools, thinking)" in result.stderr
    assert ollama_env.chat_requests == []


def test_an_image_over_its_limit_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    photo = tmp_path / "big.png"
    photo.write_bytes(PNG + bytes(2048))
    result = cortan.run("ask", "-a", str(photo), "hi", env={"CORTAN_MAX_IMAGE_BYTES": "1024"})
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "the image is over the 1 KiB limit (setting max_image_bytes)" in result.stderr


def test_an_image_past_both_limits_names_the_image_limit(
    cortan: type[CortanRunner], ollama_env: FakeOllama, tmp_path: Path
) -> None:
    # Before: "it is 25 MiB, over the 1 MiB limit (setting max_input_bytes)", the text
    # limit, which raising would not have let the image through.
    photo = tmp_path / "big.png"
    with photo.open("wb") as file:
        file.write(PNG)
        file.truncate(25 << 20)
    result = cortan.run("ask", "-a", str(photo), "hi")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "the image is over the 20 MiB limit (setting max_image_bytes)" in result.stderr
