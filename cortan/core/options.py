"""Generation options a user may set (``-o key=value``, roles, config): one list for all.

Layer: core. The names are cortan's own, the same for every provider; each
provider maps them to its wire (Ollama's ``options``, with ``max_tokens`` as
``num_predict``; the OpenAI-compatible body, where the extras that llama.cpp and
vLLM take go in ``extra_body``). A name not listed is refused with the list, so a
typo never silently does nothing.

The table says once where Ollama's name differs (:attr:`Option.ollama`): the
Ollama provider sends that name, and every parser (``ask``, ``chat``, ``/set``,
``batch``, the gateway) takes it as another spelling of cortan's, so
``num_predict=200`` is ``max_tokens=200`` everywhere instead of a key that one
provider sent and the other dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from cortan.core.errors import UsageError

#: The largest number an upstream (Go's int64, llama.cpp's) reads as one.
MAX_NUMBER = 2**63 - 1


def _number(value: str) -> float:
    """A float that JSON can carry: NaN, Infinity and 1e999 went out as invalid JSON
    and came back as the server's "reply cortan cannot parse"."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _stops(value: str) -> list[str]:
    return [part for part in value.split(",") if part] or [value]


#: A Go duration, as Ollama's ``keep_alive`` takes one: "5m", "1h30m", "-1s".
DURATION = re.compile(r"-?(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")


def _duration(value: str) -> float | str:
    """``keep_alive``: seconds (-1 keeps the model loaded, 0 unloads it), or "5m"."""
    if DURATION.fullmatch(value):
        return value
    return _number(value)


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _boolean(value: str) -> bool:
    """``use_mmap=false``: the spellings a config file or a shell user reaches for."""
    word = value.lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError(value)


class Option(NamedTuple):
    """One option: how its text becomes a value, what a JSON value must be, Ollama's name."""

    parse: Callable[[str], Any]
    # "finite number", "whole number", "stop" (a string or a list of them),
    # "duration" (seconds, or text such as "5m"), or "true or false"
    kind: str
    ollama: str | None = None  # Ollama's name for it, where it is not cortan's


_FLOAT = Option(_number, "finite number")
_INT = Option(int, "whole number")
_BOOL = Option(_boolean, "true or false")

#: Every option, by cortan's name.
OPTIONS: dict[str, Option] = {
    "temperature": _FLOAT,
    "top_p": _FLOAT,
    "top_k": _INT,
    "min_p": _FLOAT,
    "seed": _INT,
    "stop": Option(_stops, "stop"),
    "max_tokens": Option(int, "whole number", ollama="num_predict"),
    "num_ctx": _INT,
    "presence_penalty": _FLOAT,
    "frequency_penalty": _FLOAT,
    "repeat_penalty": _FLOAT,
    "typical_p": _FLOAT,
    "repeat_last_n": _INT,
    # How long Ollama keeps the model loaded after the answer (its own top-level field).
    "keep_alive": Option(_duration, "duration"),
    # Ollama's runner: how the model is loaded, not how it answers.
    "num_keep": _INT,
    "num_batch": _INT,
    "num_gpu": _INT,
    "main_gpu": _INT,
    "num_thread": _INT,
    "use_mmap": _BOOL,
    "use_mlock": _BOOL,
    "numa": _BOOL,
    "low_vram": _BOOL,
    "vocab_only": _BOOL,
    "f16_kv": _BOOL,
    "logits_all": _BOOL,
}

#: Other spellings, each of one option: Ollama's own names, and OpenAI's newer name for
#: the answer's length (o-series and gpt-5 take only ``max_completion_tokens``).
ALIASES: dict[str, str] = {
    **{option.ollama: name for name, option in OPTIONS.items() if option.ollama},
    "max_completion_tokens": "max_tokens",
}


def get_name(key: str) -> str | None:
    """cortan's name for ``key`` (its own, or an alias), or None when it is no option."""
    return key if key in OPTIONS else ALIASES.get(key)


def to_ollama(options: Mapping[str, object]) -> dict[str, object]:
    """cortan's options under Ollama's names (``max_tokens`` is ``num_predict`` there)."""
    return {(OPTIONS[k].ollama if k in OPTIONS else None) or k: v for k, v in options.items()}


def _unknown(key: str) -> UsageError:
    import difflib

    near = difflib.get_close_matches(key, [*OPTIONS, *ALIASES], n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return UsageError(f"unknown option {key!r}{hint}; known: {', '.join(OPTIONS)}")


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line as a checked (cortan's name, value) pair."""
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise UsageError(f"option {text!r} is not key=value (for example -o temperature=0.2)")
    name = get_name(key)
    if name is None:
        raise _unknown(key)
    option = OPTIONS[name]
    try:
        return name, option.parse(raw.strip())
    except ValueError:
        kind = {"stop": "a value", "true or false": "true or false"}.get(
            option.kind, f"a {option.kind}"
        )
        raise UsageError(f"option {key} needs {kind}, not {raw.strip()!r}") from None


def parse_options(texts: Iterable[str]) -> tuple[tuple[str, Any], ...]:
    """Every ``key=value`` checked; a later one of the same name wins."""
    return tuple(dict(parse_option(text) for text in texts).items())


#: What a JSON value of each kind must be, in a sentence.
WANTED = {"finite number": "number", "duration": "number of seconds or a duration such as 5m"}


def _check_stop(key: str, value: object) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"option {key!r} must be a string or a list of strings")
    return value


def _check_boolean(key: str, value: object) -> bool:
    # JSON's true and false only, as Ollama takes them: it refuses 1 and "yes" too.
    if not isinstance(value, bool):
        raise UsageError(f"option {key!r} must be true or false")
    return value


#: The kinds whose JSON value is not a number, each with its check.
_SHAPED: dict[str, Callable[[str, object], object]] = {
    "stop": _check_stop,
    "true or false": _check_boolean,
}


def check_option(key: str, value: object) -> tuple[str, object]:
    """A JSON value (a batch line's ``options``, a gateway body) as (cortan's name, value).

    Raises UsageError with one sentence naming ``key`` as the sender spelled it.
    """
    name = get_name(key)
    if name is None:
        raise _unknown(key)
    kind = OPTIONS[name].kind
    if kind == "duration" and isinstance(value, str):
        if not DURATION.fullmatch(value):
            raise UsageError(f"option {key!r} must be a {WANTED[kind]}")
        return name, value
    if (shaped := _SHAPED.get(kind)) is not None:
        return name, shaped(key, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"option {key!r} must be a {WANTED.get(kind, kind)}")
    if not abs(value) <= MAX_NUMBER:  # False for NaN too
        # NaN, Infinity and 1e999 parse in Python's json but are not JSON upstream,
        # which then failed the request as the server's fault.
        raise UsageError(f"option {key!r} must be a finite number within ±2**63")
    if kind == "whole number":
        if isinstance(value, float) and not value.is_integer():
            raise UsageError(f"option {key!r} must be a whole number")
        value = int(value)
    return name, value
