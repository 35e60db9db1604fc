"""Which stored conversation a gateway request goes on with: its thread key.

Layer: store (stdlib ``hashlib`` only). A client of ``cortan serve`` keeps its own
history and sends all of it with every request, so a 20-turn chat in an editor
arrives as 20 requests, and each used to be stored as a conversation of its own
holding only its last question: ``cortan sessions`` showed 20 sessions and none
of them the chat.

The recorder now keys each conversation the gateway stores by what a client
would send to go on with it: a digest of the client's name, the system prompt
and every turn so far, the answer last stored included. A request whose
history (the turns before its prompt) has that digest continues that
conversation; any other starts one, with the history it brought stored first,
so that each conversation reads as the model was asked. The key is taken
(cleared) when a request claims it and set again when its answer is stored, and
any message added another way (the REPL going on with the conversation) clears
it, so two requests can never interleave in one conversation, and a client can
never append to a conversation that has moved on without it.

The digest frames every field with its length, so no two different conversations
(a turn's text holding what looks like the next turn) share one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_VERSION = b"cortan thread 1"


class Thread:
    """The digests of one request's conversation: before it, and after its answer.

    Built on the store's thread from the request's client, system prompt, history
    and prompt; :meth:`key` is what the request continues, :meth:`after` what its
    answer leaves for the next request to continue. The history is hashed once.
    """

    __slots__ = ("_hash", "_prompt")

    def __init__(
        self,
        client: str | None,
        system: str | None,
        history: Iterable[tuple[str, str]],
        prompt: str,
    ) -> None:
        self._hash = hashlib.sha256(_VERSION)
        self._prompt = prompt
        _add(self._hash, client or "")
        _add(self._hash, system or "")
        for role, content in history:
            _add(self._hash, role)
            _add(self._hash, content)

    def key(self) -> bytes:
        """The key of the conversation as it stood before this request."""
        return self._hash.digest()

    def after(self, answer: str) -> bytes:
        """The key once this request's prompt and ``answer`` are part of the conversation."""
        grown = self._hash.copy()
        for field in ("user", self._prompt, "assistant", answer):
            _add(grown, field)
        return grown.digest()


def _add(digest: hashlib._Hash, text: str) -> None:
    # A lone surrogate (valid JSON, not UTF-8) still hashes, to itself alone.
    data = text.encode("utf-8", "surrogatepass")
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
