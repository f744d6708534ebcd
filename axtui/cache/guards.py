"""Guards: what makes two similar questions different, whatever the similarity.

Embeddings put "What is the capital of France?" and "...of Germany?" close
together, and "Is it safe?" next to "Is it not safe?". Serving one's answer
for the other is the false hit users of other semantic caches report. Two
turns may share an answer only if

- they contain the same numbers (``3`` and ``three`` are the same number;
  ``100`` and ``200`` are not), and the same arrangement of the numbers
  written in digits when there is more than one or one has a minus sign
  (``-5`` is not ``5``, ``3 - 5`` not ``3 + 5`` nor ``5 - 3``,
  ``2024-01-02`` not ``2024-02-01``),
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
from array import array
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from axtui.cache._names import NAMES
from axtui.cache.text import STOPWORDS, word_tuple

__all__ = ["GuardFeatures", "exact_signature", "features", "features_of", "mismatch", "turns_mismatch"]

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
_MINUS = "-\u2212"
_OPERATORS = "-+*/^<>=\u00d7\u00f7\u2212\u2264\u2265"
#: A number in digits (with its sign when no word joins it to what comes before), or the operators
#: between two such numbers.
_ARRANGED = re.compile(
    rf"(?:(?<![\w.])(?<!\d%)[{_MINUS}+])?\d+(?:[.,]\d+)*%?|(?:(?<=\d)|(?<=\d%))\s*[{_OPERATORS}]+\s*(?=[{_MINUS}+]?\d)"
)  # each class starts with "-": a hyphen there is itself, not a range; after "5%" a sign is an operator
_QUOTED = re.compile(r"(?<!\w)(?:'([^'\n]{1,60})'|\"([^\"\n]{1,60})\"|`([^`\n]{1,80})`)(?!\w)")
# A word (``[^\W_][\w'.-]*``) with the gap before it: what ends the previous word up to this one.
_GAP_WORD = re.compile(r"([\W_]*)([^\W_][\w'.-]*)")
_ASCII_GAP_WORD = re.compile(_GAP_WORD.pattern, re.ASCII)  # the same on ASCII text, faster
_SENTENCE_START = re.compile(r"[.!?:;\n\"'(\[]")
#: First words of the two-word names ("new york"): only pairs starting with one are looked up.
_PAIR_FIRSTS = frozenset(n.split(" ", 1)[0] for n in NAMES if " " in n)
_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LETTERS = _ASCII_UPPER + _ASCII_UPPER.lower()


K = TypeVar("K")

#: Words, word pairs and names recur across prompts: their hashes are remembered (bounded memos).
_HASHES: dict[str, int] = {}
_PAIR_HASHES: dict[tuple[str, str], int] = {}
_MAX_MEMO = 200_000


def _hashes(memo: dict[K, int], keys: Iterable[K], spell: Callable[[K], str]) -> list[int]:
    """The CRC-32 of each key's spelling, remembered ones looked up in one pass."""
    keys = list(keys)
    found = list(map(memo.get, keys))
    if None in found:
        if len(memo) > _MAX_MEMO:
            memo.clear()
        for i, h in enumerate(found):
            if h is None:
                key = keys[i]
                found[i] = memo[key] = zlib.crc32(spell(key).encode())
    return cast(list[int], found)


def _word(text: str) -> str:
    return text


def _pair(pair: tuple[str, str]) -> str:
    return f"{pair[0]} {pair[1]}"


def _pack(hashes: Iterable[int]) -> bytes:
    return array("I", sorted(hashes)).tobytes()


def _unpack(packed: bytes) -> array[int]:
    return array("I", packed)


@dataclass(frozen=True, slots=True)
class GuardFeatures:
    """What the guards compare for one turn: hashes, never the text itself.

    Each field is sorted 32-bit hashes packed into bytes (a cache holds
    many of these in memory; bytes cost a tenth of a set of ints).
    """

    numbers: bytes = b""
    negations: int = 0
    names: bytes = b""
    vocab: bytes = b""

    def to_json(self) -> list[object]:
        """A compact JSON form: ``[numbers, negations, names, vocab]`` (lists of hashes)."""
        return [list(_unpack(self.numbers)), self.negations, list(_unpack(self.names)), list(_unpack(self.vocab))]

    @property
    def nbytes(self) -> int:
        """Approximate memory held."""
        return 160 + len(self.numbers) + len(self.names) + len(self.vocab)

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
        try:
            return cls(_pack(int(n) for n in numbers), negations, _pack(int(n) for n in names),
                       _pack(int(v) for v in vocab))
        except OverflowError as exc:
            raise ValueError(f"guard hashes must be 32-bit: {exc}") from None


def _number(token: str) -> str:
    if _THOUSANDS.match(token):
        token = token.replace(",", "")
    body, pct = (token[:-1], "%") if token.endswith("%") else (token, "")
    if "." in body and body.replace(".", "", 1).isdigit():
        body = body.rstrip("0").rstrip(".") or "0"
    # Decimal digits only: int() refuses other digits (Ethiopic ፩), which stay as written.
    if body.isdecimal():
        body = str(int(body))
    return body + pct


