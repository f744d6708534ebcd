"""Every path ax reads or writes. ``AX_HOME`` moves all of them.

Without ``AX_HOME`` the platform's user dirs are used (platformdirs).
``AX_CONFIG`` names a config file and ``AX_DATABASE_URL`` a database
explicitly.

What ax creates is its owner's only (files 0600, folders 0700): calls,
users, spend and settings are nobody else's business on a shared machine.
`private_dir`, `create_private` and `replace_private` make folders and
files so, whatever the umask; something that exists keeps its mode (its
owner may have opened it up on purpose).
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import platformdirs

__all__ = [
    "config_dir",
    "config_path",
    "create_private",
    "data_dir",
    "database_url",
    "db_path",
    "migrations_dir",
    "package_themes_dir",
    "private_dir",
    "replace_private",
    "shipped_dir",
    "user_themes_dir",
]

#: The mode of a file ax creates.
FILE_MODE = 0o600
#: The mode of a folder ax creates.
DIR_MODE = 0o700

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


# -- making files and folders ---------------------------------------------------------------


def private_dir(path: Path) -> Path:
    """Create the folder ``path``, and each missing folder above it, readable by its owner only; returns it.

    ``Path.mkdir(parents=True, mode=...)`` gives the mode to the last folder
    only; the ones above it get the umask's (0755).

    Raises:
        OSError: a folder cannot be made (read-only, or a file stands in the way).
    """
    missing = []
    folder = path
    while not folder.is_dir() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            folder.mkdir(mode=DIR_MODE)
    if not path.is_dir():
        raise NotADirectoryError(20, "not a folder", str(path))
    return path


def create_private(path: Path) -> Path:
    """Create ``path`` empty and readable by its owner only (in a private folder), unless it exists; returns it.

    For a file others then open by name and append to (a log) or that SQLite
    fills (its -wal and -shm files take the database file's mode).

    Raises:
        OSError: the file or its folder cannot be made.
    """
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return path


@contextlib.contextmanager
def replace_private(path: Path, *, binary: bool = False, newline: str | None = None) -> Iterator[IO[Any]]:
    """Write ``path`` whole or not at all: a file beside it, renamed over it when the block ends without error.

    A new file is readable by its owner only, in a private folder; one that
    exists keeps its mode, and a symlink stays a symlink (its target is
    replaced). Yields the file, open for writing text (UTF-8) or bytes.

    Raises:
        OSError: the folder or the file cannot be made or written; nothing is
            left behind, and a file already at ``path`` stays as it was.
    """
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    private_dir(path.parent)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = FILE_MODE
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, mode)  # an existing file's mode, whatever the umask says
        text: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": newline}
        with os.fdopen(fd, "wb" if binary else "w", **text) as out:
            fd = -1
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        part.unlink(missing_ok=True)
        raise
