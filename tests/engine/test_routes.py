"""Names, aliases and fallback chains."""

from __future__ import annotations

from typing import Any

import pytest

from cortan.config.settings import Settings
from cortan.core.errors import UsageError
from cortan.engine.routes import Route, Router


def router(**values: Any) -> Router:
    providers = {"work": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}}
    return Router(Settings(providers=values.pop("providers", providers), **values))


def test_names_resolve_by_alias_provider_then_default_provider() -> None:
    r = router(aliases={"fast": "ollama:llama3.2", "smart": "work:gpt-4o"})
    assert r.resolve("fast") == Route("ollama", "llama3.2")
    assert r.resolve("smart") == Route("work", "gpt-4o")
    assert r.resolve("work:gpt-4o-mini") == Route("work", "gpt-4o-mini")
    assert r.resolve("llama3.2:latest") == Route("ollama", "llama3.2:latest")
    assert r.resolve(None) == Route("ollama", "llama3.2")


def test_alias_loop_is_one_sentence() -> None:
    with pytest.raises(UsageError, match="loop"):
        router(aliases={"a": "b", "b": "a"}).resolve("a")


def test_global_fallback_follows_any_name_and_skips_itself() -> None:
    r = router(fallback=["ollama:llama3.2", "openai:gpt-4o-mini"])
    assert [str(x) for x in r.get_chain(None)] == ["ollama:llama3.2", "openai:gpt-4o-mini"]
    assert [str(x) for x in r.get_chain("work:x")] == [
        "work:x",
        "ollama:llama3.2",
        "openai:gpt-4o-mini",
    ]


def test_per_name_fallbacks_replace_the_global_list() -> None:
    r = router(
        aliases={"fast": "ollama:llama3.2"},
        fallback=["openai:gpt-4o-mini"],
        fallbacks={"fast": ["work:small"], "work:big": ["fast"]},
    )
    assert [str(x) for x in r.get_chain("fast")] == ["ollama:llama3.2", "work:small"]
    assert [str(x) for x in r.get_chain("work:big")] == ["work:big", "ollama:llama3.2"]
    assert [str(x) for x in r.get_chain("ollama:llama3.2")] == [
        "ollama:llama3.2",
        "openai:gpt-4o-mini",
    ]


def test_no_fallback_is_the_name_alone() -> None:
    r = router(fallback=["openai:gpt-4o-mini"])
    assert r.get_chain("fast", fallback=False) == [Route("ollama", "fast")]


def test_bad_fallback_entry_names_itself() -> None:
    r = router(aliases={"a": "b", "b": "a"}, fallback=["a"])
    with pytest.raises(UsageError, match="fallback 'a'"):
        r.get_chain("ollama:x")


def test_a_remote_fallback_means_the_prompt_may_leave() -> None:
    r = router(fallback=["openai:gpt-4o-mini"])
    assert not r.leaves_machine("ollama:llama3.2", fallback=False)
    assert r.leaves_machine("ollama:llama3.2")
    assert not r.leaves_machine("work:x", fallback=False)  # a loopback base URL


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("opneai:gpt-4o", "openai:gpt-4o"),
        ("olama:llama3.2", "ollama:llama3.2"),
        ("Work:gpt-4o", "work:gpt-4o"),
        ("wrok:gpt-4o", "work:gpt-4o"),
    ],
)
def test_a_misspelt_provider_is_refused_with_the_name_meant(name: str, meant: str) -> None:
    """`opneai:gpt-4o` used to become the Ollama model `opneai:gpt-4o` (issue 21)."""
    with pytest.raises(UsageError) as caught:
        router().resolve(name)
    sentence = str(caught.value)
    assert f"did you mean {meant!r}?" in sentence
    assert "providers: ollama, openai, work" in sentence
    assert f"ollama:{name}" in sentence  # how to mean an Ollama model of that name after all


@pytest.mark.parametrize(
    "name", ["llama3.2:latest", "llama2:7b", "qwen2.5-coder:7b", "openchat:7b", "mistral"]
)
def test_ollama_names_with_a_tag_are_not_taken_for_providers(name: str) -> None:
    assert router().resolve(name) == Route("ollama", name)


def test_a_misspelt_provider_in_an_alias_or_fallback_is_refused_too() -> None:
    with pytest.raises(UsageError, match="did you mean 'openai:gpt-4o'"):
        router(aliases={"smart": "opnai:gpt-4o"}).resolve("smart")
    with pytest.raises(UsageError, match="fallback 'opneai:x'"):
        router(fallback=["opneai:x"]).get_chain("ollama:y")


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("opneai", "openai", True),
        ("olama", "ollama", True),
        ("ollamma", "ollama", True),
        ("openai", "openai", True),
        ("llava", "ollama", False),
        ("llama2", "ollama", False),
        ("openchat", "openai", False),
        ("oepnia", "openai", False),
        ("", "ollama", False),
    ],
)
def test_one_typo(a: str, b: str, close: bool) -> None:
    from cortan.engine.routes import is_one_typo

    assert is_one_typo(a, b) is close
    assert is_one_typo(b, a) is close
