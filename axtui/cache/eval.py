"""Measuring the semantic matcher on labelled pairs (``ax cache eval``).

A pairs file is JSON Lines, one pair a line::

    {"a": "What is the capital of France?", "b": "what's the capital of france", "same": true}
    {"a": "What is the capital of France?", "b": "What is the capital of Germany?", "same": false}

``a`` and ``b`` are a question each, or a whole conversation as a list of
``{"role": ..., "content": ...}`` messages. A pair is predicted "same" the
way the cache decides a semantic hit: every turn at least ``threshold``
similar, and no guard objecting. A false hit is a pair predicted same that
is not: an answer served for another question.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from axtui.cache.guards import features, turns_mismatch
from axtui.cache.semantic import Embedder
from axtui.errors import InvalidRequest

__all__ = ["DEFAULT_SWEEP", "EvalReport", "Pair", "PairResult", "SweepRow", "evaluate", "read_pairs"]

#: Thresholds the sweep tries, unless told others.
DEFAULT_SWEEP = (0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.96, 0.98)


@dataclass(slots=True)
class Pair:
    """One labelled pair: two conversations (lists of (role, text)) and whether they ask the same."""

    a: list[tuple[str, str]]
    b: list[tuple[str, str]]
    same: bool
    line: int = 0

    @staticmethod
    def label(turns: list[tuple[str, str]]) -> str:
        """The pair's text for people: the last turn."""
        return turns[-1][1] if turns else ""


@dataclass(slots=True)
class PairResult:
    """How the matcher saw one pair."""

    pair: Pair
    #: The least similar turn's cosine (0 when the conversations differ in shape).
    similarity: float
    #: Why the guards reject the pair, or None.
    guard: str | None

    def predicted(self, threshold: float) -> bool:
        """Whether the cache would serve one for the other at ``threshold``."""
        return self.similarity >= threshold and self.guard is None


@dataclass(slots=True)
class SweepRow:
    """Quality at one threshold."""

    threshold: float
    precision: float
    recall: float
    hits: int
    false_hits: int
    false_hits_without_guards: int


@dataclass(slots=True)
class EvalReport:
    """The evaluation of one embedder on one pairs file."""

    embedder: str
    threshold: float
    results: list[PairResult]
    sweep: list[SweepRow] = field(default_factory=list)

    def at(self, threshold: float) -> SweepRow:
        """Precision, recall and false hits at ``threshold``."""
        tp = fp = fn = fp_raw = 0
        for r in self.results:
            pred = r.predicted(threshold)
            if r.pair.same:
                tp += pred
                fn += not pred
            else:
                fp += pred
                fp_raw += r.similarity >= threshold
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        return SweepRow(threshold, precision, recall, tp + fp, fp, fp_raw)

    @property
    def summary(self) -> SweepRow:
        """Quality at the chosen threshold."""
        return self.at(self.threshold)

    def false_hits(self, threshold: float | None = None) -> list[PairResult]:
        """Pairs that ask different things yet would be served for each other."""
        t = self.threshold if threshold is None else threshold
        return [r for r in self.results if not r.pair.same and r.predicted(t)]

    def missed(self) -> list[PairResult]:
        """Pairs that ask the same thing but would not hit, at the chosen threshold."""
        return [r for r in self.results if r.pair.same and not r.predicted(self.threshold)]

    def suggested_threshold(self) -> float | None:
        """The swept threshold with the best recall and no false hit (None if every one has some)."""
        clean = [row for row in self.sweep if row.false_hits == 0]
        if not clean:
            return None
        return max(clean, key=lambda row: (row.recall, -row.threshold)).threshold

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        s = self.summary
        return {
            "embedder": self.embedder,
            "threshold": self.threshold,
            "pairs": len(self.results),
            "same_pairs": sum(r.pair.same for r in self.results),
            "precision": round(s.precision, 4),
            "recall": round(s.recall, 4),
            "hits": s.hits,
            "false_hits": s.false_hits,
            "false_hits_without_guards": s.false_hits_without_guards,
            "suggested_threshold": self.suggested_threshold(),
            "false_hit_pairs": [_pair_json(r) for r in self.false_hits()],
            "missed_pairs": [_pair_json(r) for r in self.missed()],
            "sweep": [
                {
                    "threshold": row.threshold,
                    "precision": round(row.precision, 4),
                    "recall": round(row.recall, 4),
                    "hits": row.hits,
                    "false_hits": row.false_hits,
                    "false_hits_without_guards": row.false_hits_without_guards,
                }
                for row in self.sweep
            ],
        }


def _pair_json(r: PairResult) -> dict[str, Any]:
    return {
        "line": r.pair.line,
        "a": Pair.label(r.pair.a),
        "b": Pair.label(r.pair.b),
        "similarity": round(r.similarity, 4),
        "guard": r.guard,
    }


def _turns(value: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [("user", value)]
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        turns = []
        for m in value:
            role, content = m.get("role"), m.get("content")
            if not isinstance(role, str) or not isinstance(content, str):
                raise InvalidRequest(f"{where}: each message needs a string \"role\" and \"content\"")
            turns.append((role, content))
        return turns
    raise InvalidRequest(f"{where}: must be a string or a non-empty list of {{\"role\", \"content\"}} messages")


def read_pairs(path: Path) -> list[Pair]:
    """Read a pairs file (see the module docstring).

    Raises:
        InvalidRequest: the file cannot be read or a line is malformed; the
            message names the file, the line and the fix.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {path}: {exc}") from None
    pairs: list[Pair] = []
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}, line {n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{where}: not JSON ({exc.msg}); each line is "
                                 '{"a": "...", "b": "...", "same": true|false}') from None
        if not isinstance(data, dict) or not {"a", "b", "same"} <= data.keys():
            raise InvalidRequest(f'{where}: needs the fields "a", "b" and "same"')
        if not isinstance(data["same"], bool):
            raise InvalidRequest(f'{where}: "same" must be true or false, not {data["same"]!r}')
        pairs.append(Pair(_turns(data["a"], f'{where}, "a"'), _turns(data["b"], f'{where}, "b"'), data["same"], n))
    if not pairs:
        raise InvalidRequest(f"{path} holds no pairs; write one JSON object a line, like "
                             '{"a": "...", "b": "...", "same": true}')
    return pairs


async def evaluate(
    pairs: Sequence[Pair],
    embedder: Embedder,
    *,
    threshold: float,
    sweep: Sequence[float] = DEFAULT_SWEEP,
) -> EvalReport:
    """Score every pair as the cache would, and sweep thresholds.

    Args:
        pairs: labelled pairs (`read_pairs`).
        embedder: the embedder to measure (one call embeds every distinct text).
        threshold: the threshold the summary reports.
        sweep: the thresholds to try.
    """
    texts = list(dict.fromkeys(t for p in pairs for conv in (p.a, p.b) for _, t in conv))
    vectors = await embedder.embed(texts)
    row = {t: i for i, t in enumerate(texts)}
    results: list[PairResult] = []
    for p in pairs:
        if [r for r, _ in p.a] != [r for r, _ in p.b]:
            results.append(PairResult(p, 0.0, "different conversation shapes"))
            continue
        va = vectors[[row[t] for _, t in p.a]]
        vb = vectors[[row[t] for _, t in p.b]]
        sims = np.einsum("td,td->t", va, vb)
        guard = turns_mismatch([features(t) for _, t in p.a], [features(t) for _, t in p.b])
        results.append(PairResult(p, float(min(sims.min(), 1.0)), guard))
    report = EvalReport(embedder.name, threshold, results)
    report.sweep = [report.at(t) for t in sorted({*sweep, threshold})]
    return report
