"""A/B tests: split a model's callers between variants, sticky per user.

A caller lands in a variant by a hash of the test's name and the user
(the gateway key when the user is anonymous), so the same user gets the
same variant on every call, in every process and replica, for as long as
the splits stay the same; changing one split moves only the users whose
hash crosses the changed boundary.

Calls made under a test carry ``variant = "<test>:<variant>"`` in their
record, so `axtui.routing.abreport` reports on them from the call log in any
process.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from axtui.config import ABTestConfig, ABVariant
from axtui.types import Caller

__all__ = ["ABAssignment", "ABBook", "bucket", "variant_label"]

_SCALE = 100.0 / 2**64


def bucket(test: str, who: str) -> float:
    """Where ``who`` falls in test ``test``: a stable number in [0, 100)."""
    digest = hashlib.blake2b(f"{test}\x1f{who}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * _SCALE


def variant_label(test: str, variant: str) -> str:
    """The ``variant`` column of a call made under ``test``'s ``variant``."""
    return f"{test}:{variant}"


@dataclass(frozen=True, slots=True)
class ABAssignment:
    """The variant one caller gets in one test."""

    test: str
    variant: str
    model: str
    bucket: float
    percent: float

    @property
    def label(self) -> str:
        """``<test>:<variant>``, as recorded with the call."""
        return variant_label(self.test, self.variant)


class _CompiledTest:
    __slots__ = ("bounds", "config", "pattern")

    def __init__(self, config: ABTestConfig) -> None:
        self.config = config
        self.pattern = re.compile(fnmatch.translate(config.model)) if any(c in config.model for c in "*?[") else None
        edge = 0.0
        self.bounds: list[tuple[float, ABVariant]] = []
        for v in config.variants:
            edge += v.percent
            self.bounds.append((edge, v))

    def matches(self, model: str) -> bool:
        return self.pattern.match(model) is not None if self.pattern is not None else model == self.config.model

    def assign(self, who: str) -> ABAssignment:
        b = bucket(self.config.name, who)
        # Rounding can leave the last edge a hair under 100: the last live variant takes the rest.
        chosen = next(v for _, v in reversed(self.bounds) if v.percent > 0)
        for edge, v in self.bounds:
            if b < edge and v.percent > 0:
                chosen = v
                break
        return ABAssignment(self.config.name, chosen.name, chosen.model, b, chosen.percent)


class ABBook:
    """The enabled A/B tests; `assign` finds the caller's variant for a model."""

    def __init__(self, tests: Sequence[ABTestConfig]) -> None:
        self.tests = [_CompiledTest(t) for t in tests if t.enabled]

    def __len__(self) -> int:
        return len(self.tests)

    def assign(self, model: str, caller: Caller) -> ABAssignment | None:
        """The variant of the first enabled test on ``model`` this caller falls in, or None."""
        for t in self.tests:
            if t.matches(model):
                who = caller.user if caller.user != "anonymous" or not caller.key else f"key:{caller.key}"
                return t.assign(who)
        return None
