"""``[ratelimit]`` in the config file: validated limits, and which backend is in force."""

from __future__ import annotations

import pytest

from axtui.config import RateLimitConfig, parse_settings
from axtui.errors import ConfigError
from axtui.ratelimit.factory import effective_backend


def test_limits_in_the_config_are_checked_with_the_line_and_the_valid_forms() -> None:
    text = '[ratelimit]\nuser_requests = "60/minut"\n'
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "config.toml")
    msg = err.value.message
    assert "line 2" in msg and "ratelimit.user_requests" in msg and "unknown period 'minut'" in msg
    assert "60/minute, 1000/hour, 100000/day" in msg


def test_provider_limits_name_the_provider_when_wrong() -> None:
    with pytest.raises(ConfigError, match="provider 'openai': invalid limit '0/minute'"):
        parse_settings('[ratelimit.provider_requests]\nopenai = "0/minute"\n')


def test_limits_are_kept_in_their_canonical_form() -> None:
    settings = parse_settings('[ratelimit]\nuser_tokens = "100000 per day"\n')
    assert settings.ratelimit.user_tokens == "100000/day"


@pytest.mark.parametrize(
    ("config", "env", "expected"),
    [
        ({}, {}, ("store", None)),
        ({}, {"AX_REDIS_URL": "redis://r:6379/0"}, ("redis", "redis://r:6379/0")),
        ({"redis_url": "redis://cfg:6379/1"}, {}, ("redis", "redis://cfg:6379/1")),
        ({"redis_url": "redis://cfg:6379/1"}, {"AX_REDIS_URL": "redis://env:6379/2"}, ("redis", "redis://env:6379/2")),
        ({"backend": "store"}, {"AX_REDIS_URL": "redis://r:6379/0"}, ("store", "redis://r:6379/0")),
        ({"backend": "memory"}, {}, ("memory", None)),
    ],
)
def test_the_backend_in_force(config: dict[str, str], env: dict[str, str], expected: tuple[str, str | None]) -> None:
    assert effective_backend(RateLimitConfig(**config), env) == expected  # type: ignore[arg-type]


def test_redis_without_a_url_or_with_a_wrong_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="needs a Redis URL: set AX_REDIS_URL"):
        effective_backend(RateLimitConfig(backend="redis"), {})
    with pytest.raises(ConfigError, match="is not a Redis URL"):
        effective_backend(RateLimitConfig(backend="redis"), {"AX_REDIS_URL": "http://user:secret@r:6379"})
    try:
        effective_backend(RateLimitConfig(backend="redis"), {"AX_REDIS_URL": "http://user:secret@r:6379"})
    except ConfigError as exc:
        assert "secret" not in exc.message
