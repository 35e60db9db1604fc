"""Where cortan keeps its files, by platform convention (platformdirs).

``CORTAN_CONFIG`` names the config file and ``CORTAN_DATA_DIR`` the data folder
(history, session store), so tests and portable setups can move both.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cortan.core.errors import ConfigError
from cortan.core.files import expand_user

APP_NAME = "cortan"


def get_config_file() -> Path:
    """The TOML file settings are read from (it need not exist)."""
    explicit = os.environ.get("CORTAN_CONFIG")
    if explicit:
        return expand_user(Path(explicit))
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def get_data_dir() -> Path:
    """The folder for history and the session store (created on first write)."""
    explicit = os.environ.get("CORTAN_DATA_DIR")
    if explicit:
        path = expand_user(Path(explicit))
        if path.parts[:1] and path.parts[0].startswith("~"):  # the store in ./~nobody/
            raise ConfigError(
                f"CORTAN_DATA_DIR names {explicit}, and {path.parts[0]} is no user's home folder"
            )
        return path
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` owner-only (0700): history and sessions are private.

    A folder that already exists and is ours is tightened to 0700 too (an older
    install, or a umask that let group and others in); someone else's is left alone,
    and so is whatever a symbolic link there points at (a user may link the data
    folder on purpose; cortan changes no mode through a link).
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISDIR(info.st_mode) and info.st_mode & 0o077 and info.st_uid == os.getuid():
        path.chmod(0o700)
    return path
