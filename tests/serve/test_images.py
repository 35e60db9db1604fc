"""Images through the gateway: inline, as each API's clients send them, never fetched.

The real ``openai`` and ``ollama`` SDKs send an image to a vision model on the fake
upstream; what reaches the upstream, what is stored and what is refused is checked.
"""

from __future__ import annotations

import base64
from contextlib import closing
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.serve.conftest import TOKEN, Running
from tests.serve.test_streams import ws_chat
from tests.servers import FakeOllama

MODEL = "ollama:llama3.2:latest"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)  # known by its bytes
B64 = base64.b64encode(PNG).decode()
DATA_URL = "data:image/png;base64," + B64


@pytest.fixture
def sighted(ollama_env: FakeOllama) -> FakeOllama:
    ollama_env.capabilities["llama3.2:latest"] = ["completion", "vision"]
    return ollama_env


def openai_client(gateway: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0)


def ollama_client(gateway: Running) -> ollama.Client:
    return ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {TOKEN}"})


def looked_at(text: str = "what is it?") -> list[Any]:
    return [{"type": "text", "text": text}, {"type": "image_url", "image_url": {"url": DATA_URL}}]


def test_an_openai_clients_image_reaches_the_model_and_the_store(
    gateway: Running, sighted: FakeOllama
) -> None:
    client = openai_client(gateway)
    messages: list[Any] = [{"role": "user", "content": looked_at()}]
    reply = client.chat.completions.create(model=MODEL, messages=messages)
    sent = sighted.chat_requests[-1].json["messages"][-1]
    assert (sent["content"], sent["images"]) == ("what is it?", [B64])
    # The next turn carries the image in its history: the same conversation goes on.
    messages += [{"role": "assistant", "content": reply.choices[0].message.content},
                 {"role": "user", "content": "and its colour?"}]  # fmt: skip
    client.chat.completions.create(model=MODEL, messages=messages, stream=False)
    assert sighted.chat_requests[-1].json["messages"][0]["images"] == [B64]
    (conversation,) = gateway.conversations()
    assert conversation.title == "what is it? [image 1]"
    stored = gateway.messages(conversation.id)
    assert [len(m.images) for m in stored] == [1, 0, 0, 0]
    assert stored[0].images[0].data == PNG


def test_an_ollama_clients_images_on_chat_and_generate(
    gateway: Running, sighted: FakeOllama
) -> None:
    with closing(ollama_client(gateway)) as client:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "what?", "images": [PNG]}])
        assert sighted.chat_requests[-1].json["messages"][-1]["images"] == [B64]
        answer = client.generate(MODEL, "and this?", images=[PNG, PNG])
        assert answer.response == "Hello, world!"
        assert sighted.chat_requests[-1].json["messages"][-1]["images"] == [B64, B64]
        # An image alone is a prompt: the model is asked about it.
        client.generate(MODEL, "", images=[PNG])
        assert sighted.chat_requests[-1].json["messages"][-1]["images"] == [B64]
        shown = client.show(MODEL)
        assert shown.capabilities == ["completion", "vision"]


def test_an_image_to_a_model_that_cannot_see_is_refused_before_sending(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        openai_client(gateway).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": looked_at()}]
        )
    assert "cannot see images" in raised.value.message
    # An image further back in the history is the model's to see too.
    history: Any = [{"role": "user", "content": looked_at("this?")},
                    {"role": "assistant", "content": "a cat"},
                    {"role": "user", "content": "and now?"}]  # fmt: skip
    with pytest.raises(openai.BadRequestError, match="cannot see images"):
        openai_client(gateway).chat.completions.create(model=MODEL, messages=history)
    assert ollama_env.chat_requests == []


def refused(gateway: Running, messages: list[Any], path: str = "/v1/chat/completions") -> str:
    reply = httpx.post(
        gateway.url + path,
        json={"model": MODEL, "messages": messages, "stream": False},
        headers=gateway.headers,
    )
    assert reply.status_code == 400, reply.text
    body = reply.json()
    return str(body["error"]["message"] if isinstance(body["error"], dict) else body["error"])


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        (
            "https://example.invalid/cat.png",
            "is a URL to fetch ('https://example.invalid/cat.png')",
        ),
        ("file:///etc/passwd", "fetches nothing a request names"),
        ("data:image/png,rawbytes", "a data: URL that is not base64"),
        ("data:image/png;base64,@@@", "is not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"#!/bin/sh").decode(), "is not a PNG"),
    ],
)
def test_an_image_url_is_never_fetched_and_a_bad_one_is_named(
    gateway: Running, sighted: FakeOllama, url: str, sentence: str
) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    message = refused(gateway, [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}])
    assert "message 1's content part 2" in message and sentence in message
    assert sighted.chat_requests == []


def test_bad_images_on_the_ollama_api_are_refused(gateway: Running, sighted: FakeOllama) -> None:
    cases: list[tuple[Any, str]] = [
        ({"role": "user", "content": "x", "images": "abc"}, "must be a list of base64 strings"),
        ({"role": "user", "content": "x", "images": [1]}, "image 1 must be a base64 string"),
        ({"role": "user", "content": "x", "images": ["%%%"]}, "image 1 is not valid base64"),
        ({"role": "user", "content": "x", "images": [base64.b64encode(b"GIF8").decode()]},
         "image 1 is not a PNG, JPEG, WebP or GIF image"),
        ({"role": "assistant", "content": "x", "images": [B64]},
         "only a user's message can carry images"),
    ]  # fmt: skip
    for message, sentence in cases:
        said = refused(gateway, [message, {"role": "user", "content": "y"}], "/api/chat")
        assert sentence in said, (message, said)
    assert sighted.chat_requests == []


