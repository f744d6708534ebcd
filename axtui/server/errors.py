"""Every error the gateway answers with, in OpenAI's error shape.

The body is always ``{"error": {"message", "type", "param", "code"}}``
(the ``/v1/messages`` routes add Anthropic's top-level ``"type": "error"``,
and their ``error.type`` is one of Anthropic's: `ANTHROPIC_ERROR_TYPES`).
Status codes:

| status | when | ``code`` |
| --- | --- | --- |
| 400 | malformed JSON, a field that fails validation (``param`` names it), a bad ``X-Ax-Cache`` | ``invalid_request``, ``invalid_json`` |
| 400 | the provider refused the request; the prompt does not fit | ``upstream_bad_request``, ``context_length_exceeded`` |
| 401 | no gateway key, a wrong one, a revoked one | ``invalid_api_key`` |
| 401 | an expired gateway key, or a rotated secret past its grace | ``key_expired`` |
| 402 | a hard budget would be exceeded (``Retry-After`` when the period ends) | ``budget_exceeded`` |
| 403 | an ``/api/*`` write without the admin key | ``admin_key_required`` |
| 403 | a call of a model with the admin key (it manages ax; gateway keys call) | ``gateway_key_required`` |
| 403 | a model outside the key's (or its team's) allow-list | ``model_not_allowed`` |
| 404 | an unknown model (the message lists the served ones), an unknown path | ``model_not_found``, ``not_found`` |
| 405 | a method the path does not take | ``method_not_allowed`` |
| 413 | a body over ``server.max_body_bytes`` | ``request_too_large`` |
| 429 | a rate limit of ax (``Retry-After``, ``X-RateLimit-*``) or of the provider | ``rate_limit_exceeded``, ``upstream_rate_limited`` |
| 502 | the provider failed (5xx, garbage, a dropped connection, a wrong provider key) | ``upstream_error`` |
| 403 | a write a web page of another site sent (``Origin``) | ``cross_origin`` |
| 403 | a gateway key reading another tenant's data under ``/api`` | ``not_your_data`` |
| 415 | a write whose body is not JSON | ``unsupported_media_type`` |
| 421 | a ``Host`` that is neither the address listened on, a loopback name, nor in ``server.allowed_hosts`` | ``misdirected_request`` |
| 429 | more metrics streams than ``server.max_streams_per_key`` | ``too_many_streams`` |
| 503 | the store is unusable (the message names no file: the log does); starting or stopping | ``store_unavailable``, ``unavailable`` |
| 504 | the provider did not answer in time | ``upstream_timeout`` |
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from axtui.errors import (
    AuthenticationError,
    AxError,
    BudgetExceeded,
    ConfigError,
    ContextTooLong,
    InvalidRequest,
    KeyExpired,
    ModelNotAllowed,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    RateLimited,
    RequestError,
    RouteUnavailable,
    StoreError,
    StoreLocked,
    UnknownModel,
)
from axtui.ports import LimitState
from axtui.validation import field_problems, problems_text

__all__ = [
    "ANTHROPIC_ERROR_TYPES",
    "ErrorDetail",
    "ErrorResponse",
    "HTTPProblem",
    "Headers",
    "error_payload",
    "invalid_from_validation",
    "invalid_json",
    "limit_headers",
    "problem_for_status",
]

log = logging.getLogger(__name__)

Headers = list[tuple[bytes, bytes]]

#: Anthropic's ``error.type`` for each status ax answers (its documented errors); any other 4xx is
#: ``invalid_request_error`` and any other 5xx ``api_error``, as Anthropic words them.
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _anthropic_type(status: int) -> str:
    return ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class ErrorDetail(BaseModel):
    """What went wrong, for people (``message``) and programs (``type``, ``code``)."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error answer (OpenAI's shape)."""

    error: ErrorDetail


