"""The Ollama-compatible API: ``/api/chat`` and ``/api/generate`` (NDJSON and whole),
``/api/tags``, ``/api/show``, ``/api/version``.

Layer: serve. Point an Ollama client at the gateway (``OLLAMA_HOST=http://127.0.0.1:11435``,
and ``OLLAMA_API_KEY`` set to the gateway's token, which the ``ollama`` library
sends as a bearer token) and it reaches every model cortan routes to, over many
hosts with fallback. A streamed answer is one JSON object per line, ending with
one whose ``done`` is true and which carries the counts and durations (ns); a
failure after the first piece is an ``{"error": ...}`` line, as Ollama sends.

``/api/generate`` (a prompt, not a conversation: ``ollama run``, ``ollama.generate``,
editors' one-shot commands) is the same request as a chat of one user message after
the ``system`` one; its answer comes in ``response`` fields. An empty prompt (a chat's
empty ``messages``) is Ollama's way of loading a model before use: answered at once
with ``done_reason`` ``load``, without asking the model. What a chat cannot carry (``suffix`` for
fill-in-the-middle, ``context`` token arrays, ``raw`` prompts, ``template``) is refused
with a sentence, not silently dropped.

``/api/show`` is what Ollama's clients ask of a model before they use it: ``ollama
run`` (which pulls a model it is not shown), Zed and Continue (its window and what it
can do). It answers with the window the gateway fits a conversation to and only the
capabilities the gateway carries (not tools, which it refuses), so a
client does not offer what would then be refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cortan import __version__
from cortan.core.errors import CortanError
from cortan.core.events import ChatFinished, ChatStarted
from cortan.serve import convert
from cortan.serve.notices import add_notices, get_headers
from cortan.serve.relay import Item
from cortan.serve.replies import (
    Receive,
    RequestError,
    Scope,
    Send,
    get_kind_status,
    get_object,
    read_json,
    refuse,
    send_bytes,
    send_error,
    send_json,
)

if TYPE_CHECKING:
    from cortan.core.messages import ModelInfo
    from cortan.serve.gateway import Gateway

#: The Ollama API the gateway speaks, for clients that check the server's version.
OLLAMA_VERSION = "0.12.0"
UNSUPPORTED = ("tools",)
#: Top-level fields read here (generate's among them). ``keep_alive`` is an option of
#: its own at the top (cortan.core.options); ``options`` holds the others. Any other
#: field is dropped with a notice (docs/serve.md has the table).
HANDLED = frozenset(
    {"model", "messages", "stream", "options", "think", "format", "prompt", "system",
     "images", "suffix", "context", "raw", "template", *UNSUPPORTED}
)  # fmt: skip
#: The same for a chat: generate's own fields sent to ``/api/chat`` (a top-level
#: ``images``, ``prompt``) were dropped without a notice.
CHAT_HANDLED = HANDLED - {"prompt", "system", "images", "suffix", "context", "raw", "template"}
TOP_OPTIONS = frozenset({"keep_alive"})
NS = 1_000_000_000
#: What a model can do that the gateway carries (it refuses tools).
CARRIED = ("completion", "thinking", "vision")
EPOCH = "1970-01-01T00:00:00Z"


class ChatEndpoint:
    """``POST /api/chat``."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def _format(self, model: str) -> OllamaFormat:
        return OllamaFormat(model)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway, limits = self.gateway, self.gateway.limits
        try:
            body = get_object(
                await read_json(
                    scope, receive, limit=limits.max_body_bytes, seconds=limits.body_timeout
                ),
                "a chat request",
            )
            stream = convert.get_flag(body, "stream", True)
            request = await self._parse(scope, body)
        except RequestError as refused:
            gateway.metrics.rejected(refused.kind)
            await send_error(send, scope, refused)
            return
        if request is None:  # "load the model": nothing to ask
            form = self._format(str(body.get("model") or ""))
            kind = form.content_type if stream else b"application/json"
            await send_bytes(send, 200, form.loaded(stream), kind)
            return
        form = self._format(request.model or "")
        await gateway.respond(scope, receive, send, request, "ollama", form, stream=stream)

    async def _parse(self, scope: Scope, body: dict[str, Any]) -> Any:
        convert.refuse_unsupported(body, UNSUPPORTED)
        if body.get("messages") == []:  # Ollama's way to load a model before use
            convert.get_model(body)  # checked all the same
            return None
        return await self._request(scope, body, CHAT_HANDLED)

    async def _request(
        self, scope: Scope, body: dict[str, Any], handled: frozenset[str] = HANDLED
    ) -> Any:
        given = body.get("options") or {}
        if not isinstance(given, dict):
            raise refuse("`options` must be an object")
        options, dropped = convert.get_options(given)
        top, dropped_top = convert.get_options(body, handled, TOP_OPTIONS)
        in_messages = convert.get_dropped_in_messages(body)
        notice = convert.tell_dropped(
            [*(f"options.{k}" for k in dropped), *dropped_top, *in_messages]
        )
        scope["state"]["notice"] = notice
        return convert.make_request(
            self.gateway.services.next_id(),
            convert.get_messages(body, self.gateway.limits),
            model=convert.get_model(body),
            options={**options, **top},
            client=convert.get_client(scope, "ollama"),
            trace=scope["state"]["trace"],
            allow_secrets=convert.allows_secrets(scope),
            trim=convert.allows_trim(scope),
            think=convert.get_think(body, "think"),
            schema=await convert.get_format(body, self.gateway.services.check_schema),
        )


