"""The config file: reading and validating it (errors name the line, key and fix), writing it back keeping the user's text."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from axtui import locations
from axtui.config._base import _At
from axtui.config._settings import Settings
from axtui.errors import ConfigError

__all__ = ["load_settings", "parse_settings", "save_settings", "where_in_file", "write_config_text"]


def parse_settings(text: str, path: Path | str = "<config>") -> Settings:
    """Parse and validate TOML text; errors name the line, key and fix."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}. Fix the syntax there, or move the file away "
                          f"and run `ax config init`.") from None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, text, path)) from None


def load_settings(path: Path | None = None) -> Settings:
    """Read the config file; defaults when it does not exist."""
    path = path or locations.config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc}); check its permissions and encoding (UTF-8)") from None
    return parse_settings(text, path)


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    """Write settings as TOML, atomically (a temp file renamed over the old); returns the file written.

    An existing file keeps its comments, its order, the spelling of every
    setting that did not change, and its mode; a symlink stays a symlink
    (its target is rewritten). A new file is created readable by its owner only.
    """
    path = path or locations.config_path()
    minimal = settings.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
    try:
        before: str | None = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        before = None
    text = tomli_w.dumps(minimal)
    if before is not None:
        import tomlkit

        try:
            doc = tomlkit.parse(before)
            old = Settings.model_validate(tomllib.loads(before)).model_dump(mode="json", exclude_none=True)
        except (tomllib.TOMLDecodeError, ValidationError, tomlkit.exceptions.TOMLKitError):
            doc = None  # the file is broken: it is replaced whole, as before
        if doc is not None:
            _sync(doc, old, settings.model_dump(mode="json", exclude_none=True), minimal)
            text = tomlkit.dumps(doc)
    write_config_text(path, text)
    return path


def write_config_text(path: Path, text: str) -> None:
    """Write a whole config file atomically: a new one readable by its owner only, an existing one keeping its
    mode, a symlink staying one (`axtui.locations.replace_private`)."""
    with locations.replace_private(path) as out:
        out.write(text)


def _sync(doc: Any, old: dict[str, Any], new: dict[str, Any], minimal: dict[str, Any]) -> None:
    """Edit the TOML container ``doc`` from ``old`` settings to ``new`` ones, touching only what changed.

    ``old`` and ``new`` are full dumps (defaults included); ``minimal`` is
    ``new`` without defaults (what a new key or table is written as).
    """
    for key in [*old, *(k for k in new if k not in old)]:
        o, n, m = old.get(key), new.get(key), minimal.get(key)
        if o == n:
            continue
        if key not in doc:
            if m is not None and m != {} and m != []:
                doc[key] = m
            continue
        here = doc[key]
        if n is None:
            del doc[key]
        elif isinstance(o, dict) and isinstance(n, dict) and isinstance(here, dict):
            _sync(here, o, n, m if isinstance(m, dict) else {})
        elif (isinstance(o, list) and isinstance(n, list) and isinstance(here, list) and len(here) == len(o)
              and all(isinstance(x, dict) for x in (*o, *n, *here))):  # fmt: skip
            mins = m if isinstance(m, list) and len(m) == len(n) else n
            for i in range(min(len(o), len(n))):
                _sync(here[i], o[i], n[i], mins[i])
            for _ in range(len(o) - len(n)):
                here.pop()
            for extra in mins[len(o):]:
                here.append(extra)
        else:
            doc[key] = n


def where_in_file(loc: tuple[Any, ...], path: Path | None = None) -> str:
    """``PATH, line N`` of the setting at ``loc`` in the config file (just ``PATH`` when not found)."""
    path = path or locations.config_path()
    try:
        line = _locate(path.read_text(encoding="utf-8"), loc)
    except (OSError, UnicodeDecodeError):
        line = None
    return f"{path}, line {line}" if line else str(path)


def _explain(exc: ValidationError, text: str, path: Path | str) -> str:
    from axtui.validation import field_problems

    lines = []
    for problem in field_problems(exc):
        loc = problem.loc
        error = problem.ctx.get("error")
        if isinstance(error, _At):
            loc = (*loc, *error.loc)
        line = _locate(text, loc)
        where = f"{path}, line {line}" if line else str(path)
        msg = problem.message
        if problem.type == "extra_forbidden":
            msg = f"unknown setting {str(problem.loc[-1])!r}; check its spelling (see `ax config init` for every setting)"
        key = ".".join(str(part) for part in loc) if loc else "(top level)"
        lines.append(f"{where}: {key}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines) + "\nFix the value there and run the command again."


_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_DOTTED = rf"{_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*"
_TOML_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_TOML_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_TOML_ASSIGN = re.compile(rf"^\s*({_TOML_DOTTED})\s*=")


def _key_parts(dotted: str) -> list[str]:
    return [part.strip("\"'") for part in re.findall(_TOML_KEY_PART, dotted)]


def _locate(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of the setting at ``loc`` (a pydantic error location), or of the nearest table holding it.

    Every table header and ``key =`` line is read as the full path it
    defines (``[[providers]]`` entries counted, so the second provider's
    ``kind`` is ``providers.1.kind``); the line whose path is the longest
    prefix of ``loc`` wins, so a key of the same name in another table
    never matches. It is a pointer for people, never used to read values.
    """
    want = list(loc)
    arrays: dict[tuple[str, ...], int] = {}  # the current entry of each array of tables

    def indexed(names: list[str]) -> list[str | int]:
        path: list[str | int] = []
        for k, name in enumerate(names):
            path.append(name)
            key = tuple(names[: k + 1])
            if key in arrays and k < len(names) - 1:
                path.append(arrays[key])
        return path

    table: list[str | int] = []
    best_len, best_line = 0, None
    for number, line in enumerate(text.splitlines(), 1):
        header = _TOML_HEADER.match(line)
        if header:
            names = _key_parts(header.group(2))
            if header.group(1) == "[[":
                arrays[tuple(names)] = arrays.get(tuple(names), -1) + 1
                # A new entry starts the arrays nested in it afresh.
                for key in [k for k in arrays if len(k) > len(names) and k[: len(names)] == tuple(names)]:
                    del arrays[key]
                table = [*indexed(names), arrays[tuple(names)]]
            else:
                table = indexed(names)
            path = table
        else:
            assign = _TOML_ASSIGN.match(line)
            if not assign:
                continue
            path = [*table, *_key_parts(assign.group(1))]
        if len(path) > best_len and want[: len(path)] == path:
            best_len, best_line = len(path), number
    return best_line
