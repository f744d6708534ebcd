"""Secrets never leave in a message, a record or a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from axtui.errors import MalformedResponse, ProviderServerError
from axtui.redaction import REDACTED, ScrubFilter, forget_all, remember, scrub
from axtui.store.recorder import record_to_row
from axtui.types import CallRecord


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    forget_all()
    yield
    forget_all()


@pytest.mark.parametrize(
    "secret",
    [
        "sk-SECRET123abcdefgh",
        "sk-ant-api03-SECRET123abcdefgh",
        "AIzaSyDSECRET123abcdefghijklmnop",
        "axk_0123456789ab_SECRETsecretSECRETsecret",
        "gsk_SECRET123abcdefghijkl",
    ],
)
def test_key_shaped_text_is_removed(secret: str) -> None:
    assert secret not in scrub(f"upstream said: invalid key {secret}, sorry")


def test_a_bearer_token_of_any_shape_is_removed() -> None:
    assert "plainvalue123456" not in scrub("not json Bearer plainvalue123456")


def test_a_remembered_secret_of_any_shape_is_removed() -> None:
    remember("hunter2-but-longer")
    assert scrub("echo: hunter2-but-longer!") == f"echo: {REDACTED}!"


def test_short_values_are_not_remembered_so_words_survive() -> None:
    remember("the")
    assert scrub("the answer") == "the answer"


def test_ordinary_messages_are_unchanged() -> None:
    text = "provider 'openai' answered HTTP 500: internal error; try again later (task-1234, model gpt-4o-mini)"
    assert scrub(text) == text


def test_provider_errors_never_carry_a_key_whatever_built_them() -> None:
    remember("customSECRETvalue99")
    exc = MalformedResponse("a body that is not JSON ('not json Bearer sk-SECRET123openai customSECRETvalue99')")
    assert "SECRET" not in exc.message and "SECRET" not in str(exc)
    assert "SECRET" not in ProviderServerError("500: for key AIzaSECRET123abcdefghijklmnop").message


def test_the_recorder_stores_error_texts_scrubbed() -> None:
    rec = CallRecord(ts=1.0, user="u", requested_model="m", status="error",
                     error_message="RuntimeError: 'Authorization: Bearer sk-SECRET123openai' refused")
    row = record_to_row(rec)
    assert "SECRET123" not in row["error_message"] and REDACTED in row["error_message"]


def test_log_lines_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("axtui.test.redaction")
    log.addFilter(ScrubFilter())
    try:
        with caplog.at_level(logging.WARNING):
            log.warning("retrying after %s", "HTTP 401 for sk-SECRET123openai")
    finally:
        log.filters.clear()
    assert "SECRET123" not in caplog.text and REDACTED in caplog.text
