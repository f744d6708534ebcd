"""Every path ax reads or writes. ``AX_HOME`` moves all of them.

Without ``AX_HOME`` the platform's user dirs are used (platformdirs).
``AX_CONFIG`` names a config file and ``AX_DATABASE_URL`` a database
explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = [
    "config_dir",
    "config_path",
    "data_dir",
    "database_url",
    "db_path",
    "migrations_dir",
    "package_themes_dir",
    "shipped_dir",
    "user_themes_dir",
]

_APP = "ax"


def _home() -> Path | None:
    home = os.environ.get("AX_HOME")
    return Path(home).expanduser() if home else None


def config_dir() -> Path:
    """Where the config file and user themes live."""
    home = _home()
    return home if home else Path(platformdirs.user_config_dir(_APP))


def data_dir() -> Path:
    """Where the database and exports live."""
    home = _home()
    return home if home else Path(platformdirs.user_data_dir(_APP))


def config_path() -> Path:
    """The config file: ``AX_CONFIG`` or ``config.toml`` in the config dir."""
    explicit = os.environ.get("AX_CONFIG")
    return Path(explicit).expanduser() if explicit else config_dir() / "config.toml"


def db_path() -> Path:
    """The SQLite file used when no database URL is set."""
    return data_dir() / "ax.db"


def database_url() -> str:
    """``AX_DATABASE_URL`` if set, else the SQLite file in the data dir."""
    return os.environ.get("AX_DATABASE_URL") or f"sqlite:///{db_path()}"


def shipped_dir(name: str) -> Path:
    """A folder shipped with ax (``migrations``, ``themes``).

    In a wheel it sits inside the package; in a source checkout beside it.
    """
    inside = Path(__file__).parent / name
    return inside if inside.is_dir() else Path(__file__).parent.parent / name


def package_themes_dir() -> Path:
    """Themes shipped with ax."""
    return shipped_dir("themes")


def migrations_dir() -> Path:
    """The Alembic environment shipped with ax."""
    return shipped_dir("migrations")


def user_themes_dir() -> Path:
    """Themes the user adds."""
    return config_dir() / "themes"
