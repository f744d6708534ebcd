"""What the HTTP adapters share: SSE framing, error mapping, limit headers.

Every adapter speaks JSON over one pooled `httpx.AsyncClient`; this module
turns what comes back into ax's terms:

- `iter_sse` frames server-sent events out of an async byte stream;
- `error_for_status` turns an HTTP status and error body into the most
  specific `ProviderError` (auth, rate limited with retry-after, context
  too long, bad request, 5xx), naming the provider and its own message and
  never the key;
- `learn_limits` records OpenAI-style ``x-ratelimit-*`` and Anthropic's
  ``anthropic-ratelimit-*`` headers into `UpstreamLimits`;
- `strict_json` reads the JSON an upstream answers (and the JSON text a
  client puts inside a request, tool arguments), refusing what Python's
  json takes but no JSON encoder writes; `SHAPE_ERRORS` are what reading
  an answer of the wrong shape raises, each turned into `MalformedResponse`;

The request plumbing itself (`HTTPProvider`) is in `axtui.providers._http`.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import math
import re
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic_core import from_json

from axtui.errors import (
    ContextTooLong,
    MalformedResponse,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)
from axtui.providers.base import UpstreamLimits
from axtui.redaction import REDACTED, scrub
from axtui.types import ChatRequest

__all__ = [
    "OPENAI_ONLY_PARAMS",
    "SHAPE_ERRORS",
    "ErrorBody",
    "SSEEvent",
    "UnsupportedParameter",
    "error_for_status",
    "excerpt",
    "iter_sse",
    "learn_limits",
    "parse_duration",
    "parse_error_body",
    "parse_retry_after",
    "redact",
    "refuse_choices_and_logprobs",
    "refuse_json_object",
    "strict_json",
]

#: OpenAI parameters other providers reject; dropped when a request that
#: names them is routed elsewhere rather than failing there.
# fmt: off
OPENAI_ONLY_PARAMS = frozenset((
    "audio", "function_call", "functions", "logit_bias", "logprobs", "modalities", "parallel_tool_calls",
    "prediction", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "safety_identifier",
    "service_tier", "store", "top_logprobs", "verbosity", "web_search_options",
))
# fmt: on

_SNIPPET = 300

#: What reading a provider's answer raises when it is not shaped as its API documents it: a member missing
#: (KeyError, IndexError) or of another type (TypeError, AttributeError), a value that is no number
#: (ValueError) or one past any (OverflowError: ``1e999`` reads as infinity, which no index or count is).
SHAPE_ERRORS = (KeyError, IndexError, TypeError, AttributeError, ValueError, OverflowError)


def strict_json(data: str | bytes) -> Any:
    """``data`` parsed as JSON, as the standard has it where Python's json is lax.

    ``NaN`` and ``Infinity`` are refused (they are not JSON), and so are
    text that is not Unicode (half a UTF-16 surrogate pair, ``"\\ud800"``;
    bytes that are not UTF-8) and nesting past 200 levels. Python's json
    takes each of them, and each failed later, where ax writes what it
    read out again as JSON (to the client, to a provider), as a 500. A
    number past a float's range (``1e999``) still reads as infinity; a
    byte order mark in front is passed over, as Python's json does.

    Raises:
        ValueError: ``data`` is not such JSON; the message says what and where.
    """
    if isinstance(data, bytes):
        return from_json(data.removeprefix(codecs.BOM_UTF8), allow_inf_nan=False)
    return from_json(data.removeprefix("\ufeff"), allow_inf_nan=False)


class UnsupportedParameter(ProviderBadRequest):
    """The request sets a parameter this provider cannot honour (answered 400, naming it)."""

    def __init__(self, message: str, *, param: str, provider: str = "") -> None:
        super().__init__(message, provider=provider, http_status=400)
        self.param = param


def refuse_choices_and_logprobs(request: ChatRequest, provider: str, kind: str) -> None:
    """Refuse ``n > 1``, ``logprobs`` and ``top_logprobs``, which only OpenAI-compatible servers serve.

    Raises:
        UnsupportedParameter: one of them is set; the message names it and what to do.
    """
    extra = request.passthrough()
    for param, asked in (("n", (request.n or 1) > 1), ("logprobs", bool(extra.get("logprobs"))),
                         ("top_logprobs", extra.get("top_logprobs") is not None)):
        if asked:
            raise UnsupportedParameter(
                f"{param} is not supported by provider {provider!r} ({kind}): only OpenAI-compatible upstreams "
                f"serve it; leave {param} out or ask a model served by an OpenAI-compatible provider",
                param=param,
                provider=provider,
            )


def refuse_json_object(request: ChatRequest, provider: str, kind: str) -> None:
    """Refuse ``response_format: {"type": "json_object"}`` at a provider whose API has only JSON schemas.

    Dropping it would answer prose to a client that parses JSON; refused,
    the call moves on to a deployment with JSON mode, as for ``n > 1``.

    Raises:
        UnsupportedParameter: the request asks for ``json_object``; the message says what to send instead.
    """
    if (request.response_format or {}).get("type") == "json_object":
        raise UnsupportedParameter(
            f"response_format json_object is not supported by provider {provider!r} ({kind}): its API has no JSON "
            f"mode, only JSON schemas; send response_format {{\"type\": \"json_schema\", \"json_schema\": "
            f"{{\"name\": ..., \"schema\": ...}}}} or ask a model served by a provider with JSON mode",
            param="response_format",
            provider=provider,
        )


# --- server-sent events -------------------------------------------------------


@dataclass(slots=True)
class SSEEvent:
    """One server-sent event: its ``event:`` name (may be empty) and data."""

    event: str
    data: str


class _Framer:
    """The SSE fields of the event being read."""

    __slots__ = ("data", "event", "started")

    def __init__(self) -> None:
        self.event = ""
        self.data: list[str] = []
        self.started = False

    def line(self, raw: bytes) -> SSEEvent | None:
        """Take one line; the event it completes, if any."""
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        if not self.started:
            line, self.started = line.removeprefix("\ufeff"), True
        if not line:
            return self.dispatch()
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        return None

    def dispatch(self) -> SSEEvent | None:
        """The event read so far (None if it has no data), and start a new one."""
        event = SSEEvent(self.event, "\n".join(self.data)) if self.data else None
        self.event, self.data = "", []
        return event


async def iter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """Frame server-sent events out of an async byte stream.

    Lines end in LF, CRLF or CR; ``data:`` lines of one event are joined by
    newlines; comments (``:`` lines) and ``id``/``retry`` fields are skipped.
    A last line cut mid-way (no line end) is dropped, so a truncated event
    never reaches a JSON parser; the caller notices the missing end marker.
    """
    framer = _Framer()
    buffer = b""
    async for chunk in chunks:
        lines = (buffer + chunk).splitlines(keepends=True)
        # Hold back a line without its end, and a CR that may be half of a CRLF.
        buffer = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        for raw in lines:
            if (event := framer.line(raw)) is not None:
                yield event
    if buffer.endswith(b"\r"):
        if (event := framer.line(buffer)) is not None:
            yield event
        buffer = b""
    if not buffer and (event := framer.dispatch()) is not None:
        # Ended after a whole line but without the blank line that dispatches
        # it: servers do this, and the event is complete.
        yield event


# --- error bodies and statuses --------------------------------------------------


@dataclass(slots=True)
class ErrorBody:
    """The parts of a provider's error body ax uses."""

    message: str
    type: str = ""
    code: str = ""
    details: list[dict[str, Any]] = field(default_factory=list)


