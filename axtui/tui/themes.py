"""Dashboard themes: TOML or JSON files from the shipped and the user folder.

A theme file names Textual's base colours (``primary`` is required; the
others default from it) and optional design ``variables``::

    name = "dusk"
    dark = true
    primary = "#5AA9E6"
    background = "#14181E"

    [variables]
    "footer-key-foreground" = "#5AA9E6"

Shipped themes (``themes/`` at the repository root, inside the package in
a wheel) load first; a user theme with the same name replaces one. A file
that cannot be read or is wrong is reported with its path and what to fix,
and the dashboard starts anyway with the themes that did load.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from axtui import locations

__all__ = ["DEFAULT_THEME", "ThemeError", "ThemeSet", "load_themes", "parse_theme", "read_theme_file"]

#: The theme used when none is asked for and the config names none.
DEFAULT_THEME = "dark"

_COLOURS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground", "background", "surface",
            "panel", "boost")
_KNOWN = {*_COLOURS, "name", "dark", "luminosity_spread", "text_alpha", "variables"}


class ThemeError(ValueError):
    """A theme file that cannot be used; the message names the file and the fix."""


@dataclass(slots=True)
class ThemeSet:
    """The themes that loaded, by name, and one line per file that did not."""

    themes: dict[str, Theme] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        """Theme names, sorted."""
        return sorted(self.themes)


def _colour(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{where}: {key} must be a colour string such as \"#5AA9E6\", not {value!r}")
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(f"{where}: {key} = {value!r} is not a colour; use \"#RRGGBB\", \"rgb(…)\" or a colour name") \
            from None
    return value


def _fraction(value: Any, key: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ThemeError(f"{where}: {key} must be a number from 0 to 1, not {value!r}")
    return float(value)


def parse_theme(data: Mapping[str, Any], where: str = "<theme>") -> Theme:
    """A Textual `Theme` from a theme file's data.

    Args:
        data: the parsed TOML or JSON object.
        where: the file, for messages.

    Raises:
        ThemeError: a key is missing, unknown or has a bad value.
    """
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ThemeError(f"{where}: unknown key {unknown[0]!r}; theme keys are {', '.join(sorted(_KNOWN))}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{where}: name is missing; add name = \"my-theme\"")
    if "primary" not in data:
        raise ThemeError(f"{where}: primary is missing; add primary = \"#RRGGBB\" (the main accent colour)")
    colours = {k: _colour(data[k], k, where) for k in _COLOURS if k in data}
    dark = data.get("dark", True)
    if not isinstance(dark, bool):
        raise ThemeError(f"{where}: dark must be true or false, not {dark!r}")
    variables = data.get("variables", {})
    if not isinstance(variables, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise ThemeError(f"{where}: [variables] must map names to strings, e.g. \"footer-key-foreground\" = \"#fff\"")
    extra: dict[str, Any] = {}
    if "luminosity_spread" in data:
        extra["luminosity_spread"] = _fraction(data["luminosity_spread"], "luminosity_spread", where)
    if "text_alpha" in data:
        extra["text_alpha"] = _fraction(data["text_alpha"], "text_alpha", where)
    return Theme(name=name.strip(), dark=dark, variables=dict(variables), **colours, **extra)  # type: ignore[arg-type]


def read_theme_file(path: Path) -> Theme:
    """Read and validate one ``.toml`` or ``.json`` theme file.

    Raises:
        ThemeError: the file cannot be read, is not valid TOML/JSON, or is not a theme.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"{path}: cannot be read ({exc}); check its permissions and encoding (UTF-8)") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ThemeError(f"{path}: not valid {kind}: {exc}; fix the syntax or remove the file") from None
    if not isinstance(data, dict):
        raise ThemeError(f"{path}: a theme is a table of keys (name, primary, …), not {type(data).__name__}")
    return parse_theme(data, str(path))


def _theme_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".toml", ".json") and p.is_file())


def load_themes(folders: Iterable[Path] | None = None) -> ThemeSet:
    """Every theme in ``folders`` (default: shipped, then the user's), later ones winning.

    Never raises for a bad file: each problem becomes one line in
    `ThemeSet.problems`.
    """
    if folders is None:
        folders = (locations.package_themes_dir(), locations.user_themes_dir())
    found = ThemeSet()
    for folder in folders:
        for path in _theme_files(folder):
            try:
                theme = read_theme_file(path)
            except ThemeError as exc:
                found.problems.append(str(exc))
                continue
            found.themes[theme.name] = theme
            found.origins[theme.name] = path
    return found
