"""Guards: what makes two similar questions different, whatever the similarity.

Embeddings put "What is the capital of France?" and "...of Germany?" close
together, and "Is it safe?" next to "Is it not safe?". Serving one's answer
for the other is the false hit users of other semantic caches report. Two
turns may share an answer only if

- they contain the same numbers (``3`` and ``three`` are the same number;
  ``100`` and ``200`` are not),
- they are negated the same number of times (not, never, no, without, …),
- every name in one (a capitalised word in mid-sentence, an acronym, a
  quoted term, a word with digits, or a well-known name typed in lower
  case such as "france" or "python") is a word of the other.

Features are kept as 32-bit hashes, so a cache entry keeps no prompt text.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from axtui.cache._names import NAMES
from axtui.cache.text import STOPWORDS, words

__all__ = ["GuardFeatures", "features", "mismatch", "turns_mismatch"]

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "half": "0.5", "twice": "x2", "double": "x2", "triple": "x3", "once": "x1",
    "first": "#1", "second": "#2", "third": "#3", "fourth": "#4", "fifth": "#5", "sixth": "#6", "seventh": "#7",
    "eighth": "#8", "ninth": "#9", "tenth": "#10", "last": "#-1",
}  # fmt: skip

_NEGATIONS = frozenset(
    "non not no never none nobody nothing neither nor nowhere without cannot lack lacks lacking".split()  # noqa: SIM905
)

_THOUSANDS = re.compile(r"^\d{1,3}(,\d{3})+(\.\d+)?%?$")
_QUOTED = re.compile(r"(?<!\w)(?:'([^'\n]{1,60})'|\"([^\"\n]{1,60})\"|`([^`\n]{1,80})`)(?!\w)")
_WORD = re.compile(r"[^\W_][\w'.-]*")
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")


def _h(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass(frozen=True, slots=True)
class GuardFeatures:
    """What the guards compare for one turn (hashes, never the text itself)."""

    numbers: tuple[int, ...] = ()
    negations: int = 0
    names: frozenset[int] = frozenset()
    vocab: frozenset[int] = frozenset()

    def to_json(self) -> list[object]:
        """A compact JSON form: ``[numbers, negations, names, vocab]``."""
        return [list(self.numbers), self.negations, sorted(self.names), sorted(self.vocab)]

    @classmethod
    def from_json(cls, data: object) -> GuardFeatures:
        """The inverse of `to_json`.

        Raises:
            ValueError: ``data`` is not what `to_json` makes.
        """
        if not isinstance(data, list) or len(data) != 4:
            raise ValueError("guard features must be a list of four items")
        numbers, negations, names, vocab = data
        if not isinstance(negations, int):
            raise ValueError("guard negation count must be an integer")
        return cls(tuple(int(n) for n in numbers), negations, frozenset(int(n) for n in names),
                   frozenset(int(v) for v in vocab))


def _number(token: str) -> str:
    if _THOUSANDS.match(token):
        token = token.replace(",", "")
    body, pct = (token[:-1], "%") if token.endswith("%") else (token, "")
    if "." in body and body.replace(".", "", 1).isdigit():
        body = body.rstrip("0").rstrip(".") or "0"
    if body.isdigit():
        body = str(int(body))
    return body + pct


def _names_in(text: str, toks: Sequence[str]) -> set[str]:
    names: set[str] = set()
    letters = [c for c in text if c.isalpha()]
    shouting = bool(letters) and sum(c.isupper() for c in letters) > 0.6 * len(letters)
    if not shouting:
        for m in _WORD.finditer(text):
            raw = m.group(0)
            start = m.start()
            before = text[:start]
            at_sentence_start = not before.strip() or bool(_SENTENCE_END.search(before)) or before.rstrip()[-1:] in "\"'(["
            capital = raw[0].isupper() and not at_sentence_start
            acronym = sum(c.isupper() for c in raw) >= 2
            if capital or acronym:
                names.update(w for w in words(raw) if w not in STOPWORDS)
    for m in _QUOTED.finditer(text):
        names.update(words(next(g for g in m.groups() if g is not None)))
    for i, tok in enumerate(toks):
        if tok in NAMES:
            names.add(tok)
        if i + 1 < len(toks) and f"{tok} {toks[i + 1]}" in NAMES:
            names.add(f"{tok} {toks[i + 1]}")
        if not tok[0].isdigit() and any(c.isdigit() for c in tok):
            names.add(tok)
    return names


def features(text: str) -> GuardFeatures:
    """The guard features of one turn's text."""
    toks = words(text)
    numbers: list[str] = []
    negations = 0
    for tok in toks:
        if tok[0].isdigit():
            numbers.append(_number(tok))
        elif tok in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[tok])
        elif tok in _NEGATIONS:
            negations += 1
    vocab = set(toks)
    vocab.update(f"{a} {b}" for a, b in itertools.pairwise(toks))
    return GuardFeatures(
        numbers=tuple(sorted(_h(n) for n in numbers)),
        negations=negations,
        names=frozenset(_h(n) for n in _names_in(text, toks)),
        vocab=frozenset(_h(v) for v in vocab),
    )


def mismatch(a: GuardFeatures, b: GuardFeatures) -> str | None:
    """Why two turns are different questions, or None when no guard objects."""
    if a.numbers != b.numbers:
        return "numbers differ"
    if a.negations != b.negations:
        return "negation differs"
    if not a.names <= b.vocab or not b.names <= a.vocab:
        return "named entities differ"
    return None


def turns_mismatch(a: Sequence[GuardFeatures], b: Sequence[GuardFeatures]) -> str | None:
    """`mismatch` turn by turn; conversations of different lengths always differ."""
    if len(a) != len(b):
        return "different number of turns"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        why = mismatch(x, y)
        if why is not None:
            return why if len(a) == 1 else f"turn {i + 1}: {why}"
    return None
