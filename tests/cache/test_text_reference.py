"""The fast guard features, embedding and signature equal the first implementation's, bit for bit.

Stored cache entries keep guard features, and index snapshots keep
vectors: a faster implementation that changed one bit would make every
stored entry unreachable. The first implementation is frozen here (as it
was before it was made fast) and random texts are compared against it.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import unicodedata
import zlib
from array import array
from collections.abc import Iterable, Sequence

import numpy as np
from cachetools import LRUCache
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.cache._names import NAMES
from axtui.cache.guards import GuardFeatures, exact_signature, features
from axtui.cache.semantic import BuiltinEmbedder
from axtui.cache.text import FILLER_PHRASES, STOPWORDS, word_tuple

# ---------------------------------------------------------------------------------------------------------------------
# The reference: axtui.cache.text, guards and semantic as of commit 865d509 (data tables imported, code copied).

_CONTRACTIONS = (
    (re.compile(r"\b(can)'?t\b"), r"\1 not", "can"),
    (re.compile(r"\bwon'?t\b"), "will not", "won"),
    (re.compile(r"\bshan'?t\b"), "shall not", "shan"),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not", "n't"),
    # Added on purpose on 7 December 2026: "dont", "isnt" (no apostrophe) are negations too.
    (re.compile(r"\b(do|does|did|is|are|was|were|has|have|had|would|should|could|must|need)n'?t\b"), r"\1 not",
     "nt"),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are", "'re"),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have", "'ve"),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will", "'ll"),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would", "'d"),
    (re.compile(r"\bi'm\b"), "i am", "i'm"),
    (re.compile(r"\b(what|that|it|there|here|who|where|how|when|why)'?s\b"), r"\1 is", "s"),
    (re.compile(r"'s\b"), "", "'s"),
)
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*%?|[^\W\d_]+(?:[\d]+[^\W\d_]*)*|\d+")
_LEADING_FILLERS = frozenset({"so", "well", "ok", "okay", "alright"})
_FILLERS_BY_FIRST: dict[str, list[tuple[str, ...]]] = {}
for _phrase in FILLER_PHRASES:
    _FILLERS_BY_FIRST.setdefault(_phrase[0], []).append(_phrase)
_BARE = tuple(c for c in _CONTRACTIONS if "'?" in c[0].pattern)


def ref_fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    for pattern, repl, clue in _CONTRACTIONS if "'" in text else _BARE:
        if clue in text:
            text = pattern.sub(repl, text)
    return text


@functools.lru_cache(maxsize=8192)
def ref_word_tuple(text: str) -> tuple[str, ...]:
    tokens = _TOKEN.findall(ref_fold(text))
    out: list[str] = []
    i = 0
    n = len(tokens)
    while i < n:
        tok = tokens[i]
        for phrase in _FILLERS_BY_FIRST.get(tok, ()):
            k = len(phrase)
            if tuple(tokens[i : i + k]) == phrase:
                i += k
                break
        else:
            if not (tok in _LEADING_FILLERS and not out):
                out.append(tok)
            i += 1
    return tuple(out)


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
_SENTENCE_START = re.compile(r"[.!?:;\n\"'(\[]")
_PAIR_FIRSTS = frozenset(n.split(" ", 1)[0] for n in NAMES if " " in n)
_ASCII_UPPER = bytes(range(ord("A"), ord("Z") + 1))
_ASCII_LETTERS = _ASCII_UPPER + _ASCII_UPPER.lower()


_HASHES: dict[str, int] = {}


def _h(text: str) -> int:
    h = _HASHES.get(text)
    if h is None:
        if len(_HASHES) > 200_000:
            _HASHES.clear()
        h = _HASHES[text] = zlib.crc32(text.encode())
    return h


def _pack(hashes: Iterable[int]) -> bytes:
    return array("I", sorted(hashes)).tobytes()


def _number(token: str) -> str:
    if _THOUSANDS.match(token):
        token = token.replace(",", "")
    body, pct = (token[:-1], "%") if token.endswith("%") else (token, "")
    if "." in body and body.replace(".", "", 1).isdigit():
        body = body.rstrip("0").rstrip(".") or "0"
    # (isdigit() here raised on non-decimal digits such as Ethiopic ፩: no stored entry has them)
    if body.isdecimal():
        body = str(int(body))
    return body + pct


def _shouting(text: str) -> bool:
    if text.isascii():
        raw = text.encode()
        letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        upper = len(raw) - len(raw.translate(None, _ASCII_UPPER))
    else:
        letters = sum(c.isalpha() for c in text)
        upper = sum(c.isupper() for c in text)
    return letters > 0 and upper > 0.6 * letters


def _names_in(text: str, toks: Sequence[str]) -> set[str]:
    names: set[str] = set()
    if text != text.lower() and not _shouting(text):
        prev_end = 0
        for m in _WORD.finditer(text):
            raw = m.group(0)
            if raw != raw.lower():
                at_sentence_start = prev_end == 0 or _SENTENCE_START.search(text, prev_end, m.start()) is not None
                capital = raw[0].isupper() and not at_sentence_start
                if capital or sum(c.isupper() for c in raw) >= 2:
                    names.update(w for w in ref_word_tuple(raw) if w not in STOPWORDS)
            prev_end = m.end()
    if "'" in text or '"' in text or "`" in text:
        for m in _QUOTED.finditer(text):
            names.update(ref_word_tuple(next(g for g in m.groups() if g is not None)))
    names.update(NAMES.intersection(toks))
    if not _PAIR_FIRSTS.isdisjoint(toks):
        for i in range(len(toks) - 1):
            if toks[i] in _PAIR_FIRSTS and (pair := f"{toks[i]} {toks[i + 1]}") in NAMES:
                names.add(pair)
    names.update(t for t in toks if not t.isalpha() and not t[0].isdigit() and any(c.isdigit() for c in t))
    return names


# Added on purpose on 7 December 2026: the numbers in digits in order, signed, with the operators between
# them, when there are two or more or one has a minus sign ("-5" is not "5", "3 - 5" not "3 + 5").
_OPERATOR_RUN = re.compile(r"\s*([-+*/^<>=\u00d7\u00f7\u2212\u2264\u2265]+)\s*(?=[-\u2212+]?\d)")


def _ref_arrangement(text: str) -> str | None:
    items: list[str] = []
    i = 0
    while (m := re.compile(r"\d").search(text, i)) is not None:
        start = m.start()
        sign = ""
        if start > i and text[start - 1] in "+-\u2212" and (start < 2 or not (text[start - 2].isalnum()
                                                                             or text[start - 2] in "._")):
            sign = "-" if text[start - 1] != "+" else ""
        number = re.compile(r"\d+(?:[.,]\d+)*%?").match(text, start)
        assert number is not None
        items.append(sign + _number(number.group()))
        i = number.end()
        op = _OPERATOR_RUN.match(text, i)
        if op is not None:
            items.append(op.group(1))
            i = op.end()
    if len(items) < 2 and not any(x.startswith("-") for x in items):
        return None
    return "=" + " ".join(items)


def ref_features(text: str) -> GuardFeatures:
    toks = ref_word_tuple(text)
    numbers: list[str] = []
    negations = 0
    for tok in toks:
        if tok[0].isdigit():
            numbers.append(_number(tok))
        elif tok in _NUMBER_WORDS:
            numbers.append(_NUMBER_WORDS[tok])
        elif tok in _NEGATIONS:
            negations += 1
    if any(not t.isalpha() for t in toks) and (arranged := _ref_arrangement(text)) is not None:
        numbers.append(arranged)
    vocab = set(toks)
    vocab.update(f"{a} {b}" for a, b in itertools.pairwise(toks))
    return GuardFeatures(
        numbers=_pack(_h(n) for n in numbers),
        negations=negations,
        # Changed on purpose on 7 December 2026: a name that is none of the text's words or word pairs
        # (a capitalised filler, "Tell me"; letters folding joined to the next word) is dropped. Such a
        # name kept a text from matching even itself; a stored entry's features with it still match
        # every query they matched (only the query's names shrink).
        names=_pack(_h(n) for n in _names_in(text, toks) if n in vocab),
        vocab=_pack(_h(v) for v in vocab),
    )


def ref_exact_signature(turns: Sequence[GuardFeatures]) -> bytes:
    return b"".join(len(t.numbers).to_bytes(4, "little") + t.numbers + t.negations.to_bytes(8, "little")
                    for t in turns)


def _token_features(tok: str) -> tuple[tuple[int, float], ...]:
    if tok in STOPWORDS:
        items: list[tuple[str, float]] = [("w:" + tok, 0.2)]
    elif tok[0].isdigit():
        items = [("n:" + tok, 2.0)]
    else:
        padded = f"#{tok}#"
        grams = [padded[i : i + 3] for i in range(len(padded) - 2)]
        gw = 0.6 / math.sqrt(len(grams))
        items = [("w:" + tok, 1.0), *(("c:" + g, gw) for g in grams)]
    return tuple((zlib.crc32(f.encode()), w) for f, w in items)


class RefEmbedder:
    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self._mask = dim - 1
        self._memo: LRUCache[str, np.ndarray] = LRUCache(maxsize=4096)
        self._tokens: dict[str, tuple[tuple[int, float], ...]] = {}
        self._pairs: dict[str, int] = {}

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            vec = self._memo.get(text)
            if vec is None:
                vec = self._one(text)
                self._memo[text] = vec
            out[i] = vec
        return out

    def _one(self, text: str) -> np.ndarray:
        weights: dict[int, float] = {}
        get = weights.get
        content: list[str] = []
        tokens = self._tokens
        if len(tokens) > 100_000:
            tokens.clear()
        for tok in ref_word_tuple(text):
            features = tokens.get(tok)
            if features is None:
                features = tokens[tok] = _token_features(tok)
            for h, w in features:
                weights[h] = get(h, 0.0) + w
            if tok not in STOPWORDS:
                content.append(tok)
        pairs = self._pairs
        if len(pairs) > 100_000:
            pairs.clear()
        for a, b in itertools.pairwise(content):
            key = f"{a} {b}"
            ph = pairs.get(key)
            if ph is None:
                ph = pairs[key] = zlib.crc32(f"b:{key}".encode())
            weights[ph] = get(ph, 0.0) + 0.7
        acc = [0.0] * self.dim
        mask = self._mask
        log = math.log
        for h, w in weights.items():
            value = (1.0 + log(w)) if w > 1.0 else w
            acc[h & mask] += value if (h >> 16) & 1 else -value
        norm = math.hypot(*acc)
        vec = np.array(acc, dtype=np.float32)
        if norm > 0:
            vec /= norm
        return vec


REF_EMB = RefEmbedder()


def ref_embed(text: str) -> np.ndarray:
    """The reference vector of ``text`` (computed afresh: nothing remembered by text)."""
    return REF_EMB._one(text)


# ---------------------------------------------------------------------------------------------------------------------

_WORDS = [
    "what", "whats", "what's", "it's", "its", "theres", "who's", "how", "whens", "why's", "can't", "cant", "cannot",
    "won't", "wont", "shan't", "don't", "isn't", "they're", "we've", "you'll", "i'd", "i'm", "john's", "not", "no",
    "never", "without", "please", "could", "you", "tell", "me", "can", "so", "well", "ok", "thank", "thanks",
    "in", "advance", "i", "was", "wondering", "do", "know", "the", "a", "of", "France", "france", "new", "york",
    "New", "York", "NASA", "iPhone", "McDonald", "python", "Python", "three", "third", "half", "dozen", "last",
    "100", "1,000", "2.50", "15%", "3.0", "007", "1.2.3", "v2", "abc123def", "123abc", "COVID-19", "x86_64",
    "café", "CAFÉ", "naïve", "Straße", "İstanbul", "ﬁle", "①", "²", "٣", "日本", "Ωmega", "ǅemal", "world", "war",
    "ii", "banana", "anana", "the the", "e.g.", "U.S.", "don’t", "it‘s", "-", "--", "_x", "'quoted'", '"said"',
    "`ls -la`", "(note)", "[x]", "?", "!", ".", ",", ":", ";", "\n", "\t", "  ",
    "dont", "isnt", "doesnt", "Wouldnt", "-5", "\u22123", "+7", "3-5", "2024-01-02", "2^10", "10 ^ 2", "<", ">=",
    "=", "+", "*", "/", "\u00d7", "x-5", "1.5e3", "5%-3", "x%-3",
]  # fmt: skip

texts = st.one_of(
    st.lists(st.sampled_from(_WORDS), max_size=40).map(" ".join),
    st.lists(st.sampled_from(_WORDS), max_size=20).map("".join),
    st.text(max_size=80),
    st.text(alphabet=st.sampled_from("aA sS'tT’nN.0123456789,%-_\"`?!\n+^<=\u2212"), max_size=80),
    st.lists(st.sampled_from(_WORDS), min_size=300, max_size=500).map(" ".join),
)

EMB = BuiltinEmbedder()


def same_vector(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@settings(max_examples=700, deadline=None)
@given(st.lists(texts, min_size=1, max_size=3))
def test_features_vectors_and_signatures_equal_the_first_implementation(turns: list[str]) -> None:
    got = [features(t) for t in turns]
    want = [ref_features(t) for t in turns]
    assert [word_tuple(t) for t in turns] == [ref_word_tuple(t) for t in turns]
    assert got == want
    assert exact_signature(got) == ref_exact_signature(want)
    vectors = EMB.embed_sync(turns)
    fresh = BuiltinEmbedder().embed_sync(turns)  # no remembered words
    for text, vec, vec_fresh in zip(turns, vectors, fresh, strict=True):
        want_vec = ref_embed(text)
        assert same_vector(vec, want_vec), text
        assert same_vector(vec_fresh, want_vec), text


def test_the_standard_workload_and_benchmark_prompts_equal_the_first_implementation() -> None:
    from axtui.providers.sim.workload import Workload
    from benchmarks.prompts import prompt

    corpus = [w.request.messages[-1].text() for w in Workload(seed=11).take(500)]
    corpus += [prompt(i) for i in range(500)]
    corpus.append(" ".join(corpus[:40])[:2000])
    emb = BuiltinEmbedder()
    for text in corpus:
        assert features(text) == ref_features(text), text
        assert same_vector(emb.embed_sync([text])[0], ref_embed(text)), text
