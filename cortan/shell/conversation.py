"""The conversation the shell is having: turns so far, the current model and system prompt.

A turn is the user's message as it was sent (attachments framed into it) and the
answer, complete or interrupted. A failed answer adds no turn: the conversation
stays as it was, so ``/retry`` can try the same request again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from cortan.core.actions import Asker
from cortan.core.events import ChatCancelled, ChatEnded, ChatFailed, ChatFinished
from cortan.core.images import Image, sniff_image
from cortan.core.messages import Message
from cortan.core.requests import Attachment, ChatRequest, Think


class Turn(NamedTuple):
    user: str
    answer: str
    interrupted: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    thinking: str = ""  # the model's reasoning, kept apart (never sent back)
    images: tuple[Image, ...] = ()  # shown to the model with the user's message


@dataclass
class Conversation:
    """What the next request is sent with."""

    model: str | None = None
    system: str | None = None
    role: str | None = None  # /role NAME: its name, for /role alone to say
    role_options: tuple[tuple[str, object], ...] = ()  # the role's (its temperature)
    set_options: dict[str, object] = field(default_factory=dict)  # /set, chat -o: win
    turns: list[Turn] = field(default_factory=list)
    pending: list[Attachment] = field(default_factory=list)
    last_request: ChatRequest | None = None
    last_added_turn: bool = False
    think: Think = None  # /think: None keeps the configured or the server's default
    last_thinking: str = ""  # /thinking shows it whole
    tools: bool = False  # /tools on|off: the model may call tools (each asked about)
    ask: Asker | None = None  # how a tool call is asked about (None: no terminal)

    def history(self) -> tuple[Message, ...]:
        messages: list[Message] = []
        for turn in self.turns:
            messages.append(Message("user", turn.user, turn.images))
            if turn.answer:
                messages.append(Message("assistant", turn.answer))
        return tuple(messages)

    @property
    def options(self) -> tuple[tuple[str, object], ...]:
        """What the next request is sent with: the role's options, then the user's own."""
        return (*self.role_options, *self.set_options.items())

    def make_request(self, request_id: int, prompt: str) -> ChatRequest:
        """The next request: this prompt, the attachments waiting, the turns so far."""
        request = ChatRequest(
            request_id,
            prompt,
            tuple(self.pending),
            self.model,
            self.system,
            self.history(),
            self.options,
            think=self.think,
            tools=self.tools,
            ask=self.ask,
        )
        self.pending.clear()
        self.last_request = request
        return request

    def record(self, ended: ChatEnded) -> None:
        """Add the turn that just ended (``ended.sent``: the user message as the model saw it)."""
        sent = ended.sent
        if ended.thinking:
            self.last_thinking = ended.thinking
        if isinstance(ended, ChatFailed) and ended.kind == "store":  # shown whole; not saved
            route = (ended.provider or "", ended.model or "")
            ended = ChatFinished(ended.request_id, *route, ended.content, "stop", sent=sent)
        self.last_added_turn = not isinstance(ended, ChatFailed) and sent is not None
        if not self.last_added_turn or sent is None:
            return
        images = self._sent_images()
        if isinstance(ended, ChatFinished):
            usage = ended.usage
            tokens = (usage.prompt_tokens, usage.completion_tokens)
            self.turns.append(Turn(sent, ended.content, False, *tokens, ended.thinking, images))
        elif isinstance(ended, ChatCancelled):
            self.turns.append(
                Turn(sent, ended.content, True, thinking=ended.thinking, images=images)
            )

    def _sent_images(self) -> tuple[Image, ...]:
        """The images the last request carried: they stay in the conversation."""
        if self.last_request is None:
            return ()
        attachments = self.last_request.attachments
        return tuple(Image(mime, a.data) for a in attachments if (mime := sniff_image(a.data)))

    def load_turns(self, turns: list[Turn]) -> None:
        """Replace the turns with stored ones (``/load``, ``--session``).

        The last one counts as just added, so that ``/retry`` replaces the answer
        the recap shows, as it would have in the shell that asked it.
        """
        self.clear()
        self.turns.extend(turns)
        self.last_added_turn = bool(turns)
        self.last_thinking = next((t.thinking for t in reversed(turns) if t.thinking), "")

    def last_prompt(self) -> tuple[str, tuple[Attachment, ...]] | None:
        """What ``/retry`` sends again: the last request, or a loaded conversation's last
        question (stored as the model saw it, files framed in, images apart)."""
        if self.last_request is not None:
            return self.last_request.prompt, self.last_request.attachments
        if not self.turns:
            return None
        last = self.turns[-1]
        return last.user, tuple(
            Attachment(f"image {n}", i.data) for n, i in enumerate(last.images, 1)
        )

    def drop_last_turn(self) -> Turn | None:
        return self.turns.pop() if self.turns else None

    def restore_turn(self, turn: Turn) -> None:
        """Put back the turn ``/retry`` dropped, when no new answer came to replace it."""
        self.turns.append(turn)
        self.last_added_turn = True  # so that another /retry replaces it again

    def clear(self) -> None:
        self.turns.clear()
        self.pending.clear()
        self.last_request = None
        self.last_added_turn = False
        self.last_thinking = ""  # /thinking is this conversation's, as /copy is
