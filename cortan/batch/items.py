"""From one input record to the request it asks, and the fingerprint a resumed job checks.

Layer: batch (a front end). How an item becomes a prompt:

* with a template (``--template``), the template filled from the item's fields;
* else the item's text (the ``prompt`` field of a JSON line or the one ``--field``
  names, a CSV column ``--field`` names, the line, the file), which is the prompt
  itself, or, with ``--prompt INSTRUCTION``, data sent with the instruction as a
  labelled block (the way ``cortan ask`` sends piped text and files).

A JSON line may also set its own ``model``, ``system``, ``options`` (an object:
``temperature``, ``seed``...) and ``schema``; CSV columns are only data (a column
called ``model`` is much more often a product's than an LLM's). The schema is
accepted, checked to be an object and part of the fingerprint, but not sent yet:
structured output is issue 16 (the runner says so once).

The fingerprint is a hash of the whole request an item makes; a job keeps it with
each item's state, and an item whose fingerprint changed is asked again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import NamedTuple

from cortan.batch.inputs import Format, Record
from cortan.batch.template import Template, as_text
from cortan.core.errors import InputError, UsageError
from cortan.core.options import check_option
from cortan.core.requests import Attachment, ChatRequest

#: JSON-line keys that set the item's request instead of (only) being data.
ITEM_SETTINGS = ("model", "system", "options", "schema")
FINGERPRINT_BYTES = 16


class RequestSpec(NamedTuple):
    """What the command line says about every item's request."""

    format: Format
    template: Template | None = None
    field: str | None = None  # the text of each item (JSON lines: "prompt" by default)
    instruction: str | None = None  # --prompt: sent with each item's text as data
    model: str | None = None
    system: str | None = None
    options: tuple[tuple[str, object], ...] = ()
    allow_fallback: bool = True
    allow_secrets: bool = False
    cache: bool | None = None


class Prepared(NamedTuple):
    """An item ready to run: its request (id given when it is sent) and fingerprint."""

    request: ChatRequest
    fingerprint: bytes
    schema: Mapping[str, object] | None = None


def prepare(record: Record, spec: RequestSpec) -> Prepared:
    """The request ``record`` makes, or InputError naming where it is and what is wrong."""
    if record.error is not None:
        raise InputError(record.error)
    prompt, attachments = _compose(record, spec)
    model, system, options = spec.model, spec.system, spec.options
    schema = None
    if spec.format == "jsonl":
        model, system, options, schema = _item_settings(record, spec)
    if schema is not None:
        _check_schema(schema, record.where)
    request = ChatRequest(
        0, prompt, attachments, model, system, options=options,
        allow_fallback=spec.allow_fallback, allow_secrets=spec.allow_secrets, cache=spec.cache,
        schema=schema,
    )  # fmt: skip
    return Prepared(request, make_fingerprint(request, schema), schema)


def _check_schema(schema: Mapping[str, object], where: str) -> None:
    """An item's schema must be a JSON Schema: the answer is checked against it (issue 16)."""
    from cortan.core.errors import UsageError
    from cortan.engine.validation import check_schema

    try:
        check_schema(dict(schema))
    except UsageError as exc:
        raise InputError(f"{where}: {exc}") from None


def _compose(record: Record, spec: RequestSpec) -> tuple[str, tuple[Attachment, ...]]:
    if spec.template is not None:
        return spec.template.render(record.fields, record.where), ()
    if spec.format == "files":
        data = record.fields["content"]
        assert isinstance(data, bytes)
        label = f"File {record.fields['path']}"
        return spec.instruction or "", (Attachment(label, data),)
    text = _get_text(record, spec)
    if spec.instruction is not None:
        return spec.instruction, (Attachment("Input", text.encode("utf-8", "surrogatepass")),)
    return text, ()


def _get_text(record: Record, spec: RequestSpec) -> str:
    if spec.format == "lines":
        return str(record.fields["line"])
    field = spec.field or "prompt"
    if field not in record.fields:
        raise InputError(f"{record.where} has no field {field!r} (--field names the text)")
    value = record.fields[field]
    if not isinstance(value, str):
        raise InputError(f"{record.where}: field {field!r} is not text")
    return value


def _item_settings(
    record: Record, spec: RequestSpec
) -> tuple[str | None, str | None, tuple[tuple[str, object], ...], Mapping[str, object] | None]:
    """A JSON line's own model, system prompt, options and schema, over the command's."""
    fields, where = record.fields, record.where
    model = _get_string(fields, "model", where) or spec.model
    system = _get_string(fields, "system", where)
    options = dict(spec.options)
    given = fields.get("options")
    if given is not None:
        if not isinstance(given, dict):
            raise InputError(f"{where}: options must be an object, as --option takes them")
        options.update(_checked_options(given, where))
    schema = fields.get("schema")
    if schema is not None and not isinstance(schema, dict):
        raise InputError(f"{where}: schema must be a JSON object (a JSON schema)")
    return model, system if system is not None else spec.system, tuple(options.items()), schema


def _checked_options(given: Mapping[str, object], where: str) -> dict[str, object]:
    """A line's options as ``--option`` takes them (cortan.core.options): a name another
    provider would have dropped in silence (``num_predict`` on OpenAI) is cortan's."""
    try:
        return dict(check_option(key, value) for key, value in given.items())
    except UsageError as exc:
        raise InputError(f"{where}: {exc}") from None


def _get_string(fields: Mapping[str, object], key: str, where: str) -> str | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or (key == "model" and not value.strip()):
        raise InputError(f"{where}: {key} must be {'a model name' if key == 'model' else 'text'}")
    return value


def make_fingerprint(request: ChatRequest, schema: Mapping[str, object] | None = None) -> bytes:
    """A hash of everything an item's request is made of (its id aside)."""
    digest = hashlib.sha256()
    shape = [
        request.prompt,
        request.model,
        request.system,
        sorted([k, as_text(v)] for k, v in request.options),
        request.allow_fallback,
        [a.label for a in request.attachments],
        schema,
    ]
    digest.update(json.dumps(shape, ensure_ascii=False, default=repr).encode("utf-8", "replace"))
    for attachment in request.attachments:
        digest.update(b"\x00")
        digest.update(attachment.data)
    return digest.digest()[:FINGERPRINT_BYTES]
