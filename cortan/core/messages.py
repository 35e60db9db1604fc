"""What a conversation and a model are: messages, token usage, model info.

Layer: core. Named tuples: cheap to build and to define (every ``cortan ask``
defines them, issue 7), immutable, and compared by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from cortan.core.images import Image

Role = Literal["system", "user", "assistant"]
#: The default of an empty mapping field: one shared instance, so it must not change.
EMPTY_MAPPING: Mapping[str, Any] = MappingProxyType({})


class Message(NamedTuple):
    role: Role
    content: str
    images: tuple[Image, ...] = ()  # what the model is shown with this message


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
