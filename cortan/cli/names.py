"""Tab completion of the names options take: models for ``-m``, conversations for
``--session``, roles for ``--role``, and the few words ``--think``, ``batch -F`` and the
SHELL of ``completion`` and ``shell-init`` take (without them, Tab offered file names).

Layer: cli. The shell runs cortan on every Tab (``cortan completion``), and Typer calls
these functions there, so they must be quick and must never disturb the command line:

* Models are the configured aliases, ``provider:`` for every provider, and the
  ``provider:model`` names the store has answers from. The config file is read as
  TOML, not through the settings model (pydantic-settings alone costs about as much as
  the rest of a completion), and no server is asked: a listing is a network round trip
  per host, and a host that is down would hold the Tab for the connect timeout. The
  shell's ``/model`` completion, which can wait, asks the servers.
* Conversations are the stored names, newest first, and their ids once a digit is
  typed. The store is opened read-only and never created or migrated from a Tab.

Anything that goes wrong (no store, a config that does not parse, a damaged file)
offers nothing. Names are offered only when the shell can take them back as one
word: Typer's scripts hand the words to ``eval`` (zsh) or to an unquoted expansion
(bash), and a stored name or a server's model name is not ours to trust.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cortan.store import SessionStore

#: A word every shell takes back as itself: no quotes, spaces, ``$``, globs or ``#``.
SAFE_WORD = re.compile(r"[\w.@+=,%/-][\w.:@+=,%/-]*")
#: Stored names and used models offered at most, newest first.
MOST = 200

Offered = list[tuple[str, str]]


def complete_model(incomplete: str) -> Offered:
    """Aliases, ``provider:`` prefixes and models used before that start with ``incomplete``."""
    return _quietly(lambda: _match(incomplete, _models()))


def complete_session(incomplete: str) -> Offered:
    """Stored conversations' names (and, from a digit on, ids) starting with ``incomplete``."""
    return _quietly(lambda: _match(incomplete, _sessions(by_id=incomplete[:1].isdigit())))


def complete_role(incomplete: str) -> Offered:
    """The built-in roles and the config file's ``[roles.NAME]``."""
    return _quietly(lambda: _match(incomplete, _roles()))


def complete_think(incomplete: str) -> Offered:
    """``on``, ``off`` and the levels of ``--think``."""
    from cortan.core.requests import THINK_VALUES

    return _match(incomplete, ((word, "thinking") for word in THINK_VALUES))


def complete_batch_format(incomplete: str) -> Offered:
    """The input formats of ``batch -F``."""
    from cortan.batch.inputs import FORMATS

    return _match(incomplete, ((name, "format") for name in FORMATS))


def complete_shell(incomplete: str) -> Offered:
    """The shells ``completion`` and ``shell-init`` both write for."""
    from cortan.command.snippets import SHELLS

    return _match(incomplete, ((shell, "shell") for shell in SHELLS))


def _quietly(offer: Callable[[], Offered]) -> Offered:
    try:
        return offer()
    except Exception:
        return []


def _match(incomplete: str, offered: Iterable[tuple[str, str]]) -> Offered:
    seen: set[str] = set()
    matched: Offered = []
    for value, about in offered:
        if value.startswith(incomplete) and value not in seen and SAFE_WORD.fullmatch(value):
            seen.add(value)
            matched.append((value, _plain(about)))
    return matched


def _plain(text: str) -> str:
    """A description a shell shows as it is: printable, without quotes or ``$``."""
    kept = "".join(c for c in text if c.isprintable() and c not in "'\"`$\\")
    return kept[:60]


def _models() -> Iterable[tuple[str, str]]:
    config = _read_config()
    aliases = config.get("aliases")
    if isinstance(aliases, dict):
        for alias, target in aliases.items():
            yield alias, f"alias of {target}" if isinstance(target, str) else "alias"
    providers = config.get("providers")
    named = list(providers) if isinstance(providers, dict) else []
    for provider in ("ollama", "openai", *named):
        yield f"{provider}:", "provider"
    for provider, model in _used_models():
        yield f"{provider}:{model}", "used before"


def _roles() -> Iterable[tuple[str, str]]:
    from cortan.config.roles import builtin_role_names

    for name in builtin_role_names():
        yield name, "built-in role"
    roles = _read_config().get("roles")
    if isinstance(roles, dict):
        for name in roles:
            yield name, "role"


def _read_config() -> dict[str, Any]:
    from cortan.config.load import read_config_file
    from cortan.config.paths import get_config_file

    return read_config_file(get_config_file())


def _used_models() -> list[tuple[str, str]]:
    store = _open_store()
    if store is None:
        return []
    with store:
        return store.list_models_used(MOST)


def _sessions(*, by_id: bool) -> Iterable[tuple[str, str]]:
    store = _open_store()
    if store is None:
        return
    with store:
        conversations = store.list_conversations(MOST)
    for c in conversations:
        about = f"{c.message_count} messages, {c.model or 'no model'}"
        if c.name:
            yield c.name, about
        if by_id:
            yield str(c.id), f"{c.name or 'unnamed'}, {about}"


def _open_store() -> SessionStore | None:
    """The session store, read-only; None when there is none (a Tab creates nothing)."""
    import os

    from cortan.config.paths import get_data_dir
    from cortan.store import SessionStore, get_store_path
    from cortan.store.db import connect_read_only

    path = get_store_path(get_data_dir())
    if not os.path.lexists(path):
        return None
    return SessionStore(connect_read_only(path), path)