def parse_error_body(body: bytes | str | Mapping[str, Any]) -> ErrorBody:
    """Read OpenAI, Anthropic, Gemini and plain-text error bodies alike.

    Shapes: ``{"error": {"message", "type", "code"}}`` (OpenAI),
    ``{"type": "error", "error": {"type", "message"}}`` (Anthropic),
    ``{"error": {"code", "message", "status", "details"}}`` (Gemini, also
    wrapped in a list), ``{"error": "text"}`` (Ollama and other servers).
    """
    if isinstance(body, Mapping):
        data: Any = body
        text = json.dumps(body, default=str)
    else:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        try:
            data = json.loads(text)
        except ValueError:
            return ErrorBody(message=text.strip()[:_SNIPPET])
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return ErrorBody(message=text.strip()[:_SNIPPET])
    err = data.get("error", data)
    if isinstance(err, str):
        return ErrorBody(message=err)
    if not isinstance(err, dict):
        return ErrorBody(message=text.strip()[:_SNIPPET])
    details = err.get("details")
    return ErrorBody(
        message=str(err.get("message") or data.get("message") or data.get("detail") or ""),
        type=str(err.get("type") or err.get("status") or ""),
        code=str(err.get("code") or ""),
        details=[d for d in details if isinstance(d, dict)] if isinstance(details, list) else [],
    )


