"""A client's conversation, sent whole with every request, is stored as one conversation.

Driven as editors and scripts drive the gateway: the real ``openai`` and ``ollama`` SDKs
and a WebSocket client send the history they keep, answers as they had them back; the
store is then read as ``cortan sessions`` reads it.
"""

from __future__ import annotations

import json
import threading
from contextlib import closing
from typing import Any

import httpx
import ollama
import openai

from cortan.store.sessions import SessionStore
from tests.conftest import wait_until
from tests.serve.conftest import TOKEN, Running
from tests.serve.test_streams import ws_chat
from tests.servers import FakeOllama, Reply

MODEL = "ollama:llama3.2:latest"


def chat_openai(gateway: Running, questions: list[str], **headers: str) -> list[str]:
    """A chat of several turns as an editor has it: each request the whole history."""
    client = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key=TOKEN, max_retries=0, default_headers=headers
    )
    messages: list[Any] = [{"role": "system", "content": "Be brief."}]
    ids = []
    for question in questions:
        messages.append({"role": "user", "content": question})
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
        ids.append(raw.headers["x-request-id"])
        messages.append({"role": "assistant", "content": raw.parse().choices[0].message.content})
    return ids


def turns(gateway: Running, conversation_id: int) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in gateway.messages(conversation_id)]


def test_a_chat_of_three_turns_is_one_conversation(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    for text in ("one", "two", "three"):
        ollama_env.queue(Reply(pieces=[f"answer {text}"]))
    ids = chat_openai(gateway, ["first", "second", "third"])
    (conversation,) = gateway.conversations()
    assert turns(gateway, conversation.id) == [
        ("user", "first"), ("assistant", "answer one"),
        ("user", "second"), ("assistant", "answer two"),
        ("user", "third"), ("assistant", "answer three"),
    ]  # fmt: skip
    assert conversation.system == "Be brief." and conversation.title == "first"
    assert conversation.request_id == ids[0]  # the request that started it
    # Each message names the request it came in with; any of them finds the conversation.
    assert [m.request_id for m in gateway.messages(conversation.id)] == [
        ids[0], ids[0], ids[1], ids[1], ids[2], ids[2]
    ]  # fmt: skip
    assert gateway.data_dir is not None
    with SessionStore.open(gateway.data_dir) as store:
        for request_id in ids:
            found = store.find(request_id)
            assert found is not None and found.id == conversation.id


def test_the_ollama_sdk_streaming_and_the_websocket_go_on_too(gateway: Running) -> None:
    with closing(
        ollama.Client(host=gateway.url, headers={"Authorization": f"Bearer {TOKEN}"})
    ) as client:
        history: list[Any] = [{"role": "user", "content": "first"}]
        parts = list(client.chat(model=MODEL, messages=history, stream=True))
        history.append(
            {"role": "assistant", "content": "".join(p.message.content or "" for p in parts)}
        )
        history.append({"role": "user", "content": "second"})
        client.chat(model=MODEL, messages=history)
    (conversation,) = gateway.conversations()
    assert [m for m, _ in turns(gateway, conversation.id)] == ["user", "assistant"] * 2
    # WebSocket chats go on the same way (a conversation of their own: another client).
    chat = {"type": "chat", "id": "c", "model": MODEL, "messages": history[:1]}
    ws_chat(gateway, [chat])
    history[1:] = [
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "3"},
    ]
    events = ws_chat(gateway, [{**chat, "messages": history}])
    assert events[-1]["status"] == "finished"
    ws_conversation = gateway.conversations()[0]
    assert ws_conversation.id != conversation.id and ws_conversation.client.startswith("websocket")
    assert [m for m, _ in turns(gateway, ws_conversation.id)] == ["user", "assistant"] * 2


def test_a_system_prompt_that_changes_each_time_is_still_one_conversation(
    gateway: Running, cortan: Any
) -> None:
    # Some editors put the open file or the time in it, so it changes with every request.
    history: list[Any] = []
    for turn in range(4):
        history.append({"role": "user", "content": f"question {turn}"})
        post(gateway, [{"role": "system", "content": f"at {turn}"}, *history])
        history.append({"role": "assistant", "content": "Hello, world!"})
    (conversation,) = gateway.conversations()
    assert conversation.message_count == 8 and conversation.system == "at 3"  # the latest
    gateway.commit()
    logged = cortan.run("logs", "-n", "10", "--json")
    assert logged.code == 0, logged.stderr
    asked = [m["content"] for m in json.loads(logged.stdout) if m["role"] == "user"]
    assert asked == ["question 3", "question 2", "question 1", "question 0"]


def test_a_first_request_with_history_stores_its_own_exchange(gateway: Running) -> None:
    # The client keeps the history; storing every copy of it cost a client whose history
    # never matched (a few-shot script) the store's size many times over.
    messages = [
        {"role": "user", "content": "earlier question"},
        {"role": "assistant", "content": "earlier answer"},
        {"role": "user", "content": "now"},
    ]
    post(gateway, messages)
    post(gateway, [*messages, {"role": "assistant", "content": "Hello, world!"},
                   {"role": "user", "content": "then"}])  # fmt: skip
    (conversation,) = gateway.conversations()
    assert turns(gateway, conversation.id) == [
        ("user", "now"), ("assistant", "Hello, world!"),
        ("user", "then"), ("assistant", "Hello, world!"),
    ]  # fmt: skip


def post(gateway: Running, messages: list[Any], **headers: str) -> httpx.Response:
    reply = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": MODEL, "messages": messages},
        headers={**gateway.headers, **headers},
        timeout=10,
    )
    reply.raise_for_status()
    return reply


