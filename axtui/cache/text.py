"""Text normalisation shared by the built-in embedder and the guards.

Near-duplicate questions differ in case, punctuation, spacing, contractions
and filler words ("please", "could you tell me"); `words` removes those
differences so that the same question gives the same words.
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["FILLER_PHRASES", "STOPWORDS", "content_words", "word_tuple", "words"]

# Each with the pieces of text it cannot match without (one of them): most texts skip most patterns.
_CONTRACTIONS = (
    (re.compile(r"\b(can)'?t\b"), r"\1 not", ("cant", "can't")),
    (re.compile(r"\bwon'?t\b"), "will not", ("wont", "won't")),
    (re.compile(r"\bshan'?t\b"), "shall not", ("shant", "shan't")),
    (re.compile(r"\b(\w+)n't\b"), r"\1 not", ("n't",)),
    # The same typed without the apostrophe ("dont", "isnt"): a negation all the same.
    (
        re.compile(r"\b(do|does|did|is|are|was|were|has|have|had|would|should|could|must|need)n'?t\b"),
        r"\1 not",
        ("dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "hasnt", "havent", "hadnt", "wouldnt",
         "shouldnt", "couldnt", "mustnt", "neednt"),
    ),
    (re.compile(r"\b(\w+)'re\b"), r"\1 are", ("'re",)),
    (re.compile(r"\b(\w+)'ve\b"), r"\1 have", ("'ve",)),
    (re.compile(r"\b(\w+)'ll\b"), r"\1 will", ("'ll",)),
    (re.compile(r"\b(\w+)'d\b"), r"\1 would", ("'d",)),
    (re.compile(r"\bi'm\b"), "i am", ("i'm",)),
    # "what's" and "whats" both mean "what is"; the possessive 's carries no
    # meaning a bag of words could use, so it goes too.
    (
        re.compile(r"\b(what|that|it|there|here|who|where|how|when|why)'?s\b"),
        r"\1 is",
        ("'s", "whats", "thats", "its", "theres", "heres", "whos", "wheres", "hows", "whens", "whys"),
    ),
    (re.compile(r"'s\b"), "", ("'s",)),
)

# Runs of letters and digits; a decimal point or comma inside a number stays.
_TOKEN = re.compile(r"\d+(?:[.,]\d+)*%?|[^\W\d_]+(?:[\d]+[^\W\d_]*)*|\d+")
# The same on ASCII text (where it finds the same tokens, faster).
_ASCII_TOKEN = re.compile(_TOKEN.pattern, re.ASCII)
# ASCII text without digits: its tokens are its runs of letters (every other byte made a space).
_LETTERS_ONLY = bytes(c if chr(c).isalpha() else 32 for c in range(128)) + b" " * 128
_DIGITS = b"0123456789"

#: Words that carry little meaning; they count for little in the embedding.
STOPWORDS = frozenset(
    """a an the of to in on at for from by with about into over under as is are was were be been being am do does
    did doing have has had i me my we our you your it its this that these those there here and or but if so than
    then what which who whom whose how why when where can could would should will shall may might must""".split()  # noqa: SIM905
)

#: Phrases that never change a question's meaning, removed before embedding (longest first).
FILLER_PHRASES: tuple[tuple[str, ...], ...] = tuple(
    sorted(
        (
            tuple(p.split())
            for p in (
                "please",
                "pls",
                "plz",
                "kindly",
                "hey",
                "hi",
                "hello",
                "thanks",
                "thank you",
                "thanks in advance",
                "um",
                "uh",
                "umm",
                "quick question",
                "just wondering",
                "i was wondering",
                "i wonder",
                "can you",
                "could you",
                "would you",
                "will you",
                "can you please",
                "could you please",
                "would you please",
                "tell me",
                "can you tell me",
                "could you tell me",
                "would you tell me",
                "let me know",
                "do you know",
                "i want to know",
                "i would like to know",
                "i need to know",
                "help me understand",
            )
        ),
        key=len,
        reverse=True,
    )
)
_LEADING_FILLERS = frozenset({"so", "well", "ok", "okay", "alright"})
# Filler phrases by their first word, longest first, so each token is checked against few.
_FILLERS_BY_FIRST: dict[str, list[list[str]]] = {}
for _phrase in FILLER_PHRASES:
    _FILLERS_BY_FIRST.setdefault(_phrase[0], []).append(list(_phrase))


# The contractions people also type without an apostrophe ("cant", "whats").
_BARE = tuple(c for c in _CONTRACTIONS if "'?" in c[0].pattern)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    for pattern, repl, clues in _CONTRACTIONS if "'" in text else _BARE:
        for clue in clues:
            if clue in text:
                text = pattern.sub(repl, text)
                break
    return text


def _tokens(folded: str) -> list[str]:
    if not folded.isascii():
        return _TOKEN.findall(folded)
    raw = folded.encode()
    if len(raw.translate(None, _DIGITS)) < len(raw):
        return _ASCII_TOKEN.findall(folded)
    return raw.translate(_LETTERS_ONLY).decode().split()


def words(text: str) -> list[str]:
    """The question's words: lower case, no punctuation, no fillers, contractions expanded.

    Args:
        text: any text.

    Returns:
        The words in order, numbers kept whole (``2.5``, ``15%``).
    """
    return list(word_tuple(text))


@functools.lru_cache(maxsize=8192)
def word_tuple(text: str) -> tuple[str, ...]:
    """`words` as a tuple, remembered: the embedder and the guards read the same texts."""
    tokens = _tokens(_fold(text))
    n = len(tokens)
    if _FILLERS_BY_FIRST.keys().isdisjoint(tokens):
        # No filler phrase: only the leading "so" and "well" go.
        i = 0
        while i < n and tokens[i] in _LEADING_FILLERS:
            i += 1
        return tuple(tokens[i:])
    out: list[str] = []
    get = _FILLERS_BY_FIRST.get
    i = 0
    while i < n:
        tok = tokens[i]
        for phrase in get(tok, ()):
            k = len(phrase)
            if tokens[i : i + k] == phrase:
                i += k
                break
        else:
            # "so" and "well" are fillers only when they open the question.
            if out or tok not in _LEADING_FILLERS:
                out.append(tok)
            i += 1
    return tuple(out)


def content_words(text: str) -> list[str]:
    """`words` without stop words."""
    return [w for w in words(text) if w not in STOPWORDS]