_CONTEXT_PATTERNS = re.compile(
    r"context[ _-]length[ _-]exceeded|maximum context length|context window|prompt is too long"
    r"|input token count.*exceeds the maximum|exceed context limit|reduce the length of the messages",
    re.IGNORECASE | re.DOTALL,
)

#: Status an error ``type`` stands for, for errors that arrive inside a
#: stream (Anthropic and OpenAI names, Google's canonical codes).
# fmt: off
_TYPE_STATUS = {name: status for status, names in (
    (400, "invalid_request_error invalid_argument failed_precondition"),
    (401, "authentication_error unauthenticated"), (403, "permission_error permission_denied"),
    (404, "not_found_error not_found"), (413, "request_too_large"),
    (429, "rate_limit_error rate_limit_exceeded resource_exhausted tokens"),
    (500, "api_error server_error internal"), (503, "unavailable"), (504, "deadline_exceeded"),
    (529, "overloaded_error"),
) for name in names.split()}
# fmt: on


def status_for_type(info: ErrorBody, default: int = 500) -> int:
    """The HTTP status an error reported without one stands for."""
    if info.code.isascii() and info.code.isdigit() and 100 <= int(info.code) <= 599:
        return int(info.code)
    return _TYPE_STATUS.get(info.type.lower(), _TYPE_STATUS.get(info.code.lower(), default))


def _classify(status: int, info: ErrorBody) -> type[ProviderError]:
    reasons = {str(d.get("reason", "")) for d in info.details}
    if status in (401, 403) or "API_KEY_INVALID" in reasons:
        return ProviderAuthError
    if status == 429:
        return ProviderRateLimited
    if status == 408:
        return ProviderTimeout
    if status >= 500:
        return ProviderServerError
    if info.code == "context_length_exceeded" or _CONTEXT_PATTERNS.search(info.message):
        return ContextTooLong
    if 400 <= status < 500:
        return ProviderBadRequest
    return MalformedResponse


def redact(text: str, secret: str | None = None) -> str:
    """Remove a key (this provider's, any remembered one, and anything that looks like one) from a message."""
    # A secret too short to be a real key would blank out ordinary words.
    if secret and len(secret) >= 8:
        text = text.replace(secret, REDACTED)
    return scrub(text)


def excerpt(raw: bytes | str, secret: str | None = None, limit: int = 80) -> str:
    """The start of an upstream's body for a message: keys removed first, then cut to ``limit`` characters
    (cut first, a key straddling the cut would be left in part, where nothing recognises it)."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    # A key is far shorter than the margin: one that starts before the cut ends within it.
    return redact(text[: limit + 1024], secret)[:limit]


_ADVICE: dict[type[ProviderError], str] = {
    ContextTooLong: "shorten the conversation or route to a model with a larger context window",
    ProviderBadRequest: "the request is not valid for this provider and model",
    ProviderTimeout: "the provider gave up waiting; try again",
    ProviderServerError: "the provider failed; try again later or another deployment",
    MalformedResponse: "the provider answered something ax does not understand",
}


def _advice(cls: type[ProviderError], key_env: str | None, retry_after: float | None) -> str:
    if cls is ProviderAuthError:
        if key_env:
            return f"check the key in the environment variable {key_env}"
        return "no key was sent: set api_key_env in this provider's config to the variable holding the key"
    if cls is ProviderRateLimited:
        if retry_after is not None:
            return f"retry after {retry_after:g}s"
        return "slow down, or raise the limits of this provider account"
    return _ADVICE[cls]


def error_for_status(
    provider: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes | Mapping[str, Any],
    *,
    now: float,
    secret: str | None = None,
    key_env: str | None = None,
    in_stream: bool = False,
) -> ProviderError:
    """The `ProviderError` an HTTP error answer (or an error event) stands for.

    Args:
        provider: the provider's configured name, named in the message.
        status: the HTTP status (for an error event, what its type stands for).
        headers: the response headers (Retry-After, rate-limit headers).
        body: the raw error body, or an error event already parsed.
        now: epoch seconds, to turn HTTP dates into delays.
        secret: the key that was sent; removed from the message if echoed.
        key_env: the variable the key came from, named in auth errors.
        in_stream: the error arrived as an event inside a stream.
    """
    info = parse_error_body(body)
    cls = _classify(status, info)
    retry_after: float | None = None
    if cls is ProviderRateLimited:
        retry_after = parse_retry_after(headers, now)
        if retry_after is None:
            retry_after = _retry_delay(info)
        if retry_after is None:
            retry_after = _exhausted_reset(headers, now)
    where = "sent an error in the stream" if in_stream else f"answered HTTP {status}"
    kind = f" {info.type}" if info.type else ""
    detail = redact(info.message, secret) or "(no error message)"
    message = f"provider {provider!r} {where}{kind}: {detail}; {_advice(cls, key_env, retry_after)}"
    if cls is ProviderRateLimited:
        return ProviderRateLimited(message, provider=provider, http_status=status, retry_after=retry_after)
    return cls(message, provider=provider, http_status=status)


# --- durations, Retry-After and rate-limit headers --------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


#: The longest wait an upstream's headers can impose: a longer one (a daily quota, or a header that is
#: wrong) is probed again after this, rather than shutting the provider out until a restart.
MAX_WAIT_S = 3600.0


def _wait(seconds: float) -> float | None:
    """``seconds`` as a wait: at least 0, at most `MAX_WAIT_S`; None when it is not a number (nan, inf)."""
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_WAIT_S)


def parse_duration(text: str | None) -> float | None:
    """Seconds in a Go-style duration (``6m0s``, ``1.5s``, ``120ms``) or a bare number; None for nan or inf."""
    if not text:
        return None
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        parts = _DURATION_PART.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            return None
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), as a wait (`_wait`)."""
    millis = headers.get("retry-after-ms")
    if millis:
        with contextlib.suppress(ValueError):
            return _wait(float(millis) / 1000.0)
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _wait(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _wait(when.timestamp() - now)


def _retry_delay(info: ErrorBody) -> float | None:
    # Gemini says how long to wait in a google.rpc.RetryInfo detail.
    for detail in info.details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            delay = parse_duration(str(detail.get("retryDelay", "")))
            return None if delay is None else _wait(delay)
    return None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(float(value)))
    except (ValueError, OverflowError):  # not a number, nan, inf
        return None