class HTTPProblem(RequestError):
    """An HTTP-level refusal: a body too large, a path or method unknown, no admin key."""

    def __init__(self, status: int, message: str, *, error_type: str, code: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status
        self.error_type = error_type
        self.code = code
        self.param = param


def problem_for_status(status: int, detail: str | None = None) -> HTTPProblem:
    """The problem to answer for a bare HTTP status (unknown path, wrong method…)."""
    if status == 404:
        return HTTPProblem(404, detail or "no such path here; the API is under /v1 and /api (see /docs)",
                           error_type="invalid_request_error", code="not_found")
    if status == 405:
        return HTTPProblem(405, detail or "this path does not take that method (see /docs)",
                           error_type="invalid_request_error", code="method_not_allowed")
    if status == 413:
        return HTTPProblem(413, detail or "the request body is too large", error_type="invalid_request_error",
                           code="request_too_large")
    if status == 503:
        return HTTPProblem(503, detail or "the gateway is not ready", error_type="unavailable", code="unavailable")
    return HTTPProblem(status, detail or "the request cannot be served", error_type="invalid_request_error",
                       code=f"http_{status}")


def invalid_from_validation(
    exc: ValidationError | Sequence[Mapping[str, Any]],
    *,
    prefix: Sequence[str] = (),
    sourced: bool = False,
    rename: Callable[[tuple[int | str, ...]], tuple[int | str, ...]] | None = None,
) -> InvalidRequest:
    """An `InvalidRequest` naming the first field that failed and every message.

    Args:
        exc: pydantic's error, or FastAPI's list of errors (then ``sourced``).
        prefix: path in front of every field's own.
        sourced: the paths start with FastAPI's ``body``/``query``/…, left out.
        rename: each path as the client's wire names it, for a request translated into ax's chat shape
            (``tools.0.function.name`` is ``tools.0.name`` on /v1/responses).
    """
    if rename is not None:
        errors = exc.errors(include_url=False) if isinstance(exc, ValidationError) else exc
        exc = [{**err, "loc": rename(tuple(err.get("loc", ())))} for err in errors]
    problems = field_problems(exc, prefix=prefix, sourced=sourced)
    first = problems[0] if problems else None
    if first is not None and first.type == "json_invalid":
        return invalid_json(str(first.ctx.get("error", first.message)))
    if first is not None and first.type == "model_type" and not first.loc:
        return InvalidRequest("the request body must be a JSON object", param=None)
    return InvalidRequest("invalid request: " + problems_text(problems), param=first.where if first else None)


def invalid_json(why: str) -> InvalidRequest:
    """The 400 for a body that does not parse (``why``: the parser's reason), with how to fix what it names.

    Text that is not Unicode is the one reason a parser's words do not
    explain: a ``\\uXXXX`` escape of half a UTF-16 surrogate pair (which no
    UTF-8 store or file can hold), or bytes that are not UTF-8.
    """
    if "surrogate" in why or "hex escape" in why:
        why += (": a \\u escape takes four hex digits, and a UTF-16 surrogate (\\ud800 to \\udfff) only with its "
                "pair, as in \\ud83d\\ude00")
    elif "unicode code point" in why:
        why += ": send the body as UTF-8 text"
    return InvalidRequest(f"the request body is not valid JSON ({why}); send one JSON object", param=None)


def _retry_after(headers: Headers, seconds: float | None) -> None:
    if seconds is None or not math.isfinite(seconds):
        return
    seconds = max(0.0, seconds)
    # Retry-After takes whole seconds; the OpenAI SDKs also read retry-after-ms.
    headers.append((b"retry-after", str(max(1, math.ceil(seconds))).encode()))
    headers.append((b"retry-after-ms", str(math.ceil(seconds * 1000)).encode()))


def limit_headers(states: Sequence[LimitState], refused: RateLimited | None = None) -> Headers:
    """X-RateLimit-* headers (as the rate limiter words them) for an admission or a refusal.

    ``X-RateLimit-Limit/-Remaining/-Reset`` describe the tightest request
    limit (or the refused one); the ``-Requests`` and ``-Tokens`` variants
    each unit's tightest. Reset is in whole seconds, rounded up.
    """
    from axtui.ratelimit.headers import rate_limit_pairs

    return [(_lower_name(k), v.encode()) for k, v in rate_limit_pairs(states, refused) if k != "Retry-After"]


@functools.cache
def _lower_name(name: str) -> bytes:
    # One of the dozen X-RateLimit-* names, as HTTP/1.1 and ASGI want them.
    return name.lower().encode()


def _code(exc: AxError) -> str:
    if isinstance(exc, HTTPProblem):
        return exc.code
    if isinstance(exc, UnknownModel):
        return "model_not_found"
    if isinstance(exc, KeyExpired):
        return "key_expired"
    if isinstance(exc, AuthenticationError):
        return "invalid_api_key"
    if isinstance(exc, ModelNotAllowed):
        return "model_not_allowed"
    if isinstance(exc, InvalidRequest):
        return "invalid_json" if exc.message.startswith("the request body is not valid JSON") else "invalid_request"
    if isinstance(exc, RateLimited):
        return "rate_limit_exceeded"
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, ContextTooLong):
        return "context_length_exceeded"
    if isinstance(exc, ProviderBadRequest):
        return "upstream_bad_request"
    if isinstance(exc, ProviderRateLimited):
        return "upstream_rate_limited"
    if isinstance(exc, ProviderTimeout):
        return "upstream_timeout"
    if isinstance(exc, ProviderError):
        return "upstream_error"
    if isinstance(exc, StoreError):
        return "store_unavailable"
    if isinstance(exc, ConfigError):
        return "config_error"
    return "error"


