"""API keys: from the provider's variable, its key command, or the OS keyring.

Layer: config. Keys are never written to a file by cortan, and never appear in a
message: every sentence here names where a key lives, not what it is. Lookup
order: the variable the provider names (``api_key_env``), then its
``api_key_cmd`` (for password managers), then the keyring entry
``cortan/<provider>``. A key belongs to one provider: the OpenAI key is sent to
a custom base URL only when that provider names ``OPENAI_API_KEY`` itself.

keyring is imported only when a lookup reaches it, because it is slow to import
and may probe D-Bus. Where no backend works (a headless Linux box) the error
names the environment variable to use instead; there is no plain-file fallback.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from cortan.core.errors import AuthError, ConfigError, KeyringError, UsageError, why_unreadable

if TYPE_CHECKING:
    from cortan.config.settings import ProviderConfig

SERVICE = "cortan"
KeySource = Literal["env", "command", "keyring"]
UNSAFE_KEY = re.compile(r"[\s\x00-\x1f\x7f]")


class KeyLocation(NamedTuple):
    """Where a provider's key comes from (never the key): ``detail`` names the place."""

    source: KeySource | None
    detail: str


def get_api_key(name: str, config: ProviderConfig, *, use_keyring: bool = True) -> str | None:
    """The key for provider ``name``, or None when it has none anywhere.

    A key that cannot go in an HTTP header (a non-ASCII character, a newline inside,
    a space) is refused here, naming where it came from: sent, it failed as "a reply
    cortan cannot parse" or "cannot reach" (issue 15), which sends the user looking
    in the wrong place.
    """
    if config.api_key_env and os.environ.get(config.api_key_env, "").strip():
        key = os.environ[config.api_key_env].strip()
        return _well_formed(name, key, f"the environment variable {config.api_key_env}")
    if config.api_key_cmd:
        return _well_formed(name, run_key_command(name, config.api_key_cmd), "api_key_cmd")
    if use_keyring:
        try:
            found = get_keyring_key(name, config)
        except KeyringError:
            return None
        return None if found is None else _well_formed(name, found.strip(), "the keyring")
    return None


def _well_formed(name: str, key: str, source: str) -> str:
    """``key`` if it is one token of printable ASCII, else AuthError saying what is wrong."""
    bad = next((c for c in key if not "!" <= c <= "~"), None)
    if bad is None:
        return key
    what = (
        "a line break"
        if bad in "\r\n"
        else "a space"
        if bad.isspace()
        else "a control character"
        if ord(bad) < 0x20 or 0x7F <= ord(bad) <= 0x9F
        else "a non-ASCII character"
    )
    raise AuthError(
        f"the API key for provider {name!r} from {source} is malformed (it holds {what}; "
        f"a key is one word of plain ASCII): set it again, e.g. `cortan keys set {name}`"
    )


def locate_api_key(name: str, config: ProviderConfig) -> KeyLocation:
    """Where the key would come from, without running ``api_key_cmd`` (it may prompt)."""
    if config.api_key_env and os.environ.get(config.api_key_env, "").strip():
        return KeyLocation("env", config.api_key_env)
    if config.api_key_cmd:
        return KeyLocation("command", config.api_key_cmd)
    try:
        found = get_keyring_key(name, config)
    except KeyringError:
        return KeyLocation(None, "no keyring backend")
    if found:
        return KeyLocation("keyring", f"{SERVICE}/{name}")
    return KeyLocation(None, "none")


#: How long ``api_key_cmd`` may take (a password manager may wait for its unlock), and
#: how much of its output is read: a key is one line, and ``yes`` never ends.
KEY_COMMAND_SECONDS = 30
MAX_KEY_OUTPUT = 1 << 16


