"""Every error cortan reports to a user, as one tree.

Library exceptions are mapped into this tree at the provider boundary and nowhere
else; everything above that boundary only ever sees these classes. Each carries
the one sentence a user reads (``str(error)``) and the exit code the CLI returns.

    * CortanError                   exit 1 unless noted
      + UsageError                  exit 2: a flag or argument that makes no sense
      + ConfigError                 exit 2: a bad config file or CORTAN_* variable
      + InputError                  rejected input: empty, binary, undecodable, too large
        - SecretFoundError          a likely secret bound for a remote provider (engine/guard.py)
        - CapabilityError           the model cannot take what was sent (images, say)
      + StoreError                  the session store cannot be opened or written
        - StoreLockedError          another process held it locked past the busy timeout
      + KeyringError                no usable OS keyring, or it refused
      + BusyError                   the gateway cannot take a request now; ``retry_after`` seconds
      + ToolError                   a tool or an MCP server failed; the tool loop ran out of time
      + ObserverError               the answer could not be shown or saved (engine/bus.py)
        - OutputClosedError         exit 141: the reader of stdout went away (`| head`)
      + ProviderError               a backend failed; ``kind`` names how
        - UnreachableError          connection refused, DNS, reset before an answer
        - ProviderTimeoutError      connect, first-token or total deadline passed
        - AuthError                 a missing or rejected API key
        - ModelNotFoundError        the model does not exist (or is not pulled)
        - RateLimitedError          HTTP 429, with ``retry_after`` when the server said
        - ServerError               5xx, an error mid-stream, a connection cut mid-answer
        - BadResponseError          a reply cortan cannot parse
        - BadRequestError           the server refused the request itself (4xx)
"""

from __future__ import annotations

from typing import TypeGuard


class CortanError(Exception):
    """Base of the tree: ``str(error)`` is the sentence shown to the user.

    ``kind`` is the stable name scripts read (``--json``'s ``error.kind``); every
    kind is listed in docs/scripting.md, and a test holds the list to this tree.
    """

    exit_code = 1
    kind = "error"


class UsageError(CortanError):
    """The command line asks for something impossible."""

    exit_code = 2
    kind = "usage"


class ConfigError(CortanError):
    """A configuration source holds a value cortan cannot use."""

    exit_code = 2
    kind = "config"


class InputError(CortanError):
    """The prompt or piped data was rejected before anything was sent."""

    kind = "input"


class CapabilityError(InputError):
    """The model cannot take what the request holds (its server or the config says so)."""

    kind = "capability"


class StoreError(CortanError):
    """The session store could not be opened, read or written."""

    kind = "store"


class StoreLockedError(StoreError):
    """Another process held the store locked for longer than cortan waits.

    Nothing is wrong with the store: ``ask`` answers without storing, as on a full
    disk, rather than refusing a question that needs no stored conversation.
    """


class KeyringError(CortanError):
    """The OS keyring is missing or refused the operation."""

    kind = "keyring"


class BusyError(CortanError):
    """The gateway cannot take a request now: every host busy and the queue full.

    ``retry_after`` is the seconds a client is told to wait (HTTP ``Retry-After``).
    """

    kind = "busy"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ObserverError(CortanError):
    """Work that is the user's data (showing the answer, storing it) failed.

    Raised by the bus to the publisher when an essential observer fails, so the
    request ends failed and visibly instead of losing the answer in silence.
    ``kind`` says what failed (``output``, ``store``, ``output_closed``).
    """

    def __init__(self, message: str, *, kind: str = "observer") -> None:
        super().__init__(message)
        self.kind = kind


class OutputClosedError(ObserverError):
    """stdout's reader went away: the answer is no longer wanted, and that is no error.

    Nothing is said, and the exit code is 141 (128 + SIGPIPE), what ``yes``, ``cat``
    or ``git log`` report when ``| head`` leaves early: a script can tell it from a
    failure (1), and ``set -o pipefail`` treats it as those tools (issue 21).
    """

    exit_code = 141

    def __init__(self, message: str = "stdout was closed") -> None:
        super().__init__(message, kind="output_closed")


class ToolError(CortanError):
    """A tool could not run (an MCP server that does not start, a call that fails), or
    the tool loop ran past its bounds. Inside the loop the model is told and goes on;
    outside it (``cortan tools``) it is the sentence the user reads."""

    kind = "tool"


class ProviderError(CortanError):
    """A backend failed. ``retryable`` tells the model manager whether to try again."""

    kind = "provider"
    retryable = False


class UnreachableError(ProviderError):
    kind = "unreachable"
    retryable = True


class ProviderTimeoutError(ProviderError):
    kind = "timeout"
    retryable = True


class AuthError(ProviderError):
    kind = "auth"


class ModelNotFoundError(ProviderError):
    kind = "model_not_found"


def pull_command(provider: str, model: str) -> str:
    """The command that gets ``model`` onto an Ollama provider's server.

    ``cortan models pull`` asks the server the provider points at; ``ollama pull``, the
    hint before, pulls onto this machine's own server (or fails without the ollama CLI),
    which is not that one when Ollama runs on another host or the provider is named.
    The name is quoted for a shell: it is a command to paste, and a name from a config
    file or a loaded conversation (``foo;touch x``) ran what came after its ``;``."""
    import shlex

    name = model if provider == "ollama" else f"{provider}:{model}"
    return f"cortan models pull {shlex.quote(name)}"


class RateLimitedError(ProviderError):
    kind = "rate_limited"
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(ProviderError):
    kind = "server_error"
    retryable = True


class BadResponseError(ProviderError):
    kind = "bad_response"


class BadRequestError(ProviderError):
    kind = "bad_request"


class ContextOverflowError(BadRequestError):
    """The server refused the prompt as longer than the model's context window.

    llama.cpp's ``exceed_context_size_error``, OpenAI's ``context_length_exceeded``
    and the sentences vLLM and older llama.cpp builds use. ``window`` is the window
    the server said it has (llama.cpp's ``n_ctx``) and ``prompt_tokens`` what it
    counted, when it said so: ``Chat.run`` learns from them, leaves out more of the
    conversation and asks once more (issue 21: a conversation must never get stuck).
    """

    kind = "context_overflow"

    def __init__(
        self, message: str, *, window: int | None = None, prompt_tokens: int | None = None
    ) -> None:
        super().__init__(message)
        self.window = window
        self.prompt_tokens = prompt_tokens


def why_unreadable(exc: OSError | UnicodeDecodeError) -> str:
    """The few words that end ``cannot read X: …``: Python's own text repeats the path
    and an errno (``[Errno 2] No such file or directory: 'x.json'``)."""
    import os

    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, FileNotFoundError):
        return "there is no such file"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "it is a folder"
    reason = exc.strerror or os.strerror(exc.errno or 0) or type(exc).__name__
    return reason[:1].lower() + reason[1:]


def why_unwritable(exc: OSError) -> str:
    """The few words that end ``cannot write X: …``. A file being made that is "not
    found" is one whose folder is missing; the rest read as :func:`why_unreadable`."""
    if isinstance(exc, FileNotFoundError):
        return "its folder does not exist"
    return why_unreadable(exc)


def is_output_failure(exc: BaseException) -> TypeGuard[OSError]:
    """Whether ``exc`` is stdout refusing what cortan prints (``cortan logs > /dev/full``).

    A file cortan opens names itself in its error (``filename``) and is reported
    where it is written; a write to stdout names nothing. A closed pipe is not one
    of these: its reader went away, which is no failure (exit 141).
    """
    import errno

    refusals = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)
    return isinstance(exc, OSError) and exc.filename is None and exc.errno in refusals
