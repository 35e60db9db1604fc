"""The JSON report for scripts: one object per answer, written when it ends.

Keys are stable (scripts depend on them): ``model``, ``provider``, ``content``,
``finish_reason``, ``usage`` (``prompt_tokens``, ``completion_tokens``),
``timings`` (``first_token_s``, ``total_s``, ``thinking_s``), ``thinking`` (the
model's reasoning, apart from the content; "" when none), ``data`` (the answer
parsed, with ``--schema``), and on failure ``error``
(``kind``, ``message``) with whatever content arrived before it; ``cached`` (always
there) says whether the answer came from the response cache. A front end may add its
own keys (``cortan ask`` adds ``conversation_id``, the stored conversation to go on
with, or null).

JSON keeps non-ASCII text readable (``ensure_ascii=False``), and ``json.dumps``
already writes C0 controls such as ESC as ``\\u001b``; :func:`dump_json` also
escapes what it would pass through raw and a terminal could still act on: DEL, the
C1 controls (U+009B is an 8-bit CSI) and the bidirectional overrides. The JSON means
the same text either way, so scripts get the model's bytes back exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TextIO

from cortan.core.events import ChatCancelled, ChatEnded, ChatFailed, ChatFinished


def make_report(event: ChatEnded) -> dict[str, Any]:
    """The JSON-ready dict for one ended request."""
    report: dict[str, Any] = {
        "model": event.model,
        "provider": event.provider,
        "content": event.content,
        "thinking": event.thinking,
    }
    if isinstance(event, ChatFinished):
        report["finish_reason"] = event.finish_reason
        report["usage"] = {
            "prompt_tokens": event.usage.prompt_tokens,
            "completion_tokens": event.usage.completion_tokens,
            "thinking_tokens": event.usage.thinking_tokens,
        }
        report["timings"] = {
            "first_token_s": _round(event.timings.first_token),
            "total_s": _round(event.timings.total),
            "thinking_s": _round(event.timings.thinking),
        }
        if event.data is not None:
            report["data"] = event.data
    elif isinstance(event, ChatFailed):
        report["finish_reason"] = "error"
        report["error"] = {"kind": event.kind, "message": event.message}
    elif isinstance(event, ChatCancelled):
        report["finish_reason"] = "interrupted"
    report["cached"] = isinstance(event, ChatFinished) and event.cached
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def write_report(file: TextIO, event: ChatEnded, extra: Mapping[str, Any] | None = None) -> None:
    file.write(dump_json({**make_report(event), **(extra or {})}) + "\n")
    file.flush()


# Never JSON syntax, so only ever inside a string, where a \u escape means the same.
_RAW_CONTROLS = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def dump_json(data: Any, *, indent: int | None = None) -> str:
    """``json.dumps`` for text that may reach a terminal (see the module docstring)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return _RAW_CONTROLS.sub(lambda m: f"\\u{ord(m[0]):04x}", text)
