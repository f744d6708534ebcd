"""Tokens per call, learned per deployment: what a call will really cost there.

A list price says what a token costs, not how many tokens a call takes:
a reasoning model thinks for hundreds of hidden output tokens, one
provider answers at twice the length of another, one reads most long
prompts from its prompt cache. `UsageBook` keeps, per deployment and per
prompt size (powers of two of prompt tokens), the smoothed tokens its
successful calls reported — output (reasoning included), the reasoning
part, and the shares of the prompt read from and written to the cache —
and `expected_usage` turns that into the `Usage` a call of a given size
should expect there. `ExpectedCost` prices it; with no history it is the
list price of the prompt and a typical answer, and says so.

Pure logic, no clock and no I/O: the health book feeds it, history replay
and what-if replay feed it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from axtui.ports import PriceBook
from axtui.types import Deployment, Usage

__all__ = ["MIN_HISTORY", "ExpectedCost", "TokenProfile", "UsageBook", "expected_cost", "size_bucket", "two_digits"]

#: Calls a profile needs before its figures replace the list-price guess.
MIN_HISTORY = 3
# Running mean for the first calls, then an exponential average over about
# the last 1/_ALPHA calls, so a model that starts answering longer is followed.
_ALPHA = 0.05
_MAX_DEPLOYMENTS = 10_000


def two_digits(n: int) -> int:
    """``n`` rounded to two significant digits (12,345 -> 12,000).

    Expected tokens are rounded so: it ranks deployments just as well, and
    the price book's memo of exact costs is hit instead of recomputed.
    """
    if n < 100:
        return n
    scale = int(10 ** (len(str(n)) - 2))
    return (n + scale // 2) // scale * scale


def size_bucket(prompt_tokens: int) -> int:
    """The prompt-size class of a call: 0 below 256 tokens, then one per doubling."""
    return max(0, int(prompt_tokens).bit_length() - 8)


class TokenProfile:
    """Smoothed tokens per call of one deployment (one size class, or all)."""

    __slots__ = ("cached_share", "n", "output", "reasoning", "write_share")

    def __init__(self) -> None:
        self.n = 0
        self.output = 0.0
        self.reasoning = 0.0
        self.cached_share = 0.0
        self.write_share = 0.0

    def add(self, usage: Usage) -> None:
        """One successful call's reported usage."""
        self.n += 1
        w = max(_ALPHA, 1.0 / self.n)
        prompt = max(1, usage.input_tokens)
        self.output += w * (usage.output_tokens - self.output)
        self.reasoning += w * (min(usage.reasoning_tokens, usage.output_tokens) - self.reasoning)
        self.cached_share += w * (min(1.0, usage.cached_input_tokens / prompt) - self.cached_share)
        self.write_share += w * (min(1.0, usage.cache_write_tokens / prompt) - self.write_share)


Source = Literal["history", "list price"]


@dataclass(frozen=True, slots=True)
class ExpectedCost:
    """What one call should cost on one deployment, and where the figure comes from.

    ``nanos`` is None when the deployment has no price. ``source`` is
    ``history`` when recorded calls there gave the tokens, ``list price``
    when the prompt and a typical answer did; ``calls`` is how many
    recorded calls the history holds.
    """

    nanos: int | None
    usage: Usage
    source: Source
    calls: int = 0

    def describe(self) -> str:
        """A short phrase for explain tables, e.g. ``history of 41 calls: ~380 out (250 reasoning)``."""
        u = self.usage
        tokens = f"~{u.input_tokens:,} in + {u.output_tokens:,} out"
        if u.reasoning_tokens:
            tokens += f" ({u.reasoning_tokens:,} reasoning)"
        if u.cached_input_tokens:
            tokens += f", {u.cached_input_tokens:,} cached"
        if self.source == "history":
            return f"{tokens}, from {self.calls:,} recorded calls"
        return f"{tokens}, list price with a typical answer (no history yet)"


class UsageBook:
    """Token profiles of every deployment heard from, by prompt-size class."""

    def __init__(self) -> None:
        self._by_size: dict[tuple[str, int], TokenProfile] = {}
        self._overall: dict[str, TokenProfile] = {}

    def add(self, deployment_id: str, usage: Usage) -> None:
        """A successful call on ``deployment_id`` reported ``usage``."""
        if usage.estimated or (usage.input_tokens <= 0 and usage.output_tokens <= 0):
            return  # counted by ax, or nothing reported: nothing learned of the deployment
        overall = self._overall.get(deployment_id)
        if overall is None:
            if len(self._overall) >= _MAX_DEPLOYMENTS:
                return
            overall = self._overall[deployment_id] = TokenProfile()
        overall.add(usage)
        key = (deployment_id, size_bucket(usage.input_tokens))
        sized = self._by_size.get(key)
        if sized is None:
            sized = self._by_size[key] = TokenProfile()
        sized.add(usage)

    def profile(self, deployment_id: str, prompt_tokens: int) -> TokenProfile | None:
        """The profile for calls of this size there: its own size class when known well enough, else all sizes."""
        sized = self._by_size.get((deployment_id, size_bucket(prompt_tokens)))
        if sized is not None and sized.n >= MIN_HISTORY:
            return sized
        overall = self._overall.get(deployment_id)
        return overall if overall is not None and overall.n >= MIN_HISTORY else None

    def expected_usage(self, deployment_id: str, prompt_tokens: int, typical_output: int,
                       output_cap: int | None = None) -> tuple[Usage, TokenProfile | None]:
        """The usage a call of ``prompt_tokens`` should expect there, and the profile it came from.

        With no history: the prompt, ``typical_output`` answer tokens and no
        cache. ``output_cap`` (the caller's max_tokens) caps output tokens.
        """
        prompt = max(0, prompt_tokens)
        p = self.profile(deployment_id, prompt)
        if p is None:
            out = typical_output if output_cap is None else min(output_cap, typical_output)
            return Usage(input_tokens=prompt, output_tokens=max(0, out)), None
        out = two_digits(round(p.output))
        reasoning = two_digits(round(p.reasoning))
        if output_cap is not None and out > output_cap:
            # The limit cuts the answer; thinking comes first, so it is cut last.
            reasoning = min(reasoning, output_cap)
            out = output_cap
        return Usage(
            input_tokens=prompt,
            output_tokens=max(0, out),
            reasoning_tokens=max(0, min(reasoning, out)),
            cached_input_tokens=min(prompt, two_digits(round(prompt * p.cached_share))),
            cache_write_tokens=min(prompt, two_digits(round(prompt * p.write_share))),
        ), p

    def calls(self, deployment_id: str) -> int:
        """How many successful calls with usage were learned from there."""
        p = self._overall.get(deployment_id)
        return 0 if p is None else p.n


def expected_cost(book: UsageBook, prices: PriceBook | None, dep: Deployment, prompt_tokens: int,
                  typical_output: int, output_cap: int | None = None) -> ExpectedCost:
    """The expected cost of a call of ``prompt_tokens`` on ``dep`` (see `UsageBook.expected_usage`)."""
    usage, profile = book.expected_usage(dep.id, prompt_tokens, typical_output, output_cap)
    nanos = prices.cost(dep, usage) if prices is not None else None
    if profile is None:
        return ExpectedCost(nanos, usage, "list price")
    return ExpectedCost(nanos, usage, "history", profile.n)
