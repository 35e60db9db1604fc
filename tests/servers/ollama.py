"""Fake Ollama server speaking the native /api wire protocol (NDJSON streaming).

Shapes follow what a real Ollama 0.12 sends, so cortan's Ollama provider (and
the `ollama` client library) can be exercised over a real socket: model list,
`/api/show` with a context length, streaming chat with nanosecond timings in
the final `done` object, and Ollama's exact error strings.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from tests.servers.http import ClientGone, Exchange, FakeServer, Reply

__all__ = ["FakeOllama"]

_MODIFIED_AT = "2025-01-15T10:30:00.123456Z"
_DETAILS: dict[str, Any] = {
    "parent_model": "",
    "format": "gguf",
    "family": "llama",
    "families": ["llama"],
    "parameter_size": "3.2B",
    "quantization_level": "Q4_K_M",
}
_PARAMETERS = 'stop                           "<|start_header_id|>"\nstop "<|eot_id|>"'
_TEMPLATE = "{{ if .System }}<|start_header_id|>system<|end_header_id|>{{ .System }}{{ end }}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


class _OllamaWire:
    """NDJSON chat stream; timings in the `done` object are measured, in ns."""

    content_type = "application/x-ndjson"

    def __init__(self, model: str, think: object = None) -> None:
        self.model = model
        self.think = think  # the request's `think`: False means the model does not think
        self.start = time.monotonic_ns()
        self.first: int | None = None

    def error_body(self, status: int, message: str | None) -> object:
        if message is None and status == 404:
            message = f'model "{self.model}" not found, try pulling it first'
        return {"error": message or HTTPStatus(status).phrase.lower()}

    def _message(self, content: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": _now(),
            "message": {"role": "assistant", "content": content},
        }

    def _done(self, reply: Reply) -> dict[str, Any]:
        now = time.monotonic_ns()
        first = self.first or now
        return {
            "done": True,
            "done_reason": reply.finish_reason,
            "total_duration": max(now - self.start, 3),
            "load_duration": 1,
            "prompt_eval_count": reply.prompt_tokens,
            "prompt_eval_duration": max(first - self.start, 1),
            "eval_count": reply.eval_count,
            "eval_duration": max(now - first, 1),
        }

    def complete(self, reply: Reply) -> object:
        whole = {**self._message(reply.text), **self._done(reply)}
        if reply.thinking and self.think is not False:
            whole["message"]["thinking"] = "".join(reply.thinking)
        return whole

    def thought(self, text: str, reply: Reply) -> bytes | None:
        if self.think is False:
            return None
        self.first = self.first or time.monotonic_ns()
        message = self._message("")
        message["message"]["thinking"] = text
        return _line({**message, "done": False})

    def opening(self) -> list[bytes]:
        return []

    def piece(self, text: str) -> bytes:
        self.first = self.first or time.monotonic_ns()
        return _line({**self._message(text), "done": False})

    def malformed(self) -> bytes:
        return f'{{"model": "{self.model}", "mess\n'.encode()

    def stream_error(self, message: str | None) -> bytes:
        return _line({"error": message or "an error occurred"})

    def closing(self, reply: Reply) -> list[bytes]:
        return [_line({**self._message(""), **self._done(reply)})]

    def tool_calls(self, reply: Reply) -> list[bytes]:
        """Ollama sends a turn's calls whole, in one message, arguments as objects."""
        if not reply.tool_calls:
            return []
        calls = [
            {
                "function": {
                    "name": call.name,
                    "arguments": json.loads(call.arguments)
                    if isinstance(call.arguments, str)
                    else dict(call.arguments),
                }
            }
            for call in reply.tool_calls
        ]
        message = self._message("")
        message["message"]["tool_calls"] = calls
        return [_line({**message, "done": False})]


