"""The shared wire helpers: SSE framing, error mapping, durations, limit headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

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
from axtui.providers._wire import (
    MAX_WAIT_S,
    SSEEvent,
    error_for_status,
    iter_sse,
    learn_limits,
    parse_duration,
    parse_error_body,
    parse_retry_after,
    redact,
)
from axtui.providers.base import UpstreamLimits

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


async def _pieces(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _events(*chunks: bytes) -> list[SSEEvent]:
    return [event async for event in iter_sse(_pieces(*chunks))]


# --- SSE ----------------------------------------------------------------------------


async def test_sse_events_are_framed_by_blank_lines_with_their_names() -> None:
    events = await _events(b'event: message_start\ndata: {"a": 1}\n\n', b"data: second\n\n")
    assert events == [SSEEvent("message_start", '{"a": 1}'), SSEEvent("", "second")]


async def test_sse_event_split_across_reads_at_every_byte_is_reassembled() -> None:
    body = b"event: x\r\ndata: caf\xc3\xa9\r\n\r\ndata: [DONE]\r\n\r\n"
    events = await _events(*(body[i : i + 1] for i in range(len(body))))
    assert events == [SSEEvent("x", "café"), SSEEvent("", "[DONE]")]


async def test_sse_lone_cr_line_endings_and_multiline_data() -> None:
    events = await _events(b"data: one\rdata: two\r\r: a comment\rid: 7\rretry: 10\rdata:three\r\r")
    assert events == [SSEEvent("", "one\ntwo"), SSEEvent("", "three")]


async def test_sse_comments_and_keepalives_are_not_events() -> None:
    assert await _events(b": ping\n\n: keep-alive\n\n") == []


async def test_sse_last_event_without_blank_line_is_delivered() -> None:
    assert await _events(b"data: [DONE]\n") == [SSEEvent("", "[DONE]")]


async def test_sse_line_cut_mid_way_is_dropped_not_delivered_half() -> None:
    events = await _events(b'data: {"whole": true}\n\ndata: {"cut": tr')
    assert events == [SSEEvent("", '{"whole": true}')]


async def test_sse_byte_order_mark_at_start_is_ignored() -> None:
    assert await _events(b"\xef\xbb\xbfdata: hi\n\n") == [SSEEvent("", "hi")]


# --- durations and Retry-After ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("1h2m3s", 3723.0),
        ("7.66s", 7.66),
        ("30", 30.0),
        ("46s", 46.0),
    ],
)
def test_durations_in_go_notation_and_bare_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", None, "soon", "5 minutes", "1x"])
def test_durations_that_are_not_durations(text: str | None) -> None:
    assert parse_duration(text) is None


def test_retry_after_ms_wins_over_retry_after() -> None:
    headers = httpx.Headers({"retry-after-ms": "1500", "retry-after": "9"})
    assert parse_retry_after(headers, NOW) == 1.5


def test_retry_after_in_seconds_and_as_http_date() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "20"}), NOW) == 20.0
    date = "Sun, 15 Jun 2025 15:07:10 GMT"  # NOW + 30 s
    assert parse_retry_after(httpx.Headers({"Retry-After": date}), NOW) == pytest.approx(30.0)


def test_retry_after_missing_or_garbage_is_unknown() -> None:
    assert parse_retry_after(httpx.Headers({}), NOW) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "later"}), NOW) is None
    for value in ("inf", "nan", "1e400"):
        assert parse_retry_after(httpx.Headers({"retry-after": value}), NOW) is None


def test_an_absurd_wait_is_cut_to_an_hour_so_the_provider_is_tried_again() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "99999999999"}), NOW) == MAX_WAIT_S
    limits = UpstreamLimits()
    assert learn_limits(limits, httpx.Headers({"x-ratelimit-remaining-requests": "0",
                                                "x-ratelimit-reset-requests": "9999999999999999999999h",
                                                "x-ratelimit-limit-tokens": "inf",
                                                "x-ratelimit-remaining-tokens": "1e400"}), NOW)
    assert limits.reset_requests_s == MAX_WAIT_S
    assert (limits.limit_tokens, limits.remaining_tokens) == (None, None)


# --- rate-limit headers ----------------------------------------------------------------------


def test_openai_rate_limit_headers_are_learned() -> None:
    limits = UpstreamLimits()
    headers = httpx.Headers(
        {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert learn_limits(limits, headers, NOW)
    assert (limits.limit_requests, limits.remaining_requests) == (10000, 9999)
    assert (limits.limit_tokens, limits.remaining_tokens) == (30_000_000, 29_999_000)
    assert limits.reset_requests_s == pytest.approx(0.006)
    assert limits.reset_tokens_s == 360.0
    assert limits.updated_at == NOW


def test_anthropic_rate_limit_headers_with_rfc3339_resets_are_learned() -> None:
    limits = UpstreamLimits()
    headers = httpx.Headers(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2025-06-15T15:06:52Z",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "38000",
            "anthropic-ratelimit-tokens-reset": "2025-06-15T15:07:40Z",
        }
    )
    assert learn_limits(limits, headers, NOW)
    assert (limits.limit_requests, limits.remaining_requests) == (50, 49)
    assert limits.reset_requests_s == pytest.approx(12.0)
    assert (limits.limit_tokens, limits.remaining_tokens) == (40000, 38000)
    assert limits.reset_tokens_s == pytest.approx(60.0)


def test_no_rate_limit_headers_leave_limits_untouched() -> None:
    limits = UpstreamLimits(remaining_requests=5, updated_at=1.0)
    assert not learn_limits(limits, httpx.Headers({"content-type": "application/json"}), NOW)
    assert (limits.remaining_requests, limits.updated_at) == (5, 1.0)


# --- error bodies and statuses ----------------------------------------------------------------


def test_error_bodies_of_every_shape_are_read() -> None:
    openai = parse_error_body(b'{"error": {"message": "bad", "type": "invalid_request_error", "code": "x"}}')
    assert (openai.message, openai.type, openai.code) == ("bad", "invalid_request_error", "x")
    anthropic = parse_error_body(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    assert (anthropic.message, anthropic.type) == ("Overloaded", "overloaded_error")
    gemini = parse_error_body(b'[{"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}]')
    assert (gemini.message, gemini.type, gemini.code) == ("busy", "UNAVAILABLE", "503")
    assert parse_error_body(b'{"error": "model \\"x\\" not found"}').message == 'model "x" not found'
    assert parse_error_body(b"<html>Bad Gateway</html>").message == "<html>Bad Gateway</html>"


def _error(status: int, body: str, headers: dict[str, str] | None = None) -> ProviderError:
    return error_for_status("acme", status, httpx.Headers(headers or {}), body.encode(), now=NOW, key_env="ACME_KEY")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, '{"error": {"message": "invalid key"}}', ProviderAuthError),
        (403, '{"error": {"message": "forbidden"}}', ProviderAuthError),
        (400, '{"error": {"message": "bad temperature", "code": "invalid_value"}}', ProviderBadRequest),
        (404, '{"error": {"message": "no such model"}}', ProviderBadRequest),
        (422, '{"detail": "unprocessable"}', ProviderBadRequest),
        (400, '{"error": {"message": "too long", "code": "context_length_exceeded"}}', ContextTooLong),
        (400, '{"error": {"message": "This model\'s maximum context length is 8192 tokens."}}', ContextTooLong),
        (400, '{"error": {"message": "prompt is too long: 215432 tokens > 200000 maximum"}}', ContextTooLong),
        (
            400,
            '{"error": {"message": "The input token count (1200000) exceeds the maximum number of tokens '
            'allowed (1048576).", "status": "INVALID_ARGUMENT"}}',
            ContextTooLong,
        ),
        (429, '{"error": {"message": "slow down"}}', ProviderRateLimited),
        (408, "timeout", ProviderTimeout),
        (500, '{"error": {"message": "oops", "type": "server_error"}}', ProviderServerError),
        (503, "Service Unavailable", ProviderServerError),
        (529, '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', ProviderServerError),
        (302, "moved", MalformedResponse),
    ],
)
def test_statuses_map_to_the_most_specific_error(status: int, body: str, expected: type[ProviderError]) -> None:
    error = _error(status, body)
    assert type(error) is expected
    assert error.http_status == status
    assert error.provider == "acme"
    assert "'acme'" in error.message and str(status) in error.message


def test_error_message_names_provider_status_and_the_providers_own_words() -> None:
    error = _error(400, '{"error": {"message": "Invalid value for temperature", "type": "invalid_request_error"}}')
    assert error.message.startswith("provider 'acme' answered HTTP 400 invalid_request_error: Invalid value")


def test_auth_error_says_which_variable_holds_the_key() -> None:
    assert "ACME_KEY" in _error(401, '{"error": {"message": "nope"}}').message


def test_gemini_invalid_key_is_an_auth_error_despite_its_400() -> None:
    body = (
        '{"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", '
        '"status": "INVALID_ARGUMENT", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", '
        '"reason": "API_KEY_INVALID", "domain": "googleapis.com"}]}}'
    )
    assert isinstance(_error(400, body), ProviderAuthError)


def test_rate_limit_waits_for_the_exhausted_limit_when_no_retry_after() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "120",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    error = _error(429, '{"error": {"message": "TPM"}}', headers)
    assert isinstance(error, ProviderRateLimited)
    assert error.retry_after == 360.0
    assert "retry after 360s" in error.message


def test_rate_limit_with_nothing_said_has_unknown_retry_after() -> None:
    error = _error(429, '{"error": {"message": "too many"}}')
    assert isinstance(error, ProviderRateLimited)
    assert error.retry_after is None


def test_keys_echoed_by_the_provider_never_reach_the_message() -> None:
    body = '{"error": {"message": "Incorrect API key provided: sk-proj-abcdefghijklmnop1234. Key sk-live-SECRET9"}}'
    error = error_for_status("acme", 401, httpx.Headers(), body.encode(), now=NOW, secret="sk-live-SECRET9")
    assert "abcdefghijklmnop1234" not in error.message
    assert "SECRET9" not in error.message
    assert "Incorrect API key provided" in error.message


def test_redact_removes_google_style_keys() -> None:
    assert "AIza" not in redact("bad key AIzaSyD-1234567890abcdefghijklmnopqrs given")
