"""Every error ax raises, in one tree.

```
AxError                         base of everything ax raises on purpose
├── ConfigError                 a config file or setting is wrong
├── StoreError                  the database cannot be used
│   ├── StoreLocked             the database stayed locked past the busy timeout
│   ├── SchemaTooNew            the database was migrated by a newer ax
│   └── RecorderFull            the recorder's queue stayed full; the call was not served
├── RequestError                the caller's request is wrong (HTTP 4xx)
│   ├── InvalidRequest          malformed or missing fields
│   ├── UnknownModel            no deployment serves the requested model
│   ├── AuthenticationError     missing or wrong gateway key
│   │   └── KeyExpired          the gateway key's expiry (or its rotation grace) has passed
│   └── ModelNotAllowed         the key (or its team) may not call that model (HTTP 403)
├── Refused                     ax refused the call on purpose
│   ├── RateLimited             a rate limit is exhausted (retry_after seconds)
│   └── BudgetExceeded          a hard budget would be exceeded
└── ProviderError               an upstream provider failed
    ├── ProviderTimeout         no answer in time
    ├── ProviderConnectionError the connection failed or dropped
    ├── ProviderRateLimited     upstream 429 (retry_after seconds)
    ├── ProviderAuthError       upstream 401/403: the provider key is wrong
    │   └── ProviderKeyMissing  the key's environment variable is unset (a config problem)
    ├── ProviderBadRequest      upstream 400/404/422: the request is wrong for it
    │   └── ContextTooLong      the prompt does not fit the model's context
    ├── ProviderServerError     upstream 5xx
    ├── MalformedResponse       the answer could not be parsed
    ├── StreamInterrupted       a stream ended before its end marker
    └── RouteUnavailable        no deployment may serve now (circuits open, region required)
```

Errors from libraries underneath are converted at the edge
(`raise ProviderTimeout(...) from exc`), choosing the most specific type.
Every message says what was wrong, where, and what to do.
"""

from __future__ import annotations

from typing import Any

from axtui.redaction import scrub

__all__ = [
    "AuthenticationError",
    "AxError",
    "BudgetExceeded",
    "ConfigError",
    "ContextTooLong",
    "InvalidRequest",
    "KeyExpired",
    "MalformedResponse",
    "ModelNotAllowed",
    "ProviderAuthError",
    "ProviderBadRequest",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderKeyMissing",
    "ProviderRateLimited",
    "ProviderServerError",
    "ProviderTimeout",
    "RateLimited",
    "RecorderFull",
    "Refused",
    "RequestError",
    "RouteUnavailable",
    "SchemaTooNew",
    "StoreError",
    "StoreLocked",
    "StreamInterrupted",
    "UnknownModel",
]


class AxError(Exception):
    """Base of every error ax raises on purpose."""

    #: HTTP status the gateway answers with.
    status_code: int = 500
    #: OpenAI error ``type`` used on the wire.
    error_type: str = "api_error"
    #: Whether trying again (or the next deployment) may succeed.
    retryable: bool = False
    #: The `CallRecord` of the call that failed, when the engine raised it.
    record: Any = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def kind(self) -> str:
        """The class name, stored as the error class of a call record."""
        return type(self).__name__


class ConfigError(AxError):
    """A config file or setting is wrong."""

    status_code = 500
    error_type = "config_error"


class StoreError(AxError):
    """The database cannot be used."""

    status_code = 503
    error_type = "store_error"


class StoreLocked(StoreError):
    """The database stayed locked past the busy timeout."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer ax than this one."""


class RecorderFull(StoreError):
    """The recorder's queue stayed full; the call was refused before it was served."""

    error_type = "recorder_full"


class RequestError(AxError):
    """The caller's request is wrong."""

    status_code = 400
    error_type = "invalid_request_error"


class InvalidRequest(RequestError):
    """Malformed or missing fields in a request."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownModel(RequestError):
    """No deployment serves the requested model."""

    status_code = 404

    def __init__(self, model: str, served: list[str]) -> None:
        listing = ", ".join(sorted(served)) or "(none)"
        super().__init__(f"unknown model {model!r}; models served here: {listing}")
        self.model = model
        self.served = sorted(served)


class AuthenticationError(RequestError):
    """A gateway key is missing, revoked or wrong."""

    status_code = 401
    error_type = "authentication_error"


class KeyExpired(AuthenticationError):
    """The gateway key's expiry, or the grace of its rotated secret, has passed."""


class ModelNotAllowed(RequestError):
    """The key, or its team, may not call the requested model; ``allowed`` lists what it may."""

    status_code = 403
    error_type = "permission_error"

    def __init__(self, message: str, *, model: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.model = model
        self.allowed = allowed


class Refused(AxError):
    """ax refused the call on purpose."""

    status_code = 429


class RateLimited(Refused):
    """A rate limit is exhausted; try again after ``retry_after`` seconds."""

    error_type = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        limit: int | None = None,
        remaining: int | None = None,
        reset_after: float | None = None,
        unit: str = "requests",
        scope: str = "",
    ) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)
        self.limit = limit
        self.remaining = remaining
        self.reset_after = reset_after if reset_after is not None else self.retry_after
        self.unit = unit
        self.scope = scope


class BudgetExceeded(Refused):
    """A hard budget would be exceeded by this call."""

    status_code = 402
    error_type = "budget_exceeded"

    def __init__(self, message: str, *, budget_id: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.budget_id = budget_id
        self.retry_after = retry_after


class ProviderError(AxError):
    """An upstream provider failed."""

    status_code = 502
    error_type = "upstream_error"
    retryable = True

    def __init__(self, message: str, *, provider: str = "", http_status: int | None = None) -> None:
        # Upstream text can echo the key ax sent; it must never reach a
        # record, a log or a terminal (see axtui.redaction).
        super().__init__(scrub(message))
        self.provider = provider
        self.http_status = http_status


class ProviderTimeout(ProviderError):
    """The provider gave no answer in time."""

    status_code = 504


class ProviderConnectionError(ProviderError):
    """The connection to the provider failed or dropped."""


class ProviderRateLimited(ProviderError):
    """The provider answered 429; ``retry_after`` seconds if it said."""

    status_code = 429
    error_type = "rate_limit_exceeded"

    def __init__(
        self, message: str, *, provider: str = "", http_status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, provider=provider, http_status=http_status)
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    """The provider refused the key ax sent (401/403)."""

    retryable = False


class ProviderKeyMissing(ProviderAuthError):
    """The provider's key variable is unset: nothing was sent; the setup, not the provider, is at fault."""


class ProviderBadRequest(ProviderError):
    """The provider refused the request itself (400/404/422)."""

    status_code = 400
    error_type = "invalid_request_error"
    retryable = False


class ContextTooLong(ProviderBadRequest):
    """The prompt does not fit the model's context window."""


class ProviderServerError(ProviderError):
    """The provider answered with a 5xx."""


class MalformedResponse(ProviderError):
    """The provider's answer could not be parsed."""


class StreamInterrupted(ProviderError):
    """A stream ended before its end marker."""


class RouteUnavailable(ProviderError):
    """No deployment may serve the call now: circuits open, or none in the required region."""

    status_code = 503

    def __init__(self, message: str, *, retry_after: float | None = None,
                 reasons: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: Why each deployment considered was skipped.
        self.reasons = reasons or {}
