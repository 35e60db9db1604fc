"""The input validator: the first stop of every prompt, before anything leaves the machine.

It rejects what no model should be sent (an empty prompt, binary data,
undecodable bytes, input past the size limit), each with one sentence naming
what was wrong and where, and passes everything else on normalised: decoded,
line endings unified, control characters other than newline and tab removed.

The secret guard is part of it: a request bound for a provider that is not local
(``ProviderConfig.is_local``) is scanned (:mod:`cortan.engine.secrets`), prompt and
attachments, and refused with a ``ChatFailed`` of kind ``secret`` naming what was
found and where, unless the request says ``allow_secrets`` (``cortan ask
--allow-secrets``, or the REPL after the user confirmed). Where a request may go is
asked of a ``find_remote`` callable that the composition root passes in; it must
count every model of the fallback chain (:func:`find_remote_provider`), since a
fallback from a local model to a remote one takes the prompt along.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING

from cortan.engine.bus import EventBus
from cortan.engine.events import (
    Attachment,
    ChatFailed,
    ChatRequested,
    ChatValidated,
    TextAttachment,
)
from cortan.errors import CortanError, InputError

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig
    from cortan.engine.routes import Router
    from cortan.engine.secrets import Finding

log = logging.getLogger(__name__)

#: The first provider a request may reach that is not local, or None.
FindRemote = Callable[[ChatRequested], str | None]

# C0 controls but \t and \n, DEL, and C1 controls: never meaningful in a prompt.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def format_size(n: int) -> str:
    """Sizes for humans: 1 MiB, 512 KiB, 10 bytes."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} bytes"


def decode_text(data: bytes, label: str) -> str:
    """Decode ``data`` as text (UTF-8, or UTF-16/32 when a BOM says so) or refuse it."""
    encoding = next((enc for bom, enc in BOMS if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in data:
        raise InputError(f"{label} looks like binary data (it contains NUL bytes); send text only")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid {encoding.upper().removesuffix('-SIG')} text "
            f"(byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from None
    if "\x00" in text:
        raise InputError(f"{label} looks like binary data (it contains NUL characters)")
    return text


def check_unicode(text: str, label: str) -> str:
    """Refuse lone surrogates: what Python makes of bytes in argv that are not UTF-8.

    They cannot be encoded for the wire, and would otherwise fail much later as a
    reply cortan "cannot parse".
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        byte = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise InputError(
            f"{label} is not valid UTF-8 text ({byte} at character {exc.start + 1}); "
            "check the terminal's or the script's encoding"
        ) from None
    return text


def clean_text(text: str) -> str:
    """Unify line endings and drop control characters other than newline and tab."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CONTROL_CHARS.sub("", text)


class SecretFoundError(InputError):
    """The request holds what looks like a secret and is bound for a remote provider."""

    kind = "secret"

    def __init__(self, findings: list[Finding], provider: str) -> None:
        from cortan.engine.secrets import describe

        them = "it" if len(findings) == 1 else "them"
        super().__init__(
            f"{describe(findings)}, and provider {provider!r} is not local; "
            f"pass --allow-secrets to send {them} anyway"
        )
        self.findings = findings
        self.provider = provider


class InputValidator:
    """Checks each ChatRequested; publishes ChatValidated or ChatFailed.

    ``find_remote`` says where a request may go (see the module docstring); without
    it nothing is scanned, as when every provider is local.
    """

    def __init__(
        self, bus: EventBus, *, max_bytes: int, find_remote: FindRemote | None = None
    ) -> None:
        self._bus = bus
        self.max_bytes = max_bytes
        self._find_remote = find_remote
        bus.subscribe(ChatRequested, self.on_requested)

    async def on_requested(self, event: ChatRequested) -> None:
        try:
            validated = self.validate(event)
        except InputError as exc:
            kind = exc.kind if isinstance(exc, SecretFoundError) else "input"
            await self._bus.publish(ChatFailed(event.request_id, kind, str(exc)))
            return
        await self._bus.publish(validated)

    def validate(self, event: ChatRequested) -> ChatValidated:
        """Decode and clean the request, or raise InputError with the reason."""
        self._check_size(event)
        attachments = tuple(self._decode(a) for a in event.attachments)
        prompt = clean_text(check_unicode(event.prompt, "the prompt"))
        check_unicode(event.system or "", "the system prompt")
        attachments = tuple(a for a in attachments if a.text.strip())
        if not prompt.strip() and not attachments:
            raise InputError("the prompt is empty: give a question, or pipe text in")
        validated = ChatValidated(event, prompt.strip(), attachments)
        if not event.allow_secrets:
            self._check_secrets(validated)
        return validated

    def find_secrets(self, event: ChatRequested) -> list[Finding]:
        """What looks like a secret in ``event``, if it is bound for a remote provider.

        For the REPL, which asks the user before sending, then publishes the request
        again with ``allow_secrets=True``. Input the validator would refuse anyway
        (binary, too large) has no findings.
        """
        try:
            validated = self.validate(event._replace(allow_secrets=True))
        except InputError:
            return []
        return self._scan(validated)[0]

    def _check_secrets(self, validated: ChatValidated) -> None:
        findings, provider = self._scan(validated)
        if findings:
            raise SecretFoundError(findings, provider or "?")

    def _scan(self, validated: ChatValidated) -> tuple[list[Finding], str | None]:
        provider = self._get_remote(validated.request)
        if provider is None:
            return [], None
        # Imported here: compiling the patterns is wasted on requests that stay local.
        from cortan.engine.secrets import scan

        findings = scan(validated.prompt, "the prompt")
        if validated.request.system:
            findings += scan(validated.request.system, "the system prompt")
        for attachment in validated.attachments:
            findings += scan(attachment.text, get_source_name(attachment.label))
        return findings, provider

    def _get_remote(self, event: ChatRequested) -> str | None:
        if self._find_remote is None:
            return None
        try:
            return self._find_remote(event)
        except Exception:  # a broken route must not open the guard: scan as if remote
            log.debug("cannot tell where request %d goes", event.request_id, exc_info=True)
            return event.model or "the configured model"

    def _check_size(self, event: ChatRequested) -> None:
        total = len(event.prompt.encode("utf-8", "surrogatepass"))
        total += sum(len(a.data) for a in event.attachments)
        if total > self.max_bytes:
            raise InputError(
                f"the input is {format_size(total)}, over the {format_size(self.max_bytes)} "
                f"limit (setting max_input_bytes)"
            )

    @staticmethod
    def _decode(attachment: Attachment) -> TextAttachment:
        text = clean_text(decode_text(attachment.data, attachment.label))
        return TextAttachment(attachment.label, text)


def get_source_name(label: str) -> str:
    """How a finding names an attachment: ``stdin``, ``file notes.txt``."""
    if label.startswith("File "):
        return "file " + label.removeprefix("File ")
    return label.removeprefix("Input from ")


def find_remote_provider(
    router: Router, providers: Mapping[str, ProviderConfig], event: ChatRequested
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


def _get_chain_providers(router: Router, event: ChatRequested) -> list[str]:
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
