"""From a record to its request: templates, fields, instructions, item settings, fingerprints."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cortan.batch.inputs import Record
from cortan.batch.items import RequestSpec, make_fingerprint, prepare
from cortan.batch.template import Template
from cortan.core.errors import InputError, UsageError
from cortan.core.requests import Attachment


def record(fields: Mapping[str, object], where: str = "line 1", error: str | None = None) -> Record:
    return Record(0, 1, where, fields, error)


# -- templates -------------------------------------------------------------------------


def test_a_template_fills_fields_as_spelt() -> None:
    template = Template("Classify {first name} ({a.b}, {n}, {tags}): {{literal}}")
    assert template.fields == ("first name", "a.b", "n", "tags")
    values = {"first name": "Ada", "a.b": "x", "n": 3, "tags": ["x", "ü"]}
    assert template.render(values, "row 1") == 'Classify Ada (x, 3, ["x", "ü"]): {literal}'


def test_a_missing_field_names_the_item() -> None:
    with pytest.raises(InputError, match=r"^row 4 has no field 'text' \(the template uses it\)$"):
        Template("{text}").render({"body": "x"}, "row 4")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("no fields here", "the template names no field"),
        ("{x!r}", r"the template's \{x!r\} has a format the batch does not apply; write \{x\}"),
        ("{x:>10}", r"the template's \{x:>10\} has a format"),
        ("{}", "the template has an empty {}"),
        ("{x", "the template cannot be read"),
        ("x}", "the template cannot be read"),
    ],
)
def test_a_bad_template_is_a_usage_error_before_anything_runs(text: str, error: str) -> None:
    with pytest.raises(UsageError, match=error):
        Template(text)


# -- requests --------------------------------------------------------------------------


def test_json_lines_use_their_prompt_field_and_their_own_settings() -> None:
    spec = RequestSpec("jsonl", model="m0", system="s0", options=(("seed", 1),), cache=True)
    fields = {
        "prompt": "hi",
        "model": "m1",
        "options": {"temperature": 0, "seed": 2},
        "schema": {"type": "object"},
    }
    prepared = prepare(record(fields), spec)
    request = prepared.request
    assert (request.prompt, request.model, request.system) == ("hi", "m1", "s0")
    assert dict(request.options) == {"seed": 2, "temperature": 0}
    assert request.cache is True
    assert prepared.schema == {"type": "object"}
    plain = prepare(record({"prompt": "hi"}), spec).request
    assert (plain.model, plain.system, plain.options) == ("m0", "s0", (("seed", 1),))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"text": "x"}, "line 1 has no field 'prompt' (--field names the text)"),
        ({"prompt": 3}, "line 1: field 'prompt' is not text"),
        ({"prompt": "x", "model": ""}, "line 1: model must be a model name"),
        ({"prompt": "x", "system": 1}, "line 1: system must be text"),
        ({"prompt": "x", "options": [1]}, "line 1: options must be an object"),
        ({"prompt": "x", "options": {"a": 1}}, "line 1: unknown option 'a'"),
        ({"prompt": "x", "options": {"seed": {}}}, "line 1: option 'seed' must be a whole number"),
        ({"prompt": "x", "schema": "no"}, "line 1: schema must be a JSON object"),
    ],
)
def test_a_json_line_that_cannot_make_a_request_says_why(
    fields: dict[str, object], error: str
) -> None:
    with pytest.raises(InputError) as raised:
        prepare(record(fields), RequestSpec("jsonl"))
    assert str(raised.value).startswith(error)


def test_csv_columns_are_data_only() -> None:
    spec = RequestSpec("csv", field="text", model="m0")
    request = prepare(record({"text": "hi", "model": "iPhone 12"}, "row 1"), spec).request
    assert (request.prompt, request.model) == ("hi", "m0")


def test_an_instruction_sends_the_item_as_data() -> None:
    request = prepare(
        record({"line": "bonjour"}), RequestSpec("lines", instruction="Translate")
    ).request
    assert request.prompt == "Translate"
    assert request.attachments == (Attachment("Input", b"bonjour"),)


def test_a_file_is_its_own_prompt_or_data_for_the_instruction() -> None:
    fields = {"path": "notes/a.md", "name": "a.md", "content": b"# notes"}
    alone = prepare(record(fields, "file notes/a.md"), RequestSpec("files")).request
    assert (alone.prompt, alone.attachments) == ("", (Attachment("File notes/a.md", b"# notes"),))
    told = prepare(record(fields), RequestSpec("files", instruction="Summarise")).request
    assert told.prompt == "Summarise"
    templated = prepare(record(fields), RequestSpec("files", template=Template("{path}"))).request
    assert templated.prompt == "notes/a.md"


def test_a_record_that_could_not_be_read_keeps_its_sentence() -> None:
    with pytest.raises(InputError, match=r"^line 3 is not JSON"):
        prepare(record({}, error="line 3 is not JSON (x)"), RequestSpec("jsonl"))


def test_fingerprints_change_with_anything_that_is_sent() -> None:
    spec = RequestSpec("jsonl")
    base = prepare(record({"prompt": "hi"}), spec)
    assert base.fingerprint == prepare(record({"prompt": "hi"}), spec).fingerprint
    assert len(base.fingerprint) == 16
    others = [
        prepare(record({"prompt": "hi!"}), spec),
        prepare(record({"prompt": "hi", "model": "m"}), spec),
        prepare(record({"prompt": "hi", "options": {"seed": 1}}), spec),
        prepare(record({"prompt": "hi", "schema": {}}), spec),
        prepare(record({"prompt": "hi"}), spec._replace(system="s")),
    ]
    assert len({base.fingerprint, *(o.fingerprint for o in others)}) == 6
    a = make_fingerprint(base.request._replace(attachments=(Attachment("x", b"1"),)))
    b = make_fingerprint(base.request._replace(attachments=(Attachment("x", b"2"),)))
    assert a != b
