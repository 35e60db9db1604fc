"""Invisible characters are shown where a person must trust what they read.

A model, session or provider name with a zero-width space, a word joiner, a BOM, a soft
hyphen, a TAG character or a line separator in it reads as another name; a config value
with U+009B or U+202E drives or reorders the terminal. Tables, errors, ``models show``,
``sessions``, ``logs`` and ``config show`` print each as ``<U+XXXX>`` (controls as their
control pictures), through ``cortan.core.text.make_visible``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cortan.core.text import make_visible
from tests.conftest import CortanRunner
from tests.servers import FakeOllama

INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # BOM
    "\u00ad",  # soft hyphen
    "\U000e0041",  # TAG LATIN CAPITAL LETTER A
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\u009b",  # C1 CSI
    "\u202e",  # right-to-left override
]
IDS = [f"U+{ord(c):04X}" for c in INVISIBLE]


def shown(char: str) -> str:
    return f"<U+{ord(char):04X}>"


def assert_clean(text: str) -> None:
    assert not any(c in text for c in INVISIBLE), ascii(text)


@pytest.mark.parametrize("char", INVISIBLE, ids=IDS)
def test_model_names_in_the_listing(
    cortan: type[CortanRunner], ollama_env: FakeOllama, char: str
) -> None:
    ollama_env.models = [f"llama{char}3:latest", "plain:latest"]
    result = cortan.run("models", "-p", "ollama")
    assert result.code == 0, result.stderr
    assert f"llama{shown(char)}3:latest" in result.stdout
    assert_clean(result.stdout)


@pytest.mark.parametrize("char", INVISIBLE, ids=IDS)
def test_model_name_in_an_error(
    cortan: type[CortanRunner], ollama_env: FakeOllama, char: str
) -> None:
    result = cortan.run("ask", "--no-stdin", "-m", f"ollama:llama{char}3", "x")
    assert result.code == 1
    assert f"llama{shown(char)}3" in result.stderr
    assert_clean(result.stderr)


def test_model_show_and_provider_names(
    cortan: type[CortanRunner], ollama: FakeOllama, config_file: Path
) -> None:
    ollama.models = ["co\u200bder:latest"]
    config_file.write_text(
        f'[providers."wo\u2060rk"]\nkind = "ollama"\nhosts = ["{ollama.url}"]\n'
        f'[aliases]\n"fa\u00adst" = "wo\u2060rk:co\u200bder:latest"\n'
    )
    listing = cortan.run("models", "-p", "wo\u2060rk")
    assert listing.code == 0, listing.stderr
    assert "wo<U+2060>rk" in listing.stdout and "co<U+200B>der:latest" in listing.stdout
    assert "fa<U+00AD>st" in listing.stdout
    assert_clean(listing.stdout)
    show = cortan.run("models", "show", "wo\u2060rk:co\u200bder:latest")
    assert show.code == 0, show.stderr
    assert "co<U+200B>der" in show.stdout
    assert_clean(show.stdout)


def test_config_show_prints_no_raw_controls(cortan: type[CortanRunner], config_file: Path) -> None:
    config_file.write_text(
        'system = "be \u009b2J brief\u202e and \u200bkind \U000e0041"\n'
        '[aliases]\n"f\ufeffast" = "ollama:llama3.2"\n'
    )
    result = cortan.run("config", "show")
    assert result.code == 0, result.stderr
    assert "be <U+009B>2J brief<U+202E> and <U+200B>kind <U+E0041>" in result.stdout
    assert '"f\\ufeffast" = ' in result.stdout  # a quoted key, escaped as TOML allows
    assert_clean(result.stdout)
    as_json = cortan.run("config", "show", "--json")  # exact for scripts, inert as \u escapes
    assert_clean(as_json.stdout)
    assert json.loads(as_json.stdout)["system"].startswith("be \u009b2J")


@pytest.mark.parametrize("char", INVISIBLE, ids=IDS)
def test_session_names_in_sessions_and_logs(
    cortan: type[CortanRunner], ollama_env: FakeOllama, char: str
) -> None:
    name = f"pro{char}ject"
    first = cortan.run("ask", "--no-stdin", "--session", name, "hello")
    if char == "\u009b":  # a control is refused as a name at once
        assert (first.code, first.stderr.count("printable characters")) == (2, 1)
        return
    assert first.code == 0, first.stderr
    for args in (["sessions", "list"], ["logs"], ["sessions", "show", name]):
        result = cortan.run(*args)
        assert result.code == 0, (args, result.stderr)
        assert f"pro{shown(char)}ject" in result.stdout, (args, result.stdout)
        assert_clean(result.stdout)


def test_make_visible_is_what_tables_use() -> None:
    for char in INVISIBLE:
        assert make_visible(f"a{char}b") == f"a{shown(char)}b"