class GenerateEndpoint(ChatEndpoint):
    """``POST /api/generate``: a prompt (and a system message) as a chat of one turn."""

    def _format(self, model: str) -> OllamaFormat:
        return GenerateFormat(model)

    async def _parse(self, scope: Scope, body: dict[str, Any]) -> Any:
        convert.refuse_unsupported(body, UNSUPPORTED)
        for field, why in GENERATE_UNSUPPORTED.items():
            if body.get(field):
                raise refuse(f"`{field}` is not supported by the gateway: {why}", "unsupported")
        prompt, system = body.get("prompt", ""), body.get("system")
        if not isinstance(prompt, str) or not isinstance(system, str | None):
            raise refuse("`prompt` and `system` must be strings")
        if not prompt and not body.get("images"):
            convert.get_model(body)  # checked all the same
            return None
        turns: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        turns.append({"role": "user", "content": prompt, "images": body.get("images")})
        return await self._request(scope, {**body, "messages": turns})


#: What /api/generate may carry that a chat cannot, and what to do instead.
GENERATE_UNSUPPORTED = {
    "suffix": "fill-in-the-middle needs the model's own template (ask the model directly)",
    "context": "send the conversation as messages to /api/chat instead of token arrays",
    "raw": "the gateway sends the prompt through the chat template",
    "template": "the gateway sends the prompt through the model's own chat template",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class OllamaFormat:
    """Ollama's chat objects for one answer."""

    content_type = b"application/x-ndjson"

    def __init__(self, model: str) -> None:
        self.model = model

    def _message(self, content: str, created: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": created,
            "message": {"role": "assistant", "content": content},
        }

    def pieces(self, items: list[Item]) -> bytes:
        created = _now()  # one time per batch: the pieces arrived together
        head = json.dumps({"model": self.model, "created_at": created})[:-1]
        prefix = head + ', "message": {"role": "assistant", "content": '
        out: list[str] = []
        for kind, value in items:
            if kind == "text":
                out.append(prefix + json.dumps(value) + '}, "done": false}\n')
            elif kind == "thinking":
                message = self._message("", created)
                message["message"]["thinking"] = value
                out.append(json.dumps({**message, "done": False}) + "\n")
            elif kind == "started" and isinstance(value, ChatStarted):
                self.model = f"{value.provider}:{value.model}"
                head = json.dumps({"model": self.model, "created_at": created})[:-1]
                prefix = head + ', "message": {"role": "assistant", "content": '
        return "".join(out).encode()

    def _done(self, ended: ChatFinished) -> dict[str, Any]:
        total = int(ended.timings.total * NS)
        first = int((ended.timings.first_token or ended.timings.total) * NS)
        return {
            "done": True,
            "done_reason": ended.finish_reason,
            "total_duration": total,
            "load_duration": 0,
            "prompt_eval_count": ended.usage.prompt_tokens or 0,
            "prompt_eval_duration": first,
            "eval_count": ended.usage.completion_tokens or 0,
            "eval_duration": max(total - first, 0),
        }

    def closing(self, ended: ChatFinished, notices: list[str]) -> bytes:
        self.model = f"{ended.provider}:{ended.model}"
        done = add_notices({**self._message("", _now()), **self._done(ended)}, notices)
        return (json.dumps(done) + "\n").encode()

    def failure(self, status: int, kind: str, message: str) -> bytes:
        return (json.dumps({"error": message}) + "\n").encode()

    def whole(self, ended: ChatFinished, notices: list[str]) -> bytes:
        self.model = f"{ended.provider}:{ended.model}"
        whole = {**self._message(ended.content, _now()), **self._done(ended)}
        if ended.thinking:
            whole["message"]["thinking"] = ended.thinking
        return json.dumps(add_notices(whole, notices)).encode()

    def loaded(self, stream: bool) -> bytes:
        """The answer to a request that only loads the model (nothing is asked)."""
        done = {**self._message("", _now()), "done": True, "done_reason": "load"}
        return (json.dumps(done) + "\n").encode() if stream else json.dumps(done).encode()


class GenerateFormat(OllamaFormat):
    """Ollama's generate objects: the text in ``response``, thinking in ``thinking``."""

    def _message(self, content: str, created: str) -> dict[str, Any]:
        return {"model": self.model, "created_at": created, "response": content}

    def pieces(self, items: list[Item]) -> bytes:
        created = _now()
        out: list[str] = []
        for kind, value in items:
            if kind == "text":
                piece = {**self._message(str(value), created), "done": False}
                out.append(json.dumps(piece) + "\n")
            elif kind == "thinking":
                thinking = {**self._message("", created), "thinking": value, "done": False}
                out.append(json.dumps(thinking) + "\n")
            elif kind == "started" and isinstance(value, ChatStarted):
                self.model = f"{value.provider}:{value.model}"
        return "".join(out).encode()

    def whole(self, ended: ChatFinished, notices: list[str]) -> bytes:
        self.model = f"{ended.provider}:{ended.model}"
        whole = {**self._message(ended.content, _now()), **self._done(ended)}
        if ended.thinking:
            whole["thinking"] = ended.thinking
        return json.dumps(add_notices(whole, notices)).encode()


class TagsEndpoint:
    """``GET /api/tags``: every model cortan routes to, as Ollama lists its own."""

    def __init__(self, gateway: Gateway) -> None:
        self.models = gateway.models

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        models = []
        for name, owner, info in await self.models.get_entries():
            models.append({
                "name": name, "model": name, "modified_at": EPOCH,
                "size": (info.size if info else None) or 0, "digest": "",
                "details": _details(info, owner),
            })  # fmt: skip
        listing = json.dumps({"models": models}).encode()
        await send_bytes(send, 200, listing, raw_headers=get_headers(self.models.get_notices()))


def _details(info: ModelInfo | None, owner: str) -> dict[str, Any]:
    """Ollama's ``details`` of a model, from what its provider said of it."""
    return {
        "family": (info.family if info else None) or "",
        "parameter_size": (info.parameter_size if info else None) or "",
        "quantization_level": (info.quantization if info else None) or "",
        "format": "", "families": [], "parent_model": owner,
    }  # fmt: skip


class ShowEndpoint:
    """``POST /api/show``: a model's details, window and capabilities (module docstring)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limits, services = self.gateway.limits, self.gateway.services
        try:
            body = get_object(
                await read_json(
                    scope, receive, limit=limits.max_body_bytes, seconds=limits.body_timeout
                ),
                "a show request",
            )
            given = body.get("model") or body.get("name")
            if not isinstance(given, str) or not given.strip():  # as Ollama: no default here
                raise refuse("`model` must name the model to show")
            name = convert.get_model({"model": given})
        except RequestError as refused:
            await send_error(send, scope, refused)
            return
        try:
            info = await services.show_model(name)
            window = await services.context_window(name)
        except CortanError as exc:
            status = get_kind_status(exc.kind)
            await send_error(send, scope, RequestError(status, exc.kind, str(exc)))
            return
        await send_json(send, 200, _shown(info, window))


def _shown(info: ModelInfo, window: int) -> dict[str, Any]:
    architecture = info.family or "unknown"
    carried = [c for c in info.capabilities or ("completion",) if c in CARRIED]
    return {
        "license": "", "modelfile": "", "parameters": "", "template": "",
        "details": _details(info, info.provider),
        "model_info": {
            "general.architecture": architecture, f"{architecture}.context_length": window,
        },
        "capabilities": carried or ["completion"],
        "modified_at": EPOCH,
    }  # fmt: skip


class _Asgi:
    """A plain ASGI function, which Starlette then routes as an app, not a request handler."""

    def __init__(self, app: Any) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


async def _version(scope: Scope, receive: Receive, send: Send) -> None:
    await send_json(send, 200, {"version": OLLAMA_VERSION, "cortan": __version__})


async def _root(scope: Scope, receive: Receive, send: Send) -> None:
    # Ollama answers its root with this line, and some clients check for it.
    await send_bytes(send, 200, b"Ollama is running", b"text/plain; charset=utf-8")


version_endpoint = _Asgi(_version)
root_endpoint = _Asgi(_root)


def endpoint(gateway: Gateway) -> ChatEndpoint:
    return ChatEndpoint(gateway)


def generate_endpoint(gateway: Gateway) -> GenerateEndpoint:
    return GenerateEndpoint(gateway)


def tags_endpoint(gateway: Gateway) -> TagsEndpoint:
    return TagsEndpoint(gateway)


def show_endpoint(gateway: Gateway) -> ShowEndpoint:
    return ShowEndpoint(gateway)
