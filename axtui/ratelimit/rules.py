"""Which limits apply to a subject: config defaults, replaced by stored per-subject limits.

A *subject* is ``("global", "*")``, ``("user", U)``, ``("key", K)`` or
``("provider", P)``. Its limits come from ``[ratelimit]`` in the config
(``global_*``, ``user_*`` and ``key_*`` for every user and key,
``provider_*[P]``), field by field replaced by a limit stored for that
subject (`StoredLimit`, set with ``ax ratelimit set``). Each resolved
limit becomes a `Slot`: one unit (requests or tokens) of one subject, with
its algorithm and the key its state lives under.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from axtui.config import RateLimitConfig
from axtui.ratelimit.gcra import Bucket, Verdict
from axtui.ratelimit.parse import DEFAULT, UNLIMITED, Rate, format_period, parse_limit_value
from axtui.ratelimit.window import MOVING_WINDOW_MAX, MovingWindow, WindowCounter
from axtui.validation import name_problem

__all__ = [
    "ALGORITHMS",
    "SCOPES",
    "Algorithm",
    "Limit",
    "RuleBook",
    "Slot",
    "StoredLimit",
    "Subject",
    "check_stored",
    "describe_subject",
    "parse_subject",
]

Subject = tuple[str, str]
Unit = Literal["requests", "tokens"]

#: The scopes a limit can apply to.
SCOPES: tuple[str, ...] = ("global", "user", "key", "provider", "team")
#: The algorithms a limit can use.
ALGORITHMS: tuple[str, ...] = ("token-bucket", "sliding-window")

_SUBJECT_FORMS = (
    "write a subject as NAME (a user), user:NAME, key:KEY_ID, team:NAME, provider:NAME or global"
)


class Algorithm(Protocol):
    """What every limit algorithm offers: pure functions of (state, now).

    Each algorithm has its own state type (None: no state yet); callers
    keep it opaque and hand back what the algorithm returned.
    """

    @property
    def limit(self) -> int: ...

    @property
    def period_s(self) -> float: ...

    def decide(self, state: Any, now: float, cost: int) -> Verdict: ...

    def adjust(self, state: Any, now: float, delta: int) -> Any: ...

    def peek(self, state: Any, now: float) -> tuple[int, int, float]: ...

    def expires_at(self, state: Any) -> float: ...


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit of one unit: rate, algorithm and, for token buckets, burst.

    Attributes:
        kind: ``tb`` (token bucket), ``mw`` (moving window) or ``sw`` (window counter).
        variant: identifies the parameters in state keys, so a changed limit starts afresh.
    """

    unit: Unit
    rate: Rate
    algorithm: str
    burst: int | None
    engine: Algorithm
    kind: str
    variant: str

    @classmethod
    def make(cls, unit: Unit, rate: Rate, algorithm: str, burst: int | None = None) -> Limit:
        """The limit for ``unit`` at ``rate`` with ``algorithm``."""
        if algorithm == "token-bucket":
            bucket = Bucket(rate.amount, rate.period_s, burst)
            return cls(unit, rate, algorithm, burst, bucket, "tb",
                       f"tb:{rate.amount}/{rate.period_s}:{bucket.capacity}")
        if algorithm == "sliding-window":
            if unit == "requests" and rate.amount <= MOVING_WINDOW_MAX:
                return cls(unit, rate, algorithm, None, MovingWindow(rate.amount, rate.period_s), "mw",
                           f"mw:{rate.amount}/{rate.period_s}")
            return cls(unit, rate, algorithm, None, WindowCounter(rate.amount, rate.period_s), "sw",
                       f"sw:{rate.amount}/{rate.period_s}")
        raise ValueError(f"unknown algorithm {algorithm!r}; use one of: {', '.join(ALGORITHMS)}")

    def describe(self) -> str:
        """``10 requests per minute (sliding window)``, for messages."""
        unit = self.unit.removesuffix("s") if self.rate.amount == 1 else self.unit
        what = f"{self.rate.amount:,} {unit} per {format_period(self.rate.period_s)}"
        if self.kind == "tb" and self.burst is not None:
            what += f", burst {self.burst:,}"
        return what


