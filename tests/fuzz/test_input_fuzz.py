"""The input side under arbitrary data: the guard, the secret scanner, the config loader.

Each either accepts its input, normalised, or refuses it with cortan's own error (one
sentence); no other exception ever escapes, whatever the bytes.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cortan.config.load import load_settings
from cortan.core.errors import ConfigError, InputError
from cortan.core.requests import Attachment, ChatRequest
from cortan.engine.guard import Guard
from cortan.engine.secrets import redact, scan
from tests.fuzz.profiles import examples
from tests.security.test_secrets import SECRETS

CONTROLS = frozenset({chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} - {"\n", "\t"})

# -- the validator -----------------------------------------------------------------------------

BOMS = st.sampled_from(
    [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE]
)
ENCODED = st.builds(
    lambda text, encoding: text.encode(encoding, "replace"),
    st.text(),
    st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"]),
)
DATA = st.one_of(st.binary(max_size=300), st.builds(bytes.__add__, BOMS, st.binary(max_size=64)))
PROMPT = st.one_of(st.text(), st.text(st.characters(codec=None, categories=["Cs", "Cc", "Lo"])))


@examples(300)
@given(
    prompt=PROMPT,
    data=st.lists(st.one_of(DATA, ENCODED), max_size=3),
    system=st.none() | PROMPT,
    remote=st.booleans(),
    limit=st.integers(1, 2000),
)
def test_validator_accepts_clean_text_or_refuses(
    prompt: str, data: list[bytes], system: str | None, remote: bool, limit: int
) -> None:
    validator = Guard(max_bytes=limit, find_remote=(lambda e: "work") if remote else None)
    attachments = tuple(Attachment(f"File f{i}.txt", d) for i, d in enumerate(data))
    try:
        validated = validator.check(ChatRequest(1, prompt, attachments, system=system))
    except InputError as exc:
        refusal = str(exc)
        assert refusal and "\n" not in refusal  # one sentence
        return
    for text in [validated.prompt, *(a.text for a in validated.attachments)]:
        assert not CONTROLS & set(text)
        text.encode("utf-8")  # no lone surrogates get through


# -- the secret scanner -------------------------------------------------------------------------

AROUND = st.text(st.characters(codec="utf-8"), max_size=200)


@examples(200)
@given(text=st.one_of(st.text(), AROUND, st.binary().map(lambda b: b.decode("latin-1"))))
def test_scan_and_redact_take_any_text(text: str) -> None:
    for finding in scan(text, "stdin"):
        assert 1 <= finding.line <= text.count("\n") + 1
    redact(text)


@examples(200)
@given(before=AROUND, name=st.sampled_from(sorted(SECRETS)), after=AROUND)
def test_a_secret_is_found_whatever_surrounds_it(before: str, name: str, after: str) -> None:
    text = f"{before}\n{SECRETS[name]}\n{after}"
    line = before.count("\n") + 2
    assert line in {f.line for f in scan(text, "stdin")}
    assert SECRETS[name].splitlines()[0][-12:] not in redact(text) or "BEGIN" in SECRETS[name]


# -- the config loader ------------------------------------------------------------------------

KEYS = st.sampled_from(
    [
        "default_model",
        "system",
        "instruction_position",
        "max_input_bytes",
        "max_output_bytes",
        "stdin_timeout",
        "color",
        "code_theme",
        "fallback",
        "timeouts",
        "providers",
        "aliases",
        "retry",
        "breaker",
        "unknown_key",
    ]
)
SUBKEYS = st.sampled_from(
    ["connect", "first_token", "total", "kind", "hosts", "base_url", "local", "attempts", "x"]
)


def toml_float(value: float) -> str:
    if value != value:
        return "nan"
    return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, repr(value))


SCALARS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats().map(toml_float),
    st.sampled_from(["true", "false", '""', "[]", "{}", '"ollama"', '"openai"', '"http://[::1"']),
    st.text(max_size=20).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(['"http://127.0.0.1:1"', '"http://x:99999"', '["http://h"]', '"ftp://x"']),
)
LINE = st.one_of(
    st.builds(lambda k, v: f"{k} = {v}", KEYS, SCALARS),
    st.builds(lambda k: f"[{k}]", KEYS),
    st.builds(lambda k: f"[providers.{k}]", st.text(st.characters(codec="ascii"), max_size=5)),
    st.builds(lambda k, v: f"{k} = {v}", SUBKEYS, SCALARS),
    st.text(max_size=30),
)
TOML_ISH = st.lists(LINE, max_size=12).map("\n".join)
ENV = st.dictionaries(
    st.sampled_from(
        [
            "CORTAN_TIMEOUTS__CONNECT",
            "CORTAN_MAX_INPUT_BYTES",
            "CORTAN_PROVIDERS",
            "CORTAN_FALLBACK",
            "CORTAN_COLOR",
            "OLLAMA_HOST",
            "OPENAI_BASE_URL",
        ]
    ),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),
    max_size=2,
)


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def config_path(isolated_env: Path) -> Path:
    return isolated_env / "fuzz.toml"


@examples(300)
@given(text=TOML_ISH, env=ENV)
def test_config_loader_gives_settings_or_one_sentence(
    config_path: Path, text: str, env: dict[str, str]
) -> None:
    config_path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with environment(env):
        try:
            settings = load_settings(config_path)
        except ConfigError as exc:
            refusal = str(exc)
            assert refusal and "\n" not in refusal.strip()  # one sentence
            return
    for provider in settings.providers.values():  # usable as loaded: URLs parse
        provider.get_urls()
        provider.is_local()