def _reset_seconds(value: str | None, now: float) -> float | None:
    """A reset given as a duration (OpenAI) or an RFC 3339 instant (Anthropic)."""
    if not value:
        return None
    seconds = parse_duration(value)
    if seconds is not None:
        return _wait(seconds)
    try:
        return _wait(datetime.fromisoformat(value.strip()).timestamp() - now)
    except (ValueError, OverflowError):
        return None


def _families(unit: str) -> tuple[tuple[str, str, str], ...]:
    openai = (f"x-ratelimit-limit-{unit}", f"x-ratelimit-remaining-{unit}", f"x-ratelimit-reset-{unit}")
    anthropic = (f"anthropic-ratelimit-{unit}-limit", f"anthropic-ratelimit-{unit}-remaining",
                 f"anthropic-ratelimit-{unit}-reset")
    if unit == "requests":
        return openai, anthropic
    # Without a combined token limit, Anthropic's input-token limit is the one that binds first.
    return openai, anthropic, ("anthropic-ratelimit-input-tokens-limit", "anthropic-ratelimit-input-tokens-remaining",
                               "anthropic-ratelimit-input-tokens-reset")


#: The header names each unit's limits come under, per family, in the order they are looked for.
_FAMILIES = {unit: _families(unit) for unit in ("requests", "tokens")}


def _limit_headers(headers: Mapping[str, str], unit: str) -> tuple[str | None, str | None, str | None]:
    """(limit, remaining, reset) for ``requests`` or ``tokens``, whichever family is present."""
    for names in _FAMILIES[unit]:
        for name in names:
            if name in headers:
                return headers.get(names[0]), headers.get(names[1]), headers.get(names[2])
    return None, None, None


def learn_limits(limits: UpstreamLimits, headers: Mapping[str, str], now: float) -> bool:
    """Record what the provider said about its limits; True if it said anything."""
    learned = False
    for unit in ("requests", "tokens"):
        limit, remaining, reset = _limit_headers(headers, unit)
        if limit is None and remaining is None and reset is None:
            continue
        learned = True
        setattr(limits, f"limit_{unit}", _int(limit))
        setattr(limits, f"remaining_{unit}", _int(remaining))
        setattr(limits, f"reset_{unit}_s", _reset_seconds(reset, now))
    if learned:
        limits.updated_at = now
    return learned


def _exhausted_reset(headers: Mapping[str, str], now: float) -> float | None:
    # A 429 without Retry-After: wait for the dimension that ran out to reset.
    waits = []
    for unit in ("requests", "tokens"):
        _, remaining, reset = _limit_headers(headers, unit)
        if _int(remaining) == 0:
            seconds = _reset_seconds(reset, now)
            if seconds is not None:
                waits.append(seconds)
    return max(waits) if waits else None