def _arrangement(text: str) -> str | None:
    """The numbers in digits in order, with their signs and the operators between them, when that
    says more than the numbers alone (two or more, or a minus sign); else None."""
    items: list[str] = []
    signed = False
    for raw in _ARRANGED.findall(text):
        item = raw.strip()
        if item[-1].isdigit() or item[-1] == "%":
            sign = item[0] in _MINUS
            signed = signed or sign
            items.append(("-" if sign else "") + _number(item.lstrip("+" + _MINUS)))
        else:
            items.append(item.replace(" ", ""))
    if len(items) < 2 and not signed:
        return None
    return "=" + " ".join(items)


def _shouting(text: str) -> bool:
    """Whether most letters are capitals (then capitals mark no names)."""
    if text.isascii():
        # Counted in C: the bytes left after deleting capitals (or all letters).
        raw = text.encode()
        letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        upper = len(raw) - len(raw.translate(None, _ASCII_UPPER))
    else:
        letters = sum(c.isalpha() for c in text)
        upper = sum(c.isupper() for c in text)
    return letters > 0 and upper > 0.6 * letters


def _names_in(text: str, toks: Sequence[str], alpha: bool) -> set[str]:
    names: set[str] = set()
    if text != text.lower() and not _shouting(text):
        first = True
        for gap, raw in (_ASCII_GAP_WORD if text.isascii() else _GAP_WORD).findall(text):
            if raw != raw.lower():
                # Only the gap since the previous word decides whether a sentence starts here.
                at_sentence_start = first or _SENTENCE_START.search(gap) is not None
                capital = raw[0].isupper() and not at_sentence_start
                if capital or sum(c.isupper() for c in raw) >= 2:
                    names.update(w for w in word_tuple(raw) if w not in STOPWORDS)
            first = False
    if "'" in text or '"' in text or "`" in text:
        for m in _QUOTED.finditer(text):
            names.update(word_tuple(next(g for g in m.groups() if g is not None)))
    names.update(NAMES.intersection(toks))
    if not _PAIR_FIRSTS.isdisjoint(toks):
        for i in range(len(toks) - 1):
            if toks[i] in _PAIR_FIRSTS and (pair := f"{toks[i]} {toks[i + 1]}") in NAMES:
                names.add(pair)
    if not alpha:
        names.update(t for t in toks if not t.isalpha() and not t[0].isdigit() and any(c.isdigit() for c in t))
    return names


def features(text: str) -> GuardFeatures:
    """The guard features of one turn's text."""
    toks = word_tuple(text)
    # Most texts are words only: then no token is a number or has a digit, and few are number words.
    alpha = "".join(toks).isalpha()
    numbers: list[str] = []
    negations = 0
    if not alpha or not _NUMBER_WORDS.keys().isdisjoint(toks):
        for tok in toks:
            if tok[0].isdigit():
                numbers.append(_number(tok))
            elif tok in _NUMBER_WORDS:
                numbers.append(_NUMBER_WORDS[tok])
            elif tok in _NEGATIONS:
                negations += 1
    elif not _NEGATIONS.isdisjoint(toks):
        negations = len([t for t in toks if t in _NEGATIONS])
    if not alpha and (arranged := _arrangement(text)) is not None:
        numbers.append(arranged)
    own, pairs = set(toks), set(itertools.pairwise(toks))
    vocab = _hashes(_HASHES, own, _word)
    vocab += _hashes(_PAIR_HASHES, pairs, _pair)
    # A name is one of the text's own words or word pairs. One read from the raw text that folding
    # joined to its neighbour ("㊊Aa" folds to the word "月aa") is a word of no text, not even this one.
    names = {n for n in _names_in(text, toks, alpha) if n in own or tuple(n.split(" ", 1)) in pairs}
    return GuardFeatures(
        numbers=_pack(_hashes(_HASHES, numbers, _word)) if numbers else b"",
        negations=negations,
        names=_pack(_hashes(_HASHES, names, _word)),
        vocab=_pack(vocab),
    )


def features_of(texts: list[str], memo: MutableMapping[str, GuardFeatures]) -> tuple[GuardFeatures, ...]:
    """Each text's `features`, remembered in ``memo`` (a pure function of the text: a lookup's
    are there again for the store that follows it)."""
    out = []
    for text in texts:
        found = memo.get(text)
        if found is None:
            found = memo[text] = features(text)
        out.append(found)
    return tuple(out)


def mismatch(a: GuardFeatures, b: GuardFeatures) -> str | None:
    """Why two turns are different questions, or None when no guard objects."""
    if a.numbers != b.numbers:
        return "numbers differ"
    if a.negations != b.negations:
        return "negation differs"
    if not set(_unpack(a.names)) <= set(_unpack(b.vocab)) or not set(_unpack(b.names)) <= set(_unpack(a.vocab)):
        return "named entities differ"
    return None


def exact_signature(turns: Sequence[GuardFeatures]) -> bytes:
    """What the guards require to be equal, turn by turn: numbers and negation count.

    Two conversations with different signatures can never pass the guards,
    so the semantic index keeps them in different partitions and a lookup
    never scans (or scores) entries that the guards would reject anyway:
    a templated workload whose prompts differ only in their numbers
    searches a partition of one.
    """
    return b"".join(len(t.numbers).to_bytes(4, "little") + t.numbers + t.negations.to_bytes(8, "little")
                    for t in turns)


def turns_mismatch(a: Sequence[GuardFeatures], b: Sequence[GuardFeatures]) -> str | None:
    """`mismatch` turn by turn; conversations of different lengths always differ."""
    if len(a) != len(b):
        return "different number of turns"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        why = mismatch(x, y)
        if why is not None:
            return why if len(a) == 1 else f"turn {i + 1}: {why}"
    return None
