"""What providers say about their own limits, as a provider-scope limit.

Adapters keep each provider's last ``x-ratelimit-remaining-*`` (and
Anthropic's ``anthropic-ratelimit-*``) figures in
`axtui.providers.base.UpstreamLimits`. `UpstreamGuard` turns them into
refusals before the provider is called: when the provider said it has no
requests left, or fewer tokens left than this call needs, the provider is
skipped (the router moves on to the next deployment, or the caller gets
`RateLimited` with the wait) until the provider's own reset time.

Between two answers ax counts what it has sent since the provider last
spoke, so a burst of concurrent calls does not all rush through on one
stale ``remaining: 5``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from axtui.errors import RateLimited

__all__ = ["UpstreamGuard"]

#: How long a "none left" without a reset time is believed, in seconds.
_UNKNOWN_RESET_S = 1.0


@dataclass(slots=True)
class _Seen:
    updated_at: float = -1.0
    requests: int = 0
    tokens: int = 0


class UpstreamGuard:
    """Refuse a provider that said it is out of quota, until its reset.

    Args:
        providers: provider instances by name, each with an ``upstream_limits``.
    """

    def __init__(self, providers: Mapping[str, Any]) -> None:
        self.providers = providers
        self._seen: dict[str, _Seen] = {}

    @property
    def active(self) -> bool:
        """Whether any provider has said anything about its limits yet."""
        return any(self._limits(p) is not None for p in self.providers)

    def check(self, provider: str, tokens: int, now: float) -> RateLimited | None:
        """The refusal for one more call of ``tokens`` to ``provider`` at ``now``, or None."""
        ul = self._limits(provider)
        if ul is None:
            return None
        seen = self._fresh(provider, ul.updated_at)
        if ul.remaining_requests is not None:
            left = ul.remaining_requests - seen.requests
            until = ul.updated_at + (ul.reset_requests_s if ul.reset_requests_s is not None else _UNKNOWN_RESET_S)
            if left <= 0 and until > now:
                return self._refusal(provider, "requests", ul.limit_requests, 0, until - now, tokens)
        if ul.remaining_tokens is not None:
            left = ul.remaining_tokens - seen.tokens
            until = ul.updated_at + (ul.reset_tokens_s if ul.reset_tokens_s is not None else _UNKNOWN_RESET_S)
            if left < tokens and until > now:
                return self._refusal(provider, "tokens", ul.limit_tokens, max(0, left), until - now, tokens)
        return None

    def charge(self, provider: str, tokens: int) -> None:
        """Count one call of ``tokens`` sent to ``provider`` since it last spoke."""
        ul = self._limits(provider)
        if ul is None:
            return
        seen = self._fresh(provider, ul.updated_at)
        seen.requests += 1
        seen.tokens += tokens

    def correct(self, provider: str, delta: int) -> None:
        """Replace a token estimate with the real count (``delta`` = real - estimate)."""
        seen = self._seen.get(provider)
        if seen is not None:
            seen.tokens = max(0, seen.tokens + delta)

    def _limits(self, provider: str) -> Any:
        p = self.providers.get(provider)
        ul = getattr(p, "upstream_limits", None)
        if ul is None or not ul.updated_at:
            return None
        return ul

    def _fresh(self, provider: str, updated_at: float) -> _Seen:
        seen = self._seen.get(provider)
        if seen is None or seen.updated_at != updated_at:
            # The provider spoke again: its figures already count what we sent.
            seen = self._seen[provider] = _Seen(updated_at)
        return seen

    @staticmethod
    def _refusal(provider: str, unit: str, limit: int | None, remaining: int, wait: float, tokens: int) -> RateLimited:
        if unit == "requests":
            what = "it has no requests left"
        else:
            what = f"it has {remaining:,} tokens left and this call needs about {tokens:,}"
        return RateLimited(
            f"provider {provider} said {what} (x-ratelimit-remaining-{unit}); its quota resets "
            f"in {wait:.1f}s — retry in {wait:.1f}s",
            retry_after=wait,
            limit=limit,
            remaining=remaining,
            reset_after=wait,
            unit=unit,
            scope=f"provider:{provider}",
        )