@dataclass(frozen=True, slots=True)
class Slot:
    """One limit applied to one subject: what a decision checks and updates.

    Attributes:
        key: where its state lives (memory and store); unique per subject, unit and parameters.
        label: the scope as callers see it: ``global``, ``user:alice``, ``provider:openai``.
        source: ``config`` (a default) or ``stored`` (set for this subject).
    """

    scope: str
    subject: str
    unit: Unit
    limit: Limit
    key: str
    label: str
    source: str
    #: ``limit.engine``, at hand for the hot path.
    engine: Algorithm
    #: ``limit.rate.amount``, likewise.
    amount: int


@dataclass(frozen=True, slots=True)
class StoredLimit:
    """A per-subject limit as kept in the store (text as written; None = the default)."""

    scope: str
    subject: str
    requests: str | None = None
    tokens: str | None = None
    algorithm: str | None = None
    burst: int | None = None
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """Plain data for JSON."""
        return {
            "scope": self.scope,
            "subject": self.subject,
            "requests": self.requests,
            "tokens": self.tokens,
            "algorithm": self.algorithm,
            "burst": self.burst,
            "updated_at": self.updated_at,
        }


def describe_subject(subject: Subject) -> str:
    """``("user", "alice")`` -> ``user:alice``; the global subject is ``global``."""
    scope, name = subject
    return "global" if scope == "global" else f"{scope}:{name}"


def parse_subject(text: str, scope: str | None = None) -> Subject:
    """``alice`` / ``user:alice`` / ``provider:openai`` / ``global`` -> a subject.

    Args:
        text: the subject as written.
        scope: the scope when ``text`` names none (``user`` when None).

    Raises:
        ValueError: an unknown scope or an empty name; the message lists the valid forms.
    """
    raw = (text or "").strip()
    if (problem := name_problem(raw)) is not None:
        raise ValueError(f"subject {raw[:60]!r} {problem}; {_SUBJECT_FORMS}")
    if scope is not None and scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; use one of: {', '.join(SCOPES)}")
    if not raw:
        raise ValueError(f"empty subject; {_SUBJECT_FORMS}")
    if raw in ("global", "*") and scope in (None, "global"):
        return ("global", "*")
    if ":" in raw and scope is None:
        head, _, name = raw.partition(":")
        if head in SCOPES:
            if head == "global":
                if name not in ("", "*"):
                    # One global limit covers every call; a name here is a mistake, not a scope.
                    raise ValueError(f"subject {raw!r}: global takes no name; write global; {_SUBJECT_FORMS}")
                return ("global", "*")
            if not name:
                raise ValueError(f"subject {raw!r} names no {head}; {_SUBJECT_FORMS}")
            return (head, name)
        if head in ("team", "group", "model", "tag", "org"):
            raise ValueError(f"unknown scope {head!r} in {raw!r}; scopes are {', '.join(SCOPES)}; {_SUBJECT_FORMS}")
    scope = scope or "user"
    if scope == "global":
        return ("global", "*")
    if len(raw) > 256:
        raise ValueError(f"subject {raw[:40]!r}… is longer than 256 characters")
    return (scope, raw)


@dataclass(slots=True)
class _Resolved:
    requests: Rate | None
    tokens: Rate | None
    algorithm: str
    burst: int | None
    source: str