def _param(exc: AxError) -> str | None:
    if isinstance(exc, (UnknownModel, ModelNotAllowed)):
        return "model"
    if isinstance(exc, ContextTooLong):
        return "messages"
    return getattr(exc, "param", None)


def _status(exc: AxError) -> int:
    if isinstance(exc, ProviderError) and not isinstance(exc, (ProviderBadRequest, ProviderRateLimited,
                                                               RouteUnavailable)):
        # The provider's own status (a 503, say) is ax's 502: the gateway is fine, upstream is not.
        return 504 if isinstance(exc, ProviderTimeout) else 502
    return exc.status_code


class RepeatedWarning:
    """A warning that may come on every call: logged at most once per ``every_s`` for each kind, with a count.

    A read-only, full or locked database refuses every call, hundreds a
    second under load; one line per refusal buries the log's other lines.
    """

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.clock = clock
        #: Per kind: when it was last logged, and how many were left out since.
        self._last: dict[str, tuple[float, int]] = {}

    def warn(self, kind: str, message: str) -> None:
        """Log ``message`` unless a warning of ``kind`` was logged less than ``every_s`` ago (then count it)."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last[0] < self.every_s:
            self._last[kind] = (last[0], last[1] + 1)
            return
        self._last[kind] = (now, 0)
        if last is not None and last[1]:
            log.warning("%s (and %d more such answers in the last %.0f s)", message, last[1], now - last[0])
        else:
            log.warning("%s", message)


_STORE_ANSWERS = RepeatedWarning()


def _client_message(exc: AxError) -> str:
    """The message a client reads: a store's or config's own names server files, so the log gets it instead."""
    if isinstance(exc, StoreLocked):
        _STORE_ANSWERS.warn(type(exc).__name__, f"answered 503: {exc.message}")
        return "the gateway's database is locked by another program; retry in a moment (the server log says more)"
    if isinstance(exc, StoreError):
        _STORE_ANSWERS.warn(type(exc).__name__, f"answered 503: {exc.message}")
        return "the gateway's database cannot be used right now; retry later (the server log says why)"
    if isinstance(exc, (ConfigError, InvalidRequest)):
        # The ones whose text may come from a config file's error (refusals and upstream errors never do).
        return _without_paths(exc.message)
    return exc.message


def _without_paths(message: str) -> str:
    """``message`` with the server's own folders left out (a config error names its file, say)."""
    if "/" not in message and "\\" not in message:
        return message
    from axtui import locations

    for folder in {locations.config_dir(), locations.data_dir(), Path.home()}:
        text = str(folder)
        if len(text) > 1 and text in message:
            message = message.replace(text + os.sep, "").replace(text, "")
    return message


def error_payload(exc: BaseException, *, anthropic: bool = False) -> tuple[int, dict[str, Any], Headers]:
    """Status, body and extra headers for any exception the gateway meets (in Anthropic's terms with ``anthropic``).

    Anything that is not an `AxError` is a bug in ax: it is logged with its
    traceback and answered with a 500 that says so, without internals.
    """
    if isinstance(exc, ValidationError):
        exc = invalid_from_validation(exc)
    headers: Headers = []
    if isinstance(exc, AxError):
        status = _status(exc)
        detail = {"message": _client_message(exc), "type": exc.error_type, "param": _param(exc), "code": _code(exc)}
        if isinstance(exc, RateLimited):
            _retry_after(headers, exc.retry_after)
            if exc.limit is not None:
                headers.extend(limit_headers([], exc))
        elif isinstance(exc, (BudgetExceeded, ProviderRateLimited, RouteUnavailable)):
            # A route none may take now (circuits open) says when one may again: a 503 to retry then.
            _retry_after(headers, exc.retry_after)
        elif isinstance(exc, AuthenticationError):
            headers.append((b"www-authenticate", b'Bearer realm="ax"'))
    else:
        log.error("internal error while serving a request", exc_info=exc)
        status = 500
        detail = {
            "message": f"ax hit an internal error ({type(exc).__name__}); it is logged on the server. "
            "Please report it with the server log.",
            "type": "api_error",
            "param": None,
            "code": "internal_error",
        }
    body: dict[str, Any] = {"error": detail}
    if anthropic:
        body = {"type": "error", "error": {**detail, "type": _anthropic_type(status)}}
    return status, body, headers


def encode(body: Any) -> bytes:
    """JSON bytes of a response body."""
    return to_json(body)