FIRST: list[Any] = [{"role": "user", "content": "first"}]
GO_ON: list[Any] = [*FIRST, {"role": "assistant", "content": "Hello, world!"}]


def test_what_differs_starts_a_conversation_of_its_own(gateway: Running) -> None:
    post(gateway, FIRST)
    # Another client, an edited answer: neither is this conversation.
    post(gateway, [*GO_ON, {"role": "user", "content": "a"}], **{"X-Cortan-Client": "other"})
    edited = [*FIRST, {"role": "assistant", "content": "Hello, world"}]
    post(gateway, [*edited, {"role": "user", "content": "c"}])
    assert len(gateway.conversations()) == 3
    # The conversation itself still goes on with its own next turn.
    post(gateway, [*GO_ON, {"role": "user", "content": "d"}])
    counts = sorted(c.message_count for c in gateway.conversations())
    assert counts == [2, 2, 4]


def test_two_requests_with_one_history_at_once_do_not_interleave(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    post(gateway, FIRST)
    ollama_env.queue(Reply(pieces=["slow ", "one"], delay=0.3))
    ollama_env.queue(Reply(pieces=["slow ", "two"], delay=0.3))
    threads = [
        threading.Thread(target=post, args=(gateway, [*GO_ON, {"role": "user", "content": q}]))
        for q in ("A", "B")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    conversations = gateway.conversations()
    assert len(conversations) == 2
    stored = sorted((turns(gateway, c.id) for c in conversations), key=len)
    # One went on with the conversation; the other is a conversation of its own.
    assert stored[1][:2] == GO_ON_TURNS
    assert sorted([stored[0][0][1], stored[1][2][1]]) == ["A", "B"]
    assert [len(t) for t in stored] == [2, 4] and stored[0][1][1].startswith("slow ")


GO_ON_TURNS = [("user", "first"), ("assistant", "Hello, world!")]


def test_a_failed_answer_is_tried_again_in_the_same_conversation(
    gateway: Running, ollama_env: FakeOllama
) -> None:
    post(gateway, FIRST)
    ollama_env.queue(Reply(status=400, error="the model refused"))
    question = [*GO_ON, {"role": "user", "content": "again?"}]
    failed = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": MODEL, "messages": question},
        headers=gateway.headers,
    )
    assert failed.status_code >= 400
    post(gateway, question)  # the client tries again, with the history it had
    (conversation,) = gateway.conversations()
    stored = gateway.messages(conversation.id)
    assert [(m.content, m.status) for m in stored[2:]] == [
        ("again?", "complete"), ("", "failed"), ("again?", "complete"),
        ("Hello, world!", "complete"),
    ]  # fmt: skip


def test_a_conversation_gone_on_with_elsewhere_is_not_appended_to(gateway: Running) -> None:
    post(gateway, FIRST)
    (conversation,) = gateway.conversations()
    gateway.commit()
    assert gateway.data_dir is not None
    # The terminal goes on with it (`cortan chat --session 1`): the client's copy is behind.
    with SessionStore.open(gateway.data_dir) as store:
        store.add_message(conversation.id, "user", "from the terminal")
    post(gateway, [*GO_ON, {"role": "user", "content": "from the editor"}])
    assert len(gateway.conversations()) == 2
    assert turns(gateway, conversation.id)[-1] == ("user", "from the terminal")


def test_a_conversation_gone_on_with_while_answering_is_not_the_clients(
    gateway: Running, ollama_env: FakeOllama, cortan: Any
) -> None:
    post(gateway, FIRST)
    ollama_env.queue(Reply(pieces=["slow "] * 8 + ["answer"], delay=0.5))
    question = [*GO_ON, {"role": "user", "content": "second"}]
    asking = threading.Thread(target=post, args=(gateway, question))
    asking.start()
    assert wait_until(lambda: len(ollama_env.chat_requests) == 2)
    gateway.commit()
    done = cortan.run("ask", "--session", "1", "from the terminal")  # meanwhile
    assert done.code == 0, done.stderr
    asking.join(10)
    slow = "slow " * 8 + "answer"
    assert [t[1] for t in turns(gateway, 1)][2:] == [
        "second", "from the terminal", "Hello, world!", slow
    ]  # fmt: skip
    post(gateway, [*question, {"role": "assistant", "content": slow},
                   {"role": "user", "content": "third"}])  # fmt: skip
    assert len(gateway.conversations()) == 2


def test_a_message_deleted_from_the_log_ends_the_clients_thread(
    gateway: Running, cortan: Any
) -> None:
    post(gateway, FIRST)
    gateway.commit()
    answer = gateway.messages(1)[-1].id
    assert cortan.run("logs", "rm", str(answer), "--yes").code == 0
    post(gateway, [*GO_ON, {"role": "user", "content": "second"}])
    assert len(gateway.conversations()) == 2  # not a question after a question


def test_a_request_id_sent_twice_is_said_to_be_in_both(gateway: Running, cortan: Any) -> None:
    # Before: `sessions show` printed the newer and said nothing of the other.
    post(gateway, FIRST, **{"X-Request-ID": "job-7"})
    post(gateway, [{"role": "user", "content": "other"}], **{"X-Request-ID": "job-7"})
    gateway.commit()
    shown = cortan.run("sessions", "show", "job-7")
    assert shown.code == 0 and "\nother\n" in shown.stdout
    assert "request job-7 is also in 1 other conversation (#1): this is the newest" in shown.stderr
    assert "is also in" not in cortan.run("sessions", "show", "2").stderr
