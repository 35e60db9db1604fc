"""Loading settings, with errors that name the file, the key and what is wrong.

The TOML file is parsed here (not by pydantic-settings) so a syntax error can say
its line, and a validation error can say whether the bad value came from the
file, a ``CORTAN_*`` variable or a flag.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cortan.config.paths import get_config_file
from cortan.config.wording import say_what_is_wrong
from cortan.core.errors import ConfigError
from cortan.core.files import expand_user

MAX_CONFIG_BYTES = 1 << 20
NAMES_KEYS = re.compile(r"\bapi_key_(?:env|cmd)\s*=")
# The names pydantic gives the members of a union in an error's path: no key of the
# user's (`providers.x.parallel.constrained-int` named a key nobody wrote).
_TYPE_NAMES = frozenset({"bool", "int", "float", "str", "list", "dict", "tuple", "none"})
_UNION_TAG = re.compile(
    r"function-(?:after|before|wrap|plain)(?:\[.*\])?|constrained-\w+|\w+\[.*\]"
)

if TYPE_CHECKING:
    from pydantic import ValidationError

    from cortan.config.settings import Settings


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse the TOML file; a missing file is an empty config, anything else wrong is an error.

    Missing is fine for the default file (nobody has written one yet), not for one
    that ``CORTAN_CONFIG`` names: a typo there would otherwise be ignored in silence,
    every setting quietly at its default (issue 21).
    """
    try:
        raw = _read_regular_file(path)
    except (FileNotFoundError, NotADirectoryError):  # HOME=/dev/null: no file can be there
        if _named_by_variable(path):
            raise ConfigError(
                f"CORTAN_CONFIG names {path}, which does not exist: create it, "
                "or unset CORTAN_CONFIG to use the default file"
            ) from None
        return {}
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a directory, not a TOML file") from None
    except PermissionError:
        raise ConfigError(f"config file {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        # utf-8-sig: a byte-order mark (Windows Notepad writes one) is not TOML, but
        # tomllib's "Invalid statement (at line 1, column 1)" showed nothing to fix.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
        hint = " (it is UTF-16: save it as UTF-8)" if utf16 else ""
        raise ConfigError(f"config file {path} is not UTF-8 text{hint}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of [[…]] or {…}
        raise ConfigError(f"config file {path} nests arrays or tables too deeply") from None
    except ValueError:  # int() refuses a number of more than 4,300 digits
        raise ConfigError(f"config file {path} holds a number too long to read") from None


def _named_by_variable(path: Path) -> bool:
    named = os.environ.get("CORTAN_CONFIG")
    return named is not None and named != "" and expand_user(Path(named)) == path


def _read_regular_file(path: Path) -> bytes:
    """The file's bytes; a FIFO or a device (``CORTAN_CONFIG=/dev/zero``) would never end."""
    from cortan.core.files import FileRefused, read_small_file

    try:
        raw = read_small_file(path, MAX_CONFIG_BYTES)
    except FileRefused as exc:
        hint = ": is it the right file?" if "larger" in str(exc) else ""
        raise ConfigError(f"config file {path} {exc}{hint}") from None
    return raw


def get_exposure_warning(path: Path) -> str | None:
    """A warning when a config file that names API keys is readable by other users."""
    if not is_readable_by_others(path):
        return None
    try:
        text = _read_regular_file(path).decode("utf-8", "replace")
    except (OSError, ConfigError):
        return None
    if not NAMES_KEYS.search(text):
        return None
    return (
        f"config file {path} names API key sources and other users can read it; "
        f"run `chmod 600 {path}`"
    )


#: The CORTAN_* variables cortan reads that are not settings.
OTHER_VARIABLES = (
    "CORTAN_CONFIG", "CORTAN_DATA_DIR", "CORTAN_LOG_LEVEL", "CORTAN_LOG_FORMAT",
    "CORTAN_SERVE_TOKEN",
)  # fmt: skip


def get_misspelt_variables(environ: Mapping[str, str] = os.environ) -> list[str]:
    """A warning for each CORTAN_* variable that reads like one cortan knows, but is not.

    pydantic-settings ignores a variable that names no setting, so a typo in one
    (``CORTAN_DEFUALT_MODEL``) changed nothing, silently. Only near misses are named:
    a script may keep its own CORTAN_* variables (docs/serve.md's ``CORTAN_TOKEN``).
    """
    from cortan.config.settings import Settings

    known = {f"CORTAN_{name.upper()}" for name in Settings.model_fields} | set(OTHER_VARIABLES)
    warnings = []
    for name in environ:
        top, nested, rest = name.upper().partition("__")
        if not top.startswith("CORTAN_") or top in known:
            continue
        import difflib

        if close := difflib.get_close_matches(top, sorted(known), n=1, cutoff=0.85):
            meant = close[0] + nested + rest
            warnings.append(f"environment variable {name} names no setting: did you mean {meant}?")
    return warnings


def load_settings(path: Path | None = None, **flags: Any) -> Settings:
    """Build Settings from every source; ``flags`` are the command line's overrides."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from cortan.config.settings import FILE_DATA, Settings

    path = path or get_config_file()
    data = read_config_file(path)
    token = FILE_DATA.set(data)
    try:
        return Settings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, path, data, flags)) from None
    except SettingsError as exc:  # a CORTAN_* list or table that is not JSON
        raise ConfigError(describe_settings_error(exc)) from None
    except RecursionError:  # json.loads of a CORTAN_* value nested thousands deep
        raise ConfigError(f"{_deeply_nested_variable()} nests its JSON too deeply") from None
    finally:
        FILE_DATA.reset(token)


#: The most of a key's name an error shows: a config file may hold a key of a megabyte.
KEY_WIDTH = 100


def describe_validation_error(
    exc: ValidationError, path: Path, data: dict[str, Any], flags: dict[str, Any]
) -> str:
    """One sentence for the first problem: where the value came from, which key, what is wrong."""
    from cortan.config.settings import LONE_SURROGATE
    from cortan.core.text import one_line

    error, loc = _first_problem(exc, data)
    if error["type"] == LONE_SURROGATE:  # where below the field, for the key and variable
        loc = [*loc, *(part for part in error["ctx"]["inside"] if isinstance(part, str))]
    key = one_line(".".join(loc), KEY_WIDTH) or "(top level)"  # a 1 MB name: one line
    message = say_what_is_wrong(error)
    if error["type"] == "extra_forbidden" and (meant := _key_meant(loc)):
        message = f"unknown setting; did you mean `{meant}`?"
    if loc and loc[0] in flags and flags[loc[0]] is not None:
        return f"option --{loc[0].replace('_', '-')}: {message}"
    env_name = "CORTAN_" + "__".join(loc).upper()
    given = {name.upper() for name in os.environ}
    # A variable wins over the file: the bad value is the variable's, even when the
    # file sets the same key (CORTAN_DEFAULT_MODEL= over a good default_model), and
    # a table given whole as JSON (CORTAN_TIMEOUTS='{"connect": "x"}') holds its keys.
    for depth in range(len(loc), 0, -1):
        variable = "CORTAN_" + "__".join(loc[:depth]).upper()
        if variable in given:
            inside = "" if depth == len(loc) else f" (key `{key}`)"
            return f"environment variable {variable}{inside}: {message}"
    if not _has_key(data, loc):
        table = _table_from_variables(loc, data)
        if table is not None and error["type"] == "missing":
            return f"environment variables {table}__*: key `{key}` is required (set {env_name})"
        if table is not None:
            return f"environment variables {table}__*: key `{key}`: {message}"
    return f"config file {path}: key `{key}`: {message}"


def _key_meant(loc: list[str]) -> str | None:
    """The known key of the same table nearest to the last of ``loc``, if one is near
    (``default_modle``: ``default_model``), as ``-m opneai:…`` and ``/modle`` are answered.
    Only tables with fixed keys are walked; a table of names (``[providers.NAME]``) is not."""
    import difflib

    from pydantic import BaseModel

    from cortan.config.settings import Settings

    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(part)
        inner = field.annotation if field is not None else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    known = [field.alias or name for name, field in model.model_fields.items()]
    close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.75) if loc else []
    return close[0] if close else None


def _deeply_nested_variable() -> str:
    """Which CORTAN_* variable pydantic-settings could not decode for its depth."""
    import json

    for name, value in os.environ.items():
        if name.upper().startswith("CORTAN_") and value.lstrip()[:1] in ("[", "{"):
            try:
                json.loads(value)
            except RecursionError:
                return f"environment variable {name}"
            except ValueError:
                continue
    return "a CORTAN_* variable"


def _first_problem(exc: ValidationError, data: dict[str, Any]) -> tuple[Any, list[str]]:
    """The first error and its path of keys, as the user wrote them.

    A value that fits none of a union's members (``parallel``: a number or a table)
    gets one error per member: the one reaching deepest into the value says most
    (``parallel.http://gpu:11434: 0 is less than 1``, not "is not a whole number").
    """
    errors = exc.errors()
    paths = [_user_path(error["loc"], data) for error in errors]
    first = paths[0]
    best = max(
        (i for i, path in enumerate(paths) if path[: len(first)] == first),
        key=lambda i: (len(paths[i]), errors[i]["type"] == "literal_error"),  # names choices
    )
    return errors[best], paths[best]


def _user_path(loc: tuple[int | str, ...], data: dict[str, Any]) -> list[str]:
    """``loc`` without the names pydantic gives a union's members: a part that is no
    key in the file where it stands (``think.llama.bool``), or a composite tag
    (``constrained-int``) where the file does not say."""
    path: list[str] = []
    node: Any = data
    for part in map(str, loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
            continue
        if _UNION_TAG.fullmatch(part) or (node is not None and part in _TYPE_NAMES):
            continue
        node = None  # from here on the file does not say (a CORTAN_* variable's value)
        path.append(part)
    return path


def describe_settings_error(exc: Exception) -> str:
    """pydantic-settings names the field, not the variable: say which variable to fix."""
    match = re.search(r'field "([^"]+)"', str(exc))
    name = f"CORTAN_{match[1].upper()}" if match else "a CORTAN_* variable"
    return f"environment variable {name} is not valid JSON (lists and tables are given as JSON)"


def _table_from_variables(loc: list[str], data: dict[str, Any]) -> str | None:
    """The prefix of the variables that made the table ``loc`` sits in, if they did.

    ``CORTAN_PROVIDERS__X__HOSTS`` alone makes a table ``providers.x`` that lacks its
    ``kind``: the file has no such table, so the file is not the place to fix it.
    """
    given = {name.upper() for name in os.environ}
    for depth in range(len(loc) - 1, 0, -1):
        if _has_key(data, loc[:depth]):
            return None
        prefix = "CORTAN_" + "__".join(loc[:depth]).upper()
        if any(name.startswith(prefix + "__") for name in given):
            return prefix
    return None


def _has_key(data: dict[str, Any], loc: list[str]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def is_readable_by_others(path: Path) -> bool:
    """True when group or others may read ``path`` (a warning sign for a file naming keys)."""
    try:
        return bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False
