"""Which body fields an OpenAI-compatible server takes: chosen, then learned per model.

Layer: providers (beside ``openai.py``, which asks this module before it sends and
when a server refuses a request). No SDK here: plain dicts in, sentences out.

The answer's length: OpenAI's reasoning models (o-series, gpt-5) refuse
``max_tokens`` and want ``max_completion_tokens``, while llama.cpp, vLLM and most
servers that copy the API know only ``max_tokens`` and ignore the other, so the
limit silently went away. cortan sends ``max_completion_tokens`` to api.openai.com
and ``max_tokens`` elsewhere; a 400 that refuses the one sent has the request sent
again once with the other, and the name that worked is kept for that model on that
host for the rest of the process. A provider's ``max_tokens_field`` pins the name:
then there is no guess and no second try.

A sampling option the model refuses (``temperature`` on a reasoning model: 400
``unsupported_value``; "Unsupported parameter"; a strict server's "extra inputs are
not permitted") is sent again once without it, and left out of that model's later
requests. Each time the user is told: the provider yields the sentence as an
``Adjusted``, which the engine shows as a notice. A refusal of a value's range
("must be at most 2") is not one of these: it is the user's to fix, and fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cortan.core.recent import Recent

#: Options the OpenAI body names as cortan does; the others go in ``extra_body``.
BODY_OPTIONS = frozenset(
    {"temperature", "top_p", "seed", "stop", "max_tokens", "presence_penalty", "frequency_penalty"}
)
#: llama.cpp's server takes all of these, vLLM the first three.
EXTRA_OPTIONS = frozenset({"top_k", "min_p", "repeat_penalty", "typical_p", "repeat_last_n"})
#: The two names of the answer's length, each the other's second try.
LENGTH_FIELDS = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
#: What a server may refuse and the answer go on without: the options, and how much to
#: think (``reasoning_effort`` on a model that does not reason).
DROPPABLE = (BODY_OPTIONS | EXTRA_OPTIONS | {"reasoning_effort"}) - {"max_tokens"}
#: Error codes and words that refuse a field itself, not its value's range.
REFUSED_CODES = frozenset({"unsupported_parameter", "unsupported_value", "extra_forbidden"})
REFUSED_TEXT = re.compile(
    r"unsupported|not supported|does not support|unrecognized|unknown (?:field|parameter|argument)"
    r"|extra (?:inputs|fields)|not permitted",
    re.IGNORECASE,
)


def default_length_field(url: str) -> str:
    """``max_completion_tokens`` for OpenAI itself, ``max_tokens`` for any other server."""
    return "max_completion_tokens" if urlsplit(url).hostname == "api.openai.com" else "max_tokens"


class Fields:
    """One host's body fields per model: the length's name, the options it refused.

    One per provider instance, that is per host of a process: what a server said of a
    model is kept as long as the process asks it.
    """

    def __init__(self, url: str, pinned: str | None = None) -> None:
        self._pinned = pinned is not None
        self._default = pinned or default_length_field(url)
        self._length: Recent[str, str] = Recent()  # model -> the length field that worked
        self._dropped: Recent[str, set[str]] = Recent()  # model -> options it refused

    def shape(
        self, model: str, body: dict[str, Any], options: Iterable[str]
    ) -> tuple[dict[str, Any], list[str]]:
        """``body`` as ``model`` takes it here, and a sentence for each option left out.

        ``options`` are the request's (cortan's names): one the API has no field for
        (``num_ctx``, Ollama's window) is said to be left out, not dropped in silence.
        """
        notes = []
        if unsent := [k for k in options if k not in BODY_OPTIONS | EXTRA_OPTIONS]:
            notes.append(f"has no option {', '.join(unsent)}: not sent")
        if "max_tokens" in body:
            body[self._length.get(model, self._default)] = body.pop("max_tokens")
        for option in sorted(self._dropped.get(model, ())):
            if (value := _remove(body, option)) is not None:
                notes.append(f"refused {option} ({_shown(value)}) before: sent without it")
        return body, notes

    def refused(
        self, model: str, body: dict[str, Any], tried: set[str], error: object, message: str
    ) -> str | None:
        """After a 400: ``body`` changed for one more try, and the sentence the user reads
        ("" when nothing was lost); None when the refusal is not of a field it may change.

        ``tried`` holds the fields this request has changed already: each once.
        """
        field = _refused_field(body, error, message)
        if field is None or field in tried:
            return None
        tried.add(field)
        if field in LENGTH_FIELDS:
            other = LENGTH_FIELDS[field]
            if self._pinned or other in tried:
                return None
            tried.add(other)
            body[other] = body.pop(field)
            self._length[model] = other
            return ""
        value = _remove(body, field)
        self._dropped.setdefault(model, set()).add(field)
        return f"refused {field} ({_shown(value)}): asked again without it"


def _refused_field(body: Mapping[str, Any], error: object, message: str) -> str | None:
    """The field of ours that a 400 refuses as such, or None."""
    error = error if isinstance(error, dict) else {}
    codes = {str(error.get("code")), str(error.get("type"))}
    if not codes & REFUSED_CODES and REFUSED_TEXT.search(message) is None:
        return None
    extra = body.get("extra_body")
    sent = [
        name
        for name in [*body, *(extra if isinstance(extra, dict) else ())]
        if name in DROPPABLE or name in LENGTH_FIELDS
    ]
    param = error.get("param")
    if isinstance(param, str) and param in sent:
        return param
    # No `param` (llama.cpp, vLLM, proxies): the first field of ours the sentence names.
    return next((name for name in sent if re.search(rf"(?<!\w){name}(?!\w)", message)), None)


def _remove(body: dict[str, Any], field: str) -> object:
    """Take ``field`` out of the body or its ``extra_body``; its value, or None."""
    if field in body:
        return body.pop(field)
    extra = body.get("extra_body")
    if isinstance(extra, dict) and field in extra:
        value = extra.pop(field)
        if not extra:
            del body["extra_body"]
        return value
    return None


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
