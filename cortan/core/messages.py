"""What a conversation and a model are: messages, token usage, model info.

Layer: core. Named tuples: cheap to build and to define (every ``cortan ask``
defines them, issue 7), immutable, and compared by value.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from cortan.core.images import Image

Role = Literal["system", "user", "assistant", "tool"]
#: The default of an empty mapping field: one shared instance, so it must not change.
EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


class ToolCall(NamedTuple):
    """A model's request to call one tool, as it arrived complete.

    ``arguments`` is the JSON text the model wrote, kept as text: a model may write
    JSON that does not parse, and the tool loop must be able to say so to it.
    ``id`` is the wire's (OpenAI's ``call_...``), or one cortan made (Ollama has none).
    """

    id: str
    name: str
    arguments: str


class Message(NamedTuple):
    """One turn of a conversation.

    An assistant turn that asked for tools carries its ``tool_calls``; the result of
    each call comes back as a ``tool`` turn naming the call it answers
    (``tool_call_id`` for OpenAI, ``tool_name`` for Ollama: each wire takes its own).
    """

    role: Role
    content: str
    images: tuple[Image, ...] = ()  # what the model is shown with this message
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    tool_name: str | None = None


class Usage(NamedTuple):
    """Token counts as the provider reported them (None where it did not)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    thinking_tokens: int | None = None  # of the completion, where the server says


class PullProgress(NamedTuple):
    """One step of downloading a model onto its server (``cortan models pull``).

    ``digest`` names the layer being fetched, with ``completed`` of its ``total``
    bytes; a step without them is a stage ("pulling manifest", "success").
    """

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


#: The most models cortan reads of one host's listing. A server listing 100,000 took
#: `cortan models` 51.7 s and 377 MiB, most of it drawing the table; front ends say
#: when a listing reached this many.
MAX_MODELS = 1000


def get_cut_listings(models: Iterable[ModelInfo]) -> list[str]:
    """What to say of each provider whose listing among ``models`` reached
    :data:`MAX_MODELS` (the providers read no more, so more may exist): one sentence each,
    for every front end alike."""
    counts = Counter(model.provider for model in models)
    return [
        f"{provider}: the server lists {MAX_MODELS} models or more; "
        f"cortan reads the first {MAX_MODELS}"
        for provider, count in counts.items()
        if count >= MAX_MODELS
    ]


class ModelInfo(NamedTuple):
    """A model a provider offers; fields other than the name are best effort."""

    name: str
    provider: str
    family: str | None = None
    size: int | None = None
    parameter_size: str | None = None
    context_length: int | None = None
    # What the model can do (``completion``, ``vision``, ``thinking``, ``tools``,
    # ``embedding``), where its server says; None: not known.
    capabilities: tuple[str, ...] | None = None
    quantization: str | None = None
    digest: str | None = None  # the weights' hash, where the server says (Ollama)
