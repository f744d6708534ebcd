"""Routing rules: the first ``[[routing.rules]]`` entry that matches a call decides.

Rules are validated when the config loads (`axtui.config.RoutingRule`);
here they are compiled once (globs to regular expressions, hours to a set)
so matching a call costs a few microseconds, and `RuleBook.check` explains
why each rule did or did not match for ``ax route explain``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from axtui.config import RoutingRule
from axtui.types import Caller

__all__ = ["CompiledRule", "RuleBook", "RuleCheck"]


def _glob(pattern: str) -> re.Pattern[str] | None:
    """A compiled glob, or None for ``*`` (matches everything, costs nothing)."""
    return None if pattern == "*" else re.compile(fnmatch.translate(pattern))


def _hours(spec: str | None) -> frozenset[int] | None:
    if spec is None:
        return None
    start, end = (int(h) for h in spec.split("-"))
    if start < end:
        return frozenset(range(start, end))
    return frozenset(range(start, 24)) | frozenset(range(0, end))


@dataclass(frozen=True, slots=True)
class RuleCheck:
    """Whether one rule matched a call, and if not, the first condition that failed."""

    rule: str
    matched: bool
    why: str


class CompiledRule:
    """One rule, ready to match calls."""

    __slots__ = ("_hours", "_key", "_model", "_tags", "_tz", "_user", "config")

    def __init__(self, config: RoutingRule) -> None:
        self.config = config
        self._model = _glob(config.model)
        self._user = _glob(config.user)
        self._key = _glob(config.key) if config.key != "*" else None
        self._tags = frozenset(config.tags)
        self._hours = _hours(config.hours)
        self._tz = ZoneInfo(config.timezone)

    @property
    def name(self) -> str:
        """The rule's name."""
        return self.config.name

    def mismatch(self, model: str, caller: Caller, prompt_tokens: int, now: float) -> str | None:
        """The first condition the call fails, or None when the rule matches."""
        c = self.config
        if self._model is not None and not self._model.match(model):
            return f"model {model!r} does not match {c.model!r}"
        if self._user is not None and not self._user.match(caller.user):
            return f"user {caller.user!r} does not match {c.user!r}"
        if self._key is not None and (caller.key is None or not self._key.match(caller.key)):
            return f"key {caller.key or '(none)'!r} does not match {c.key!r}"
        if self._tags and not self._tags.issubset(caller.tags):
            missing = sorted(self._tags.difference(caller.tags))
            return f"tag {missing[0]!r} missing"
        if c.min_prompt_tokens is not None and prompt_tokens < c.min_prompt_tokens:
            return f"~{prompt_tokens:,} prompt tokens < min_prompt_tokens {c.min_prompt_tokens:,}"
        if c.max_prompt_tokens is not None and prompt_tokens > c.max_prompt_tokens:
            return f"~{prompt_tokens:,} prompt tokens > max_prompt_tokens {c.max_prompt_tokens:,}"
        if self._hours is not None:
            hour = datetime.fromtimestamp(now, self._tz).hour
            if hour not in self._hours:
                return f"hour {hour:02d} ({c.timezone}) outside {c.hours}"
        return None


class RuleBook:
    """The rules in order; `match` returns the first that matches."""

    def __init__(self, rules: Sequence[RoutingRule]) -> None:
        self.rules = [CompiledRule(r) for r in rules]

    def __len__(self) -> int:
        return len(self.rules)

    def match(self, model: str, caller: Caller, prompt_tokens: int, now: float) -> CompiledRule | None:
        """The first rule that matches the call, or None."""
        for rule in self.rules:
            if rule.mismatch(model, caller, prompt_tokens, now) is None:
                return rule
        return None

    def check(self, model: str, caller: Caller, prompt_tokens: int, now: float) -> list[RuleCheck]:
        """Every rule up to the first match, each with why it matched or not."""
        out: list[RuleCheck] = []
        for rule in self.rules:
            why = rule.mismatch(model, caller, prompt_tokens, now)
            if why is None:
                out.append(RuleCheck(rule.name, True, "first rule that matches: it decides"))
                break
            out.append(RuleCheck(rule.name, False, why))
        return out