def run_key_command(name: str, command: str) -> str:
    """Run ``api_key_cmd`` and take the first line it prints as the key.

    Its stdout is read up to MAX_KEY_OUTPUT and its stderr is dropped, so a command
    that prints without end (``yes``) costs 64 KiB, not all the memory there is; one
    still running after KEY_COMMAND_SECONDS is killed.
    """
    try:
        proc = subprocess.Popen(  # the user's own configured command
            shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except (OSError, ValueError) as exc:  # ValueError: shlex's unclosed quotation
        if isinstance(exc, FileNotFoundError):
            why = "there is no such command"
        else:
            why = why_unreadable(exc) if isinstance(exc, OSError) else str(exc).lower()
        raise ConfigError(f"api_key_cmd for provider {name!r} could not run: {why}") from None
    out, code, problem = _bounded_output(proc)
    if problem is not None:
        raise ConfigError(f"api_key_cmd for provider {name!r} {problem}")
    text = out.decode("utf-8", errors="replace").strip()
    key = text.splitlines()[0].strip() if text else ""
    if code != 0 or not key:
        raise ConfigError(
            f"api_key_cmd for provider {name!r} failed (exit {code}) or printed no key"
        )
    return key


def _bounded_output(proc: subprocess.Popen[bytes]) -> tuple[bytes, int, str | None]:
    """What ``proc`` printed, its exit status, and why it was stopped (None: it ended)."""
    import threading

    late = threading.Event()

    def stop() -> None:
        late.set()
        proc.kill()

    timer = threading.Timer(KEY_COMMAND_SECONDS, stop)
    timer.start()
    try:
        assert proc.stdout is not None
        out = proc.stdout.read(MAX_KEY_OUTPUT + 1)
        if len(out) > MAX_KEY_OUTPUT:
            proc.kill()
        code = proc.wait()
    finally:
        timer.cancel()
        if proc.stdout is not None:
            proc.stdout.close()
    if late.is_set():
        return out, code, f"was still running after {KEY_COMMAND_SECONDS} s, and was stopped"
    if len(out) > MAX_KEY_OUTPUT:
        return out, code, "printed more than 64 KiB, and was stopped: a key is one line"
    return out, code, None


def check_key(name: str, key: str) -> str:
    """The key as it will be stored: trimmed, one token, no control characters."""
    key = key.strip()
    if not key:
        raise UsageError(f"no key was given for provider {name!r}")
    if UNSAFE_KEY.search(key):
        raise UsageError(
            f"the key for provider {name!r} contains spaces or control characters: "
            "give the key alone"
        )
    return key


def get_keyring_key(name: str, config: ProviderConfig | None = None) -> str | None:
    """Read the keyring entry; raises KeyringError when no backend works."""
    keyring = _import_keyring()
    try:
        found = keyring.get_password(SERVICE, name)
    except Exception as exc:
        raise KeyringError(_no_keyring_sentence(name, config, exc)) from None
    return str(found) if found else None


def set_keyring_key(name: str, key: str, config: ProviderConfig | None = None) -> None:
    """Store the key, then read it back: some backends accept a key and keep nothing.

    keyring's null backend (the usual advice for a headless box or CI) answers every
    call without error and stores nothing, so "stored" would be a lie (issue 21).
    """
    keyring = _import_keyring()
    try:
        keyring.set_password(SERVICE, name, key)
        kept = keyring.get_password(SERVICE, name)
    except Exception as exc:
        raise KeyringError(_no_keyring_sentence(name, config, exc)) from None
    if kept != key:
        problem = f"the OS keyring ({get_keyring_name()}) did not keep the key"
        raise KeyringError(_instead(problem, name, config))


def delete_keyring_key(name: str, config: ProviderConfig | None = None) -> bool:
    """Remove the entry; False when there was none (looked up first: see set_keyring_key)."""
    keyring = _import_keyring()
    from keyring.errors import PasswordDeleteError

    try:
        if keyring.get_password(SERVICE, name) is None:
            return False
        keyring.delete_password(SERVICE, name)
        left = keyring.get_password(SERVICE, name)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise KeyringError(_no_keyring_sentence(name, config, exc)) from None
    if left is not None:
        raise KeyringError(f"the OS keyring ({get_keyring_name()}) did not remove the key")
    return True


def get_keyring_name() -> str:
    """The backend keyring would use, for messages ("SecretService Keyring")."""
    keyring = _import_keyring()
    try:
        return str(getattr(keyring.get_keyring(), "name", type(keyring.get_keyring()).__name__))
    except Exception:
        return "none"


def suggest_variable(name: str, config: ProviderConfig | None) -> str:
    """The environment variable a user should set for ``name``'s key."""
    if config is not None and config.api_key_env:
        return config.api_key_env
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") + "_API_KEY"


def _import_keyring() -> Any:
    import keyring

    return keyring


def _no_keyring_sentence(name: str, config: ProviderConfig | None, exc: BaseException) -> str:
    from keyring.errors import NoKeyringError

    if isinstance(exc, NoKeyringError):
        problem = "no usable OS keyring was found"
    else:
        problem = f"the OS keyring refused ({type(exc).__name__})"
    return _instead(problem, name, config)


def _instead(problem: str, name: str, config: ProviderConfig | None) -> str:
    """``problem``, and the environment variable to use instead of the keyring."""
    variable = suggest_variable(name, config)
    if config is not None and config.api_key_env:
        return f"{problem}: set {variable} in the environment instead"
    return (
        f"{problem}: set {variable} in the environment and add "
        f'api_key_env = "{variable}" to [providers.{name}] in the config instead'
    )


# -- the gateway's token -----------------------------------------------------------------

SERVE_TOKEN_VARIABLE = "CORTAN_SERVE_TOKEN"
#: The keyring entry of the gateway's token; no provider can take the name (no ':').
SERVE_TOKEN_ENTRY = "serve:token"
MIN_TOKEN_CHARS = 16
TokenSource = Literal["env", "command", "keyring"]


class ServeToken(NamedTuple):
    """The bearer token ``cortan serve`` asks of its clients, and where it lives."""

    value: str
    source: TokenSource
    created: bool = False  # made just now (the first run), and stored in the keyring


def get_serve_token(token_cmd: str | None = None, *, create: bool = True) -> ServeToken:
    """The gateway's token: ``CORTAN_SERVE_TOKEN``, else ``token_cmd``, else the keyring.

    With ``create``, a keyring without one gets a new random token: the first run.
    """
    if value := os.environ.get(SERVE_TOKEN_VARIABLE, "").strip():
        return ServeToken(check_serve_token(value, SERVE_TOKEN_VARIABLE), "env")
    if token_cmd:
        value = run_key_command("serve", token_cmd)
        return ServeToken(check_serve_token(value, "serve.token_cmd"), "command")
    try:
        stored = get_keyring_key(SERVE_TOKEN_ENTRY)
        if stored:
            return ServeToken(stored, "keyring")
        if create:
            return ServeToken(new_serve_token(), "keyring", created=True)
    except KeyringError as exc:
        raise KeyringError(
            f"the gateway keeps its token in the OS keyring, and {_keyring_problem(exc)}: "
            f"set {SERVE_TOKEN_VARIABLE} (at least {MIN_TOKEN_CHARS} characters) instead"
        ) from None
    raise KeyringError("the gateway has no token yet: `cortan serve` makes one on its first run")


def new_serve_token() -> str:
    """Make a new random token and keep it in the keyring (replacing any older one)."""
    import secrets

    token = "ctk-" + secrets.token_urlsafe(32)
    set_keyring_key(SERVE_TOKEN_ENTRY, token)
    return token


def check_serve_token(value: str, where: str) -> str:
    """A token a client can send in a header: long enough, one printable word."""
    if len(value) < MIN_TOKEN_CHARS or UNSAFE_KEY.search(value) or not value.isascii():
        raise ConfigError(
            f"{where} must be at least {MIN_TOKEN_CHARS} printable ASCII characters "
            "with no spaces: a short token is easy to guess"
        )
    return value


def _keyring_problem(exc: KeyringError) -> str:
    text = str(exc)
    return text.split(":", 1)[0] if ":" in text else "it refused"
