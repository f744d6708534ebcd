"""Text the simulated models write, and the vectors they embed.

Answers are readable English built from the prompt's own keywords and a
small vocabulary, drawn with a `random.Random` the caller seeds, so the
same prompt always gets the same answer and different prompts get
different ones. Embeddings hash words and character trigrams into a fixed
number of signed buckets: deterministic, unit length, and close for texts
that share words — good enough for a semantic cache to find paraphrases.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from collections.abc import Sequence

from axtui.tokens import estimate_tokens

__all__ = ["answer_text", "embed_text", "keywords", "split_chunks", "truncate_to_tokens"]

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")
_STOPWORDS = frozenset(
    (
        "about", "above", "after", "again", "against", "all", "also", "and", "any", "are", "because", "been",
        "before", "being", "below", "between", "both", "but", "can", "could", "did", "does", "doing", "down",
        "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "her", "here", "hers",
        "him", "his", "how", "into", "its", "itself", "just", "more", "most", "much", "must", "not", "now", "off",
        "once", "only", "other", "our", "ours", "out", "over", "own", "same", "she", "should", "some", "such", "than",
        "that", "the", "their", "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "too",
        "under", "until", "very", "was", "were", "what", "when", "where", "which", "while", "who", "whom", "why",
        "will", "with", "would", "you", "your", "yours", "please", "tell", "give", "explain", "describe", "write",
        "show", "list", "make", "want", "need", "know", "like", "can't", "don't", "i'm", "it's", "let's", "work", "works", "use", "using", "get", "way", "thing", "things", "really"
    )
)
_OPENERS = (
    "In short",
    "Put simply",
    "Broadly speaking",
    "As a rule of thumb",
    "From experience",
    "At its core",
    "On balance",
    "To start with",
)
_LINKS = (
    "depends on",
    "comes down to",
    "is shaped by",
    "builds on",
    "trades off against",
    "goes hand in hand with",
    "follows from",
    "is easiest to judge by",
)
_NOUNS = (
    "the context",
    "the constraints you have",
    "cost and latency",
    "the data at hand",
    "a few careful measurements",
    "the size of the problem",
    "what the users need",
    "the trade-offs involved",
    "the details of the setup",
    "common practice",
)
_CLOSERS = (
    "so it is worth checking before deciding",
    "which is why a small experiment helps",
    "and that usually settles the question",
    "although the exceptions are instructive",
    "so start simple and refine from there",
    "and the rest follows naturally",
)


def keywords(prompt: str, limit: int = 8) -> list[str]:
    """The prompt's distinctive words, lower-cased, first occurrence first."""
    seen: dict[str, None] = {}
    for match in _WORD.finditer(prompt):
        word = match.group().lower().strip("'-")
        if len(word) >= 3 and word not in _STOPWORDS:
            seen.setdefault(word, None)
            if len(seen) >= limit:
                break
    return list(seen)


def _pick(rng: random.Random, items: Sequence[str]) -> str:
    # One C-level draw: rng.choice costs several Python calls, and an
    # answer makes dozens of choices on the hot path of every simulated call.
    return items[int(rng.random() * len(items))]


def _sentence(rng: random.Random, words: list[str], topic: str | None = None) -> str:
    first = topic or _pick(rng, words)
    others = [w for w in words if w != first]
    second = _pick(rng, others) if others else _pick(rng, _NOUNS)
    shape = int(rng.random() * 4)
    if shape == 0:
        body = f"{_pick(rng, _OPENERS)}, {first} {_pick(rng, _LINKS)} {_pick(rng, _NOUNS)}, {_pick(rng, _CLOSERS)}"
    elif shape == 1:
        body = f"{first} {_pick(rng, _LINKS)} {second} more than most people expect"
    elif shape == 2:
        body = f"When it comes to {first}, {_pick(rng, _NOUNS)} matters, {_pick(rng, _CLOSERS)}"
    else:
        body = f"{_pick(rng, _OPENERS)}, {first} and {second} {_pick(rng, _LINKS)} {_pick(rng, _NOUNS)}"
    return body[0].upper() + body[1:] + "."


def answer_text(prompt: str, rng: random.Random, target_tokens: int) -> str:
    """A readable answer of about ``target_tokens`` tokens about ``prompt``.

    The first sentence is about the prompt's first keyword (its topic, as a
    rule); later ones mix the other keywords in.

    Args:
        prompt: the text to answer; its keywords appear in the answer.
        rng: the source of every choice; seed it for a stable answer.
        target_tokens: roughly how long the answer should be (at least one
            sentence is always written).
    """
    words = keywords(prompt) or ["that"]
    sentences = [_sentence(rng, words, topic=words[0])]
    length = len(sentences[0])
    while length < target_tokens * 4:
        sentence = _sentence(rng, words)
        sentences.append(sentence)
        length += len(sentence) + 1
    return " ".join(sentences)


def truncate_to_tokens(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``max_tokens`` tokens, at a word boundary.

    Returns:
        The text (unchanged when it fits) and whether it was cut.
    """
    if estimate_tokens(text) <= max_tokens:
        return text, False
    limit = max(0, max_tokens * 4)
    head = text[:limit]
    space = head.rfind(" ")
    # A cut mid-word reads worse than a slightly shorter answer.
    if space > limit // 2:
        head = head[:space]
    return head, True


def split_chunks(text: str, rng: random.Random) -> list[str]:
    """The pieces a stream delivers: one to four words each, spaces kept.

    Joining the pieces gives back ``text`` exactly.
    """
    if not text:
        return []
    # Splitting on single spaces (not a regex) keeps this cheap; runs of
    # spaces become empty words, which rejoin to the same runs.
    words = text.split(" ")
    chunks: list[str] = []
    i, count = 0, len(words)
    while i < count:
        n = 1 + int(rng.random() * 4)
        piece = " ".join(words[i : i + n])
        i += n
        chunks.append(piece + " " if i < count else piece)
    return chunks


def embed_text(text: str, dim: int) -> list[float]:
    """A deterministic unit vector of ``dim`` floats for ``text``.

    Words and character trigrams each add ±1 to a bucket chosen by a CRC
    (stable across processes, unlike `hash`), so texts that share words
    point the same way. Empty text gives a fixed unit vector.
    """
    vec = [0.0] * dim
    lowered = text.lower()
    words = _WORD.findall(lowered)
    padded = f" {' '.join(words)} "
    trigrams = [padded[i : i + 3] for i in range(len(padded) - 2)]
    # Words weigh more than trigrams: they carry the meaning; trigrams make
    # plurals and typos land close.
    for features, weight in ((words, 2.0), (trigrams, 1.0)):
        for feature in features:
            h = zlib.crc32(feature.encode())
            vec[h % dim] += weight if (h >> 16) & 1 else -weight
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        # No words at all (empty or only symbols): still a stable unit vector.
        vec[zlib.crc32(lowered.encode()) % dim] = 1.0
        return vec
    return [v / norm for v in vec]