def test_an_image_over_max_image_bytes_is_refused(
    gateway_factory: Any, sighted: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTAN_MAX_IMAGE_BYTES", "1024")
    running: Running = gateway_factory()
    big = "data:image/png;base64," + base64.b64encode(PNG + bytes(2000)).decode()
    part = {"type": "image_url", "image_url": {"url": big}}
    message = refused(running, [{"role": "user", "content": [part]}])
    assert "image 1 is an image of" in message and "max_image_bytes" in message
    assert sighted.chat_requests == []


def test_a_websocket_chat_carries_images_as_either_api_writes_them(
    gateway: Running, sighted: FakeOllama
) -> None:
    messages = [
        {"role": "user", "content": "first", "images": [B64]},
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": looked_at("and this?")},
    ]
    events = ws_chat(gateway, [{"type": "chat", "id": "c", "model": MODEL, "messages": messages}])
    assert events[-1]["status"] == "finished"
    sent = sighted.chat_requests[-1].json["messages"]
    assert [m.get("images") for m in sent] == [[B64], None, [B64]]


def test_too_many_images_are_refused_before_any_is_decoded(
    gateway_factory: Any, sighted: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: a million "/9j/" (three bytes a JPEG sniff accepts) in 8 MB held the
    # event loop, and every other client, for 10 s, then went upstream and into the store.
    monkeypatch.setenv("CORTAN_SERVE__MAX_IMAGES", "3")
    running: Running = gateway_factory()
    messages = [{"role": "user", "content": "x", "images": ["/9j/"] * 2},
                {"role": "user", "content": looked_at() + looked_at()}]  # fmt: skip
    reply = httpx.post(
        running.url + "/api/chat",
        json={"model": MODEL, "messages": messages, "stream": False},
        headers=running.headers,
    )
    assert reply.status_code == 413
    assert reply.json()["error"] == (
        "the conversation has 4 images, over the gateway's limit of 3 (setting serve.max_images)"
    )
    assert sighted.chat_requests == []


def test_base64_as_ollama_and_browsers_read_it(gateway: Running, sighted: FakeOllama) -> None:
    wrapped = base64.encodebytes(PNG * 4).decode()  # 76-character lines, as MIME writes it
    unpadded = base64.b64encode(PNG + b"x").decode().rstrip("=")
    urlsafe = base64.urlsafe_b64encode(PNG + b"\xfb\xff").decode()
    assert ("\n" in wrapped and "-" in urlsafe) or "_" in urlsafe
    for given, data in ((wrapped, PNG * 4), (unpadded, PNG + b"x"), (urlsafe, PNG + b"\xfb\xff")):
        message = {"role": "user", "content": "what?", "images": [given]}
        httpx.post(
            gateway.url + "/api/chat",
            json={"model": MODEL, "messages": [message], "stream": False},
            headers=gateway.headers,
        ).raise_for_status()
        sent = sighted.chat_requests[-1].json["messages"][-1]["images"]
        assert base64.b64decode(sent[0]) == data


def test_an_earlier_turns_image_is_held_to_max_image_bytes_too(
    gateway_factory: Any, sighted: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CORTAN_MAX_IMAGE_BYTES", "1024")
    running: Running = gateway_factory()
    big = base64.b64encode(PNG + bytes(2000)).decode()
    earlier = [
        {"role": "user", "content": "this?", "images": [big]},
        {"role": "assistant", "content": "a cat"},
        {"role": "user", "content": "now?"},
    ]
    message = refused(running, earlier, "/api/chat")
    assert message == (
        "message 1 of the conversation holds an image of 1.99 KiB, over the 1 KiB limit "
        "(setting max_image_bytes)"
    )
    just_over = base64.b64encode(PNG + bytes(1024 - len(PNG) + 1)).decode()
    said = refused(running, [{"role": "user", "content": "x", "images": [just_over]}], "/api/chat")
    assert "image 1 is an image of 1,025 bytes, over the 1,024-byte limit" in said
    assert sighted.chat_requests == []


def test_a_fallback_that_cannot_see_is_not_sent_the_image(
    gateway_factory: Any, sighted: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: the model asked for missing on its server (so what it can do unknown), the
    # image went to a fallback whose server said it cannot see, and the client had its
    # answer as if there were no image.
    monkeypatch.setenv("CORTAN_FALLBACK", '["ollama:blind:latest", "ollama:sees:latest"]')
    sighted.models += ["blind:latest", "sees:latest"]
    sighted.capabilities["blind:latest"] = ["completion"]
    sighted.capabilities["sees:latest"] = ["completion", "vision"]
    running: Running = gateway_factory()
    reply = httpx.post(
        running.url + "/api/chat",
        json={"model": "ollama:gone:latest", "stream": False,
              "messages": [{"role": "user", "content": "q", "images": [B64]}]},
        headers=running.headers, timeout=30,
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert [r.json["model"] for r in sighted.chat_requests] == ["gone:latest", "sees:latest"]
