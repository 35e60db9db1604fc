"""Generation options that reach every server: one parser, the length field, refusals.

The real ``cortan`` against the loopback OpenAI server, which refuses body fields as
OpenAI's reasoning models (``unsupported_parameter``, ``unsupported_value``) and
pydantic-built servers (``extra_forbidden``) do; each test checks what the server
received, the answer, and what the user was told.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cortan.providers.fields import Fields
from tests.conftest import CortanRunner, assert_one_sentence
from tests.servers import FakeOllama, FakeOpenAI


def sent(server: FakeOpenAI | FakeOllama) -> list[dict[str, Any]]:
    bodies = [r.json for r in server.chat_requests]
    assert all(isinstance(b, dict) for b in bodies)
    return bodies


def items(tmp_path: Path, *lines: dict[str, Any]) -> str:
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return str(path)


# -- the answer's length: max_tokens or max_completion_tokens ----------------------------


def test_a_refused_max_tokens_is_sent_again_as_max_completion_tokens(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    openai_env.refuse_fields = {"max_tokens": "unsupported_parameter"}
    result = cortan.run("ask", "--max-tokens", "50", "hi")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    first, second = sent(openai_env)
    assert first["max_tokens"] == 50 and "max_completion_tokens" not in first
    assert second["max_completion_tokens"] == 50 and "max_tokens" not in second
    assert "cortan:" not in result.stderr  # nothing was lost: nothing to tell


def test_a_server_that_names_the_field_only_in_its_message(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    openai_env.refuse_fields = {"max_tokens": "extra_forbidden"}  # no `param`
    result = cortan.run("ask", "--max-tokens", "9", "hi")
    assert result.code == 0, result.stderr
    assert sent(openai_env)[-1]["max_completion_tokens"] == 9


def test_the_name_that_worked_is_kept_for_the_process(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    openai_env.refuse_fields = {"max_tokens": "unsupported_parameter"}
    source = items(tmp_path, {"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"})
    result = cortan.run("batch", source, "-j", "1", "--option", "max_tokens=20")
    assert result.code == 0, result.stderr
    fields = [[k for k in body if "tokens" in k] for body in sent(openai_env)]
    assert fields == [["max_tokens"], *[["max_completion_tokens"]] * 3]


def test_a_pinned_field_is_sent_and_never_swapped(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, config_file: Path
) -> None:
    config_file.write_text('[providers.openai]\nmax_tokens_field = "max_completion_tokens"\n')
    assert cortan.run("ask", "--max-tokens", "5", "hi").code == 0
    assert sent(openai_env)[-1]["max_completion_tokens"] == 5
    openai_env.refuse_fields = {"max_completion_tokens": "unsupported_parameter"}
    result = cortan.run("ask", "--max-tokens", "5", "hi")
    assert result.code == 1
    assert_one_sentence(result.stderr)
    assert "max_completion_tokens" in result.stderr
    assert len(sent(openai_env)) == 2  # the refusal was not answered by a guess


def test_a_pin_on_an_ollama_provider_is_a_config_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama, config_file: Path
) -> None:
    config_file.write_text('[providers.ollama]\nmax_tokens_field = "max_tokens"\n')
    result = cortan.run("ask", "hi")
    assert result.code == 2, result.stderr
    assert "max_tokens_field is for OpenAI-compatible providers" in result.stderr


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("https://api.openai.com/v1", "max_completion_tokens"),
        ("http://127.0.0.1:8080/v1", "max_tokens"),  # llama.cpp, vLLM, LM Studio
        ("https://api.openai.com.example.net/v1", "max_tokens"),
    ],
)
def test_openai_itself_gets_max_completion_tokens(url: str, field: str) -> None:
    body, notes = Fields(url).shape("o3", {"max_tokens": 7}, ["max_tokens"])
    assert (body, notes) == ({field: 7}, [])


def test_a_refused_range_is_not_taken_for_a_refused_field() -> None:
    fields, body = Fields("https://api.openai.com/v1"), {"temperature": 5.0}
    error = {"param": "temperature", "code": "decimal_above_max_value"}
    text = "Invalid 'temperature': decimal above maximum value. Expected a value <= 2."
    assert fields.refused("gpt-4o", body, set(), error, text) is None
    assert body == {"temperature": 5.0}


# -- sampling options a model refuses ------------------------------------------------------


def test_a_refused_temperature_is_dropped_and_the_user_told(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    openai_env.refuse_fields = {"temperature": "unsupported_value"}
    result = cortan.run("ask", "-o", "temperature=0.2", "-o", "seed=3", "hi")
    assert result.code == 0, result.stderr
    assert result.stdout == "Hello, world!\n"
    assert "refused temperature (0.2): asked again without it" in result.stderr
    assert "cortan:" in result.stderr
    first, second = sent(openai_env)
    assert first["temperature"] == 0.2
    assert "temperature" not in second and second["seed"] == 3


def test_a_refused_option_stays_out_and_is_still_told(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    openai_env.refuse_fields = {"top_k": "extra_forbidden"}  # an extra_body option
    source = items(tmp_path, {"prompt": "a"}, {"prompt": "b"})
    result = cortan.run("batch", source, "-j", "1", "--option", "top_k=4")
    assert result.code == 0, result.stderr
    assert ["top_k" in body for body in sent(openai_env)] == [True, False, False]
    assert "refused top_k (4)" in result.stderr


@pytest.mark.parametrize("given", ["num_ctx=8192", "use_mmap=false"])  # a number, a switch
def test_an_option_the_api_has_no_name_for_is_told_not_dropped(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, given: str
) -> None:
    name = given.split("=")[0]
    result = cortan.run("ask", "-o", given, "hi")
    assert result.code == 0, result.stderr
    assert f"has no option {name}: not sent" in result.stderr
    assert name not in sent(openai_env)[-1]


# -- one parser: ask, chat and batch take the same names -----------------------------------


def test_ollama_names_are_cortan_options_on_every_provider(
    cortan: type[CortanRunner], openai_env: FakeOpenAI
) -> None:
    result = cortan.run("ask", "-o", "num_predict=12", "hi")
    assert result.code == 0, result.stderr
    assert sent(openai_env)[-1]["max_tokens"] == 12


def test_batch_options_are_checked_and_mapped_as_asks_are(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    source = items(tmp_path, {"prompt": "a"}, {"prompt": "b", "options": {"num_predict": 7}})
    result = cortan.run("batch", source, "-j", "1", "--option", "num_predict=200")
    assert result.code == 0, result.stderr
    assert [body.get("max_tokens") for body in sent(openai_env)] == [200, 7]
    assert not any("num_predict" in body for body in sent(openai_env))


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("bogus=1", "unknown option 'bogus'"),
        ("num_predcit=5", "(did you mean num_predict?)"),
        ("top_k=2.5", "option top_k needs a whole number"),
    ],
)
def test_batch_refuses_what_ask_refuses(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path, option: str, words: str
) -> None:
    result = cortan.run("batch", items(tmp_path, {"prompt": "a"}), "--option", option)
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert words in result.stderr
    assert sent(openai_env) == []


def test_a_lines_unknown_option_fails_that_item(
    cortan: type[CortanRunner], openai_env: FakeOpenAI, tmp_path: Path
) -> None:
    source = items(tmp_path, {"prompt": "a", "options": {"tempreature": 1}}, {"prompt": "b"})
    result = cortan.run("batch", source)
    assert result.code == 4, result.stderr
    assert "line 1: unknown option 'tempreature' (did you mean temperature?)" in result.stderr
    assert len(sent(openai_env)) == 1


def test_keep_alive_goes_beside_ollamas_options_and_is_told_on_openai(
    cortan: type[CortanRunner], ollama_env: FakeOllama, openai_env: FakeOpenAI
) -> None:
    assert cortan.run("ask", "-m", "ollama:llama3.2:latest", "-o", "keep_alive=0", "hi").code == 0
    body = sent(ollama_env)[-1]
    assert body["keep_alive"] == 0 and "keep_alive" not in body.get("options", {})
    result = cortan.run("ask", "-o", "keep_alive=5m", "hi")  # the default: openai
    assert result.code == 0, result.stderr
    assert "has no option keep_alive: not sent" in result.stderr


# -- Ollama's switches: true or false -------------------------------------------------------


def test_ollamas_switches_reach_ollama_as_json_booleans(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run(
        "ask", "-m", "ollama:llama3.2:latest",
        "-o", "use_mmap=false", "-o", "numa=yes", "-o", "use_mlock=0", "-o", "low_vram=TRUE",
        "hi",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    options = sent(ollama_env)[-1]["options"]
    assert (options["use_mmap"], options["numa"], options["use_mlock"]) == (False, True, False)
    assert options["low_vram"] is True


def test_a_switch_that_is_neither_true_nor_false_is_refused(
    cortan: type[CortanRunner], ollama_env: FakeOllama
) -> None:
    result = cortan.run("ask", "-o", "vocab_only=maybe", "hi")
    assert result.code == 2, result.stderr
    assert_one_sentence(result.stderr)
    assert "option vocab_only needs true or false, not 'maybe'" in result.stderr
    assert sent(ollama_env) == []
