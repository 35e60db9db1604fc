"""The guard: the first stage of every request, before anything leaves the machine.

Layer: engine. ``Chat.run`` calls :meth:`Guard.check` first. It rejects what no
model should be sent (an empty prompt, binary data, undecodable bytes, input past
the size limit), each with one sentence naming what was wrong and where, and passes
everything else on normalised: decoded, line endings unified, control characters
other than newline and tab removed.

The secret check is part of it: a request bound for a provider that is not local
(``ProviderConfig.is_local``) is scanned (:mod:`cortan.engine.secrets`), prompt and
attachments, and refused with a :class:`SecretFoundError` (the request ends failed,
kind ``secret``) naming what was found and where, unless the request says
``allow_secrets`` (``cortan ask --allow-secrets``, or the REPL after the user
confirmed). The earlier turns of the conversation are scanned too, whoever sent
them: a turn that went to a local model unscanned (or came from an outside program,
``ChatRequest.client``, the gateway's) goes out again with a continuation on a
remote one (issue 15).
Where a request may go is asked of a ``find_remote`` callable that the
composition root passes in; it must count every model of the fallback chain
(:func:`find_remote_provider`), since a fallback from a local model to a remote one
takes the prompt along."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, NamedTuple

from cortan.core.errors import CortanError, InputError
from cortan.core.images import Image, sniff_image
from cortan.core.requests import Attachment, ChatRequest, TextAttachment, source_name
from cortan.core.text import check_unicode, clean_text, decode_text, format_size

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig
    from cortan.engine.routes import Router
    from cortan.engine.secrets import Finding

log = logging.getLogger(__name__)

#: The first provider a request may reach that is not local, or None.
FindRemote = Callable[[ChatRequest], str | None]


#: How a secret refusal ends: the command-line way past it (the REPL asks instead).
HINT = "; pass --allow-secrets to send anyway"


class Checked(NamedTuple):
    """A request the guard let through: its prompt and attachments decoded and cleaned."""

    request: ChatRequest
    prompt: str
    attachments: tuple[TextAttachment, ...]
    images: tuple[Image, ...] = ()  # attachments whose bytes are an image


class SecretFoundError(InputError):
    """The request holds what looks like a secret and is bound for a remote provider."""

    kind = "secret"

    def __init__(self, findings: list[Finding], provider: str) -> None:
        from cortan.engine.secrets import describe

        super().__init__(f"{describe(findings)}, and provider {provider!r} is not local{HINT}")
        self.findings = findings
        self.provider = provider


class Guard:
    """Checks each request before it is composed and sent.

    ``find_remote`` says where a request may go (see the module docstring); without
    it nothing is scanned, as when every provider is local.
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        find_remote: FindRemote | None = None,
        max_image_bytes: int = 20 << 20,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_image_bytes = max_image_bytes
        self._find_remote = find_remote

    def check(self, event: ChatRequest) -> Checked:
        """Decode and clean the request, or raise InputError with the reason."""
        images = tuple(self._image(a) for a in event.attachments if sniff_image(a.data))
        texts = [a for a in event.attachments if not sniff_image(a.data)]
        for number, message in enumerate(event.history, 1):  # a gateway client's earlier
            for image in message.images:  # turns: held as the prompt's are
                self._check_image(
                    len(image.data), f"message {number} of the conversation holds an image"
                )
        self._check_size(event.prompt, texts)
        attachments = tuple(self._decode(a) for a in texts)
        prompt = clean_text(check_unicode(event.prompt, "the prompt"))
        if event.system is not None:  # cleaned as the prompt is: what is scanned is what goes
            event = event._replace(
                system=clean_text(check_unicode(event.system, "the system prompt"))
            )
        attachments = tuple(a for a in attachments if a.text.strip())
        if not prompt.strip() and not attachments and not images:
            raise InputError("the prompt is empty: give a question, or pipe text in")
        validated = Checked(event, prompt.strip(), attachments, images)
        if not event.allow_secrets:
            self._check_secrets(validated)
        return validated

    def _check_secrets(self, validated: Checked) -> None:
        findings, provider = self._scan(validated)
        if findings:
            raise SecretFoundError(findings, provider or "?")

    def _scan(self, validated: Checked) -> tuple[list[Finding], str | None]:
        provider = self._get_remote(validated.request)
        if provider is None:
            return [], None
        # Imported here: compiling the patterns is wasted on requests that stay local.
        from cortan.engine.secrets import scan

        findings = scan(validated.prompt, "the prompt")
        if validated.request.system:
            findings += scan(validated.request.system, "the system prompt")
        for attachment in validated.attachments:
            findings += scan(attachment.text, source_name(attachment.label))
        # Earlier turns go out again: they may have gone to a local model unscanned, or
        # come from an outside program that never went through this guard.
        for number, message in enumerate(validated.request.history, 1):
            findings += scan(message.content, f"message {number} of the conversation")
        return findings, provider

    def _get_remote(self, event: ChatRequest) -> str | None:
        if self._find_remote is None:
            return None
        try:
            return self._find_remote(event)
        except Exception:  # a broken route must not open the guard: scan as if remote
            log.debug("cannot tell where request %d goes", event.request_id, exc_info=True)
            return event.model or "the configured model"

    def _image(self, attachment: Attachment) -> Image:
        """An image attachment, within its own size limit (images dwarf text)."""
        self._check_image(len(attachment.data), f"{source_name(attachment.label)} is an image")
        return Image(sniff_image(attachment.data) or "", attachment.data)

    def _check_image(self, size: int, what: str) -> None:
        if size <= self.max_image_bytes:
            return
        shown, limit = format_size(size), format_size(self.max_image_bytes)
        if shown == limit:  # "1 KiB, over the 1 KiB limit" said nothing
            shown, limit = f"{size:,} bytes", f"{self.max_image_bytes:,}-byte"
        raise InputError(f"{what} of {shown}, over the {limit} limit (setting max_image_bytes)")

    def _check_size(self, prompt: str, attachments: list[Attachment]) -> None:
        total = len(prompt.encode("utf-8", "surrogatepass"))
        total += sum(len(a.data) for a in attachments)
        if total > self.max_bytes:
            raise InputError(
                f"the input is {format_size(total)}, over the {format_size(self.max_bytes)} "
                f"limit (setting max_input_bytes)"
            )

    @staticmethod
    def _decode(attachment: Attachment) -> TextAttachment:
        text = clean_text(decode_text(attachment.data, attachment.label))
        return TextAttachment(attachment.label, text)


def find_remote_provider(
    router: Router, providers: Mapping[str, ProviderConfig], event: ChatRequest
) -> str | None:
    """The first provider of ``event``'s fallback chain that is not local, or None.

    A name that does not resolve fails the request later, in the model manager; the
    guard still looks at every part of the chain it can resolve, to stay on the safe side.
    """
    for name in _get_chain_providers(router, event):
        config = providers.get(name)
        if config is None or not config.is_local():
            return name
    return None


def _get_chain_providers(router: Router, event: ChatRequest) -> list[str]:
    with suppress(CortanError):
        chain = router.get_chain(event.model, fallback=event.allow_fallback)
        return [route.provider for route in chain]
    names: list[str | None] = [event.model]
    if event.allow_fallback:
        with suppress(CortanError):
            names.extend(router.get_fallbacks(event.model))
    found: list[str] = []
    for name in names:
        with suppress(CortanError):
            found.append(router.resolve(name).provider)
    return found