@dataclass
class RuleBook:
    """The limits in force: config defaults and stored per-subject limits.

    `slots` is on every call's path, so each subject's slots are computed
    once and kept (a new book is made whenever the limits change).
    """

    config: RateLimitConfig
    stored: dict[Subject, StoredLimit] = field(default_factory=dict)
    _cache: dict[Subject, tuple[Slot, ...]] = field(default_factory=dict, repr=False)
    _limits: dict[tuple[str, str, str, int | None], Limit] = field(default_factory=dict, repr=False)

    #: Subjects kept resolved before the cache starts afresh (bounds memory with many users).
    CACHE_SIZE = 100_000

    @classmethod
    def build(cls, config: RateLimitConfig, stored: Iterable[StoredLimit] = ()) -> RuleBook:
        """A book from the config and the stored limits."""
        return cls(config, {(s.scope, s.subject): s for s in stored})

    @property
    def has_provider_limits(self) -> bool:
        """Whether any provider has a limit of its own."""
        c = self.config
        return bool(c.provider_requests or c.provider_tokens) or any(s[0] == "provider" for s in self.stored)

    def slots(self, subject: Subject) -> tuple[Slot, ...]:
        """Every limit that applies to ``subject`` (empty when none does)."""
        hit = self._cache.get(subject)
        if hit is not None:
            return hit
        if len(self._cache) >= self.CACHE_SIZE:
            self._cache.clear()
        made = self._make_slots(subject)
        self._cache[subject] = made
        return made

    def subjects(self) -> list[Subject]:
        """Subjects with a limit of their own: global, stored ones, configured providers."""
        out: list[Subject] = [("global", "*")]
        out += [("provider", p) for p in sorted(set(self.config.provider_requests) | set(self.config.provider_tokens))]
        out += sorted(self.stored)
        seen: set[Subject] = set()
        return [s for s in out if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]

    def resolve(self, subject: Subject) -> tuple[Rate | None, Rate | None, str, int | None, str]:
        """``(requests, tokens, algorithm, burst, source)`` in force for ``subject``."""
        r = self._resolve(subject)
        return r.requests, r.tokens, r.algorithm, r.burst, r.source

    def _defaults(self, subject: Subject) -> tuple[str | None, str | None]:
        c = self.config
        scope, name = subject
        if scope == "global":
            return c.global_requests, c.global_tokens
        if scope == "user":
            return c.user_requests, c.user_tokens
        if scope == "key":
            return c.key_requests, c.key_tokens
        if scope == "provider":
            return c.provider_requests.get(name), c.provider_tokens.get(name)
        return None, None

    def _resolve(self, subject: Subject) -> _Resolved:
        req_text, tok_text = self._defaults(subject)
        algorithm: str = self.config.algorithm
        burst = None
        source = "config"
        stored = self.stored.get(subject)
        if stored is not None:
            source = "stored"
            if stored.requests not in (None, DEFAULT):
                req_text = stored.requests
            if stored.tokens not in (None, DEFAULT):
                tok_text = stored.tokens
            algorithm = stored.algorithm or algorithm
            burst = stored.burst
        requests = _rate(req_text)
        tokens = _rate(tok_text)
        return _Resolved(requests, tokens, algorithm, burst, source)

    def _make_slots(self, subject: Subject) -> tuple[Slot, ...]:
        r = self._resolve(subject)
        scope, name = subject
        label = describe_subject(subject)
        out = []
        for unit, rate in (("requests", r.requests), ("tokens", r.tokens)):
            if rate is None:
                continue
            # --burst belongs to the request limit; a token-only limit takes it for tokens.
            burst = r.burst if (unit == "requests" or r.requests is None) else None
            limit = self._limit(unit, rate, r.algorithm, burst)  # type: ignore[arg-type]
            key = f"{scope}\x1f{name}\x1f{unit}\x1f{limit.variant}"
            out.append(Slot(scope, name, unit, limit, key, label, r.source,  # type: ignore[arg-type]
                            limit.engine, rate.amount))
        return tuple(out)

    def _limit(self, unit: Unit, rate: Rate, algorithm: str, burst: int | None) -> Limit:
        k = (unit, rate.text, algorithm, burst)
        made = self._limits.get(k)
        if made is None:
            made = self._limits[k] = Limit.make(unit, rate, algorithm, burst)
        return made


def _rate(text: str | None) -> Rate | None:
    if text is None or text == UNLIMITED:
        return None
    value = parse_limit_value(text)
    return value if isinstance(value, Rate) else None


def check_stored(
    requests: str | None, tokens: str | None, algorithm: str | None, burst: int | None, effective_algorithm: str
) -> None:
    """Validate a per-subject limit before it is stored.

    Args:
        requests: the request limit as written (None: not given).
        tokens: the token limit as written (None: not given).
        algorithm: the algorithm as written (None: not given).
        burst: the burst as given (None: not given, or kept from before).
        effective_algorithm: the algorithm the limit will use.

    Raises:
        ValueError: a limit, the algorithm or the burst is wrong; the message says which and how to fix it.
    """
    if requests is None and tokens is None and algorithm is None and burst is None:
        raise ValueError("give a request limit, a token limit (--tokens), or both")
    for name, text in (("", requests), ("--tokens: ", tokens)):
        if text is not None:
            try:
                parse_limit_value(text)
            except ValueError as exc:
                raise ValueError(f"{name}{exc}") from None
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r}; use one of: {', '.join(ALGORITHMS)}")
    if burst is not None:
        if burst < 1:
            raise ValueError(f"--burst must be at least 1, not {burst}")
        if effective_algorithm == "sliding-window":
            raise ValueError("--burst applies to token-bucket limits; a sliding window never lets more than its "
                             "limit through, so drop --burst or use --algorithm token-bucket")