class FakeOllama(FakeServer):
    """Fake `ollama serve`: /api/version, /api/tags, /api/show, /api/chat, /api/ps, /api/pull."""

    default_models = ("llama3.2:latest", "qwen2.5-coder:7b")
    chat_path = "/api/chat"

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(port=port, host=host)
        self.version = "0.12.0"
        self.context_length = 131072
        # What /api/show says each model can do; the rest say completion, tools, thinking.
        # Thinking asked of a model without it is refused (400), as Ollama does.
        self.capabilities: dict[str, list[str]] = {}
        # /api/pull: the models the "registry" has, each as layer sizes in bytes; the
        # progress steps per layer; seconds between progress lines (to interrupt one).
        self.registry: dict[str, list[int]] = {"tinyllama": [4_000_000, 1_000, 500]}
        self.pull_steps = 4
        self.pull_delay = 0.0
        self.show_delay = 0.0  # seconds /api/show takes (a server still loading, say)
        self.pulls_closed_early = 0  # pulls whose client left before "success"
        # Fields laid over each progress line of /api/pull (an odd server's numbers).
        self.pull_fields: dict[str, Any] = {}
        # Fields laid over each model of /api/tags (a hostile or odd server's values).
        self.tag_fields: dict[str, Any] = {}

    def knows(self, model: str) -> bool:
        # Like Ollama, a name without a tag means ":latest".
        return model in self.models or (":" not in model and f"{model}:latest" in self.models)

    def _entry(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "model": name,
            "modified_at": _MODIFIED_AT,
            "size": 2019393189,
            "digest": hashlib.sha256(name.encode()).hexdigest(),
            "details": _DETAILS,
            **self.tag_fields,
        }

    def capabilities_of(self, name: str) -> list[str]:
        for key in (name, f"{name}:latest", name.removesuffix(":latest")):
            if key in self.capabilities:
                return self.capabilities[key]
        return ["completion", "tools", "thinking"]

    def _show(self, name: str) -> dict[str, Any]:
        return {
            "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT",
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {name}\n'
            f'TEMPLATE """{_TEMPLATE}"""\n{_PARAMETERS}\n',
            "parameters": _PARAMETERS,
            "template": _TEMPLATE,
            "details": _DETAILS,
            "model_info": {
                "general.architecture": "llama",
                "general.parameter_count": 3212749888,
                "llama.context_length": self.context_length,
                "llama.embedding_length": 3072,
            },
            "capabilities": self.capabilities_of(name),
            "modified_at": _MODIFIED_AT,
        }

    async def handle(self, ex: Exchange) -> None:
        method, path, body = ex.request.method, ex.request.path, ex.request.json
        route = (method, path)
        if method in ("GET", "HEAD"):
            await self._get(ex, route)
        elif route == ("POST", "/api/pull") and isinstance(body, dict):
            await self._pull(ex, str(body.get("model") or body.get("name") or ""))
        elif method != "POST" or path not in ("/api/show", "/api/chat"):
            await ex.send(404, b"404 page not found", "text/plain")
        elif not isinstance(body, dict):
            await ex.send_json(400, {"error": "missing request body"})
        elif path == "/api/show":
            name = str(body.get("model") or body.get("name") or "")
            await ex.sleep(self.show_delay)
            if self.knows(name):
                await ex.send_json(200, self._show(name))
            else:
                await ex.send_json(404, {"error": f"model '{name}' not found"})
        elif not (model := body.get("model")) or not isinstance(model, str):
            await ex.send_json(400, {"error": "model is required"})
        elif body.get("think") not in (None, False) and "thinking" not in self.capabilities_of(
            model
        ):  # as Ollama refuses it
            await ex.send_json(400, {"error": f'"{model}" does not support thinking'})
        else:
            stream = body.get("stream", True) is not False
            await self.chat(ex, model, _OllamaWire(model, body.get("think")), stream=stream)

    async def _get(self, ex: Exchange, route: tuple[str, str]) -> None:
        if route in {("GET", "/"), ("HEAD", "/")}:
            await ex.send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif route == ("GET", "/api/version"):
            await ex.send_json(200, {"version": self.version})
        elif route == ("GET", "/api/tags"):
            await ex.send_json(200, {"models": [self._entry(m) for m in self.models]})
        elif route == ("GET", "/api/ps"):
            await ex.send_json(200, {"models": []})
        else:
            await ex.send(404, b"404 page not found", "text/plain")

    async def _pull(self, ex: Exchange, name: str) -> None:
        """Ollama's pull: NDJSON progress ({status, digest, total, completed}), then
        success; a model the registry lacks is an error line after the first status,
        as Ollama streams it (HTTP 200: the failure is found after the stream began)."""
        base = name.removesuffix(":latest")
        await ex.start_stream("application/x-ndjson")
        try:
            await ex.send_chunk(_line({"status": "pulling manifest"}))
            layers = self.registry.get(base)
            if layers is None:
                error = "pull model manifest: file does not exist"
                await ex.send_chunk(_line({"error": error}))
                await ex.end_stream()
                return
            for size in layers:
                digest = "sha256:" + hashlib.sha256(f"{base}{size}".encode()).hexdigest()
                for step in range(self.pull_steps + 1):
                    done = size * step // self.pull_steps
                    line = {"status": f"pulling {digest[7:19]}", "digest": digest,
                            "total": size, "completed": done, **self.pull_fields}  # fmt: skip
                    await ex.send_chunk(_line(line))
                    await ex.sleep(self.pull_delay)  # ClientGone when the client left
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                await ex.send_chunk(_line({"status": status}))
            await ex.end_stream()
        except ClientGone:
            self.pulls_closed_early += 1
            raise
        full = name if ":" in name else f"{name}:latest"
        if full not in self.models:
            self.models.append(full)
