"""The JSON report for scripts: one object per answer, written when it ends.

Keys are stable (scripts depend on them): ``model``, ``provider``, ``content``,
``finish_reason``, ``usage`` (``prompt_tokens``, ``completion_tokens``),
``timings`` (``first_token_s``, ``total_s``), and on failure ``error``
(``kind``, ``message``) with whatever content arrived before it.
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from cortan.engine.events import ChatCancelled, ChatEnded, ChatFailed, ChatFinished


def make_report(event: ChatEnded) -> dict[str, Any]:
    """The JSON-ready dict for one ended request."""
    report: dict[str, Any] = {
        "model": event.model,
        "provider": event.provider,
        "content": event.content,
    }
    if isinstance(event, ChatFinished):
        report["finish_reason"] = event.finish_reason
        report["usage"] = {
            "prompt_tokens": event.usage.prompt_tokens,
            "completion_tokens": event.usage.completion_tokens,
        }
        report["timings"] = {
            "first_token_s": _round(event.timings.first_token),
            "total_s": _round(event.timings.total),
        }
    elif isinstance(event, ChatFailed):
        report["finish_reason"] = "error"
        report["error"] = {"kind": event.kind, "message": event.message}
    elif isinstance(event, ChatCancelled):
        report["finish_reason"] = "interrupted"
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def write_report(file: TextIO, event: ChatEnded) -> None:
    file.write(json.dumps(make_report(event), ensure_ascii=False) + "\n")
    file.flush()
