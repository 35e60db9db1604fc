"""Which stored conversation a gateway request goes on with: its thread key.

Layer: store (stdlib ``hashlib``; core's ``Message``). A client of ``cortan serve`` keeps its own
history and sends all of it with every request, so a 20-turn chat in an editor
arrives as 20 requests, and each used to be stored as a conversation of its own
holding only its last question: ``cortan sessions`` showed 20 sessions and none
of them the chat.

The recorder now keys each conversation the gateway stores by what a client
would send to go on with it: a digest of the client's name and every turn so
far (images by their bytes), the answer last stored included. A request whose
history (the turns before its prompt) has that digest continues that
conversation; any other starts one. The system prompt is not in the key: some
editors put the open file or the time in it, so it changes with every request
of one chat; a conversation takes the system prompt of its latest request. The
key is taken (cleared) when a request claims it and set again when its answer
is stored, unless the conversation went on elsewhere meanwhile; any message
added another way (the REPL going on with the conversation) or deleted clears
it. So two requests never interleave in one conversation, and a client never
appends to a conversation that has moved on without it.

The digest frames every field with its length, so no two different conversations
(a turn's text holding what looks like the next turn) share one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cortan.core.messages import Message

_VERSION = b"cortan thread 1"


class Thread:
    """The digests of one request's conversation: before it, and after its answer.

    Built on the store's thread from the request's client, history and prompt with
    what it attached (a gateway request's images); :meth:`key` is
    what the request continues, :meth:`after` what its answer leaves for the next
    request to continue. The history is hashed once. An image counts by its bytes,
    so the prompt's, attached, and the same image in the next request's history,
    carried by its message, give the same key.
    """

    __slots__ = ("_attached", "_hash", "_prompt")

    def __init__(
        self,
        client: str | None,
        history: Iterable[Message],
        prompt: str,
        attached: Sequence[bytes] = (),
    ) -> None:
        self._hash = hashlib.sha256(_VERSION)
        self._prompt, self._attached = prompt, attached
        _add(self._hash, (client or "").encode("utf-8", "surrogatepass"))
        for turn in history:
            _add_turn(self._hash, turn.role, turn.content, [image.data for image in turn.images])

    def key(self) -> bytes:
        """The key of the conversation as it stood before this request."""
        return self._hash.digest()

    def after(self, answer: str) -> bytes:
        """The key once this request's prompt and ``answer`` are part of the conversation."""
        grown = self._hash.copy()
        _add_turn(grown, "user", self._prompt, self._attached)
        _add_turn(grown, "assistant", answer, ())
        return grown.digest()


def _add_turn(digest: hashlib._Hash, role: str, content: str, images: Sequence[bytes]) -> None:
    # A lone surrogate (valid JSON, not UTF-8) still hashes, to itself alone.
    _add(digest, role.encode())
    _add(digest, content.encode("utf-8", "surrogatepass"))
    digest.update(len(images).to_bytes(8, "big"))
    for data in images:
        _add(digest, data)


def _add(digest: hashlib._Hash, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "big"))
    digest.update(data)
