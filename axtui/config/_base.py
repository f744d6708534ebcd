"""What every section of the settings shares: the base class, errors that name their key, URL and glob checks."""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict

__all__ = ["_HEADER_NAME", "_At", "_Section", "_check_glob", "_control", "_shown_url", "_url_problem"]


class _Section(BaseModel):
    # No setting is infinite or not a number: a timeout of inf would wait forever, a price of nan poisons sums.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class _At(ValueError):
    """A validation failure about one setting inside the value being validated.

    ``loc`` is the setting's path from that value (``("models", "gpt[")``
    under ``[cache]``); `parse_settings` adds it to pydantic's location, so
    the error names the setting's own line and key rather than its table's.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


#: Characters no host name holds (the WHATWG URL standard's forbidden domain code points, less the controls).
_NOT_IN_HOST = frozenset(" #%/:<>?@[\\]^|")


def _control(text: str, *, tab: bool = False) -> str | None:
    """The first control character in ``text`` (a tab allowed when ``tab``), or None."""
    return next((c for c in text if (ord(c) < 32 and not (tab and c == "\t")) or 127 <= ord(c) < 160), None)


def _url_problem(value: str) -> str | None:
    """Why ``value`` is not an http(s) URL a request can be sent to (``is not …``, ``has …``), or None."""
    bad = _control(value)
    if bad is not None:
        return f"holds the control character {bad!r}"
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return "is not an http:// or https:// URL"
    hostport = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            return "opens the [ of an IPv6 address and never closes it"
        host, after = hostport[1:end], hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(host.replace("%25", "%", 1))
        except ValueError:
            return f"has [{host}] where an IPv6 address goes, and that is not one"
        if after and not after.startswith(":"):
            return f"has {after!r} after its IPv6 address, where only :PORT may follow"
        port = after[1:]
    else:
        host, _, port = hostport.partition(":")
        if ":" in port:
            return "has an IPv6 address outside brackets (they go in brackets: http://[::1]:8080/v1)"
        if not host:
            return "names no host"
        bad = next((c for c in host if c in _NOT_IN_HOST or c.isspace()), None)
        if bad is not None:
            return f"has the host {host!r}, and no host name holds {bad!r}"
    if port and not (re.fullmatch(r"[0-9]+", port) and 1 <= int(port) <= 65535):
        return f"has the port {port!r}, which is not a number from 1 to 65535"
    return None


def _shown_url(value: str) -> str:
    """``value`` as an error may print it: a user and password in it are never printed back."""
    scheme, sep, rest = value.partition("://")
    userinfo, at, _ = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")
    return f"{scheme}://***@{rest[len(userinfo) + 1 :]}" if sep and at else value


#: A header name: an HTTP token (RFC 9110, 5.1).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _check_glob(pattern: str, where: str, *loc: str | int) -> None:
    """Refuse a glob whose ``[`` is never closed: it would match only itself, letter for letter.

    The sets are read as `fnmatch` reads them (a ``]`` just after ``[`` or
    ``[!`` is a member, not the end), so what passes here is what fnmatch
    sees as a set. ``where`` starts the message (when the error's key does
    not say it all); ``loc`` is the setting's path, for the error's line.
    """
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "[":
            i += 1
            continue
        j = i + 1
        if j < n and pattern[j] == "!":
            j += 1
        if j < n and pattern[j] == "]":
            j += 1
        while j < n and pattern[j] != "]":
            j += 1
        if j >= n:
            lead = f"{where}: " if where else ""
            raise _At(
                f"{lead}the glob {pattern!r} opens a [ set that never closes; close it (eu-[abc]*) or, to match a "
                "literal bracket, write [[]",
                *loc,
            )
        i = j + 1
