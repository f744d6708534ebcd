"""Distinct everyday prompts for benchmarks: no digits, no two alike, never one partition each.

A benchmark that puts a number in every prompt ("… prompt number 17")
makes the semantic cache's work easy: numbers are guarded exactly, so each
prompt lands in a partition of its own and every lookup searches almost
nothing. Users' prompts share partitions (one model, one scope, the same
shape of conversation), so these do too: ``prompt(i)`` spells ``i`` with
words from fixed lists, about fourteen words, all in one partition.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TEMPLATES", "prompt", "prompts", "vectors"]

_ASKS = (
    "could you explain", "please describe", "tell me about", "help me understand", "give me a summary of",
    "what should I know about", "walk me through", "write a short note on", "what is special about",
    "give some advice on", "suggest a few ideas for", "list the main points of", "compare the options for",
    "what are common mistakes with", "how would you teach", "what is the history of",
)
_ADJECTIVES = (
    "quiet", "modern", "simple", "healthy", "cheap", "classic", "seasonal", "local", "gentle", "quick",
    "careful", "creative", "practical", "friendly", "reliable", "colourful", "traditional", "portable",
    "sunny", "rainy", "autumn", "winter", "weekend", "family", "beginner", "advanced", "outdoor", "indoor",
    "vegetarian", "budget", "small", "large",
)
_NOUNS = (
    "gardening", "bread baking", "cycling routes", "houseplants", "coffee brewing", "bird watching",
    "camping gear", "kitchen knives", "running shoes", "tea blends", "book clubs", "pottery", "sailing",
    "hiking trails", "photography", "soup recipes", "chess openings", "knitting", "woodworking",
    "language learning", "budget travel", "home offices", "dog training", "cat care", "meal planning",
    "piano practice", "composting", "rock climbing", "city parks", "museum visits", "board games",
    "picnic food", "sleep habits", "yoga routines", "bike repair", "herb gardens", "jam making",
    "window boxes", "train journeys", "beach holidays",
)
_CONTEXTS = (
    "for someone starting out this spring", "when living in a small flat", "on a tight weekly budget",
    "with young children at home", "for a busy working parent", "in a cold and windy climate",
    "for an older neighbour", "when time is short", "for a group of close friends", "in a busy city",
    "for a relaxed sunday afternoon", "without buying expensive equipment", "for a school project",
    "before a long holiday", "after moving to a new town", "for a rainy evening indoors",
    "while travelling by train", "for a first attempt", "that a teenager would enjoy",
    "in plain and simple words",
)

_CLOSINGS = ("", " Keep it brief.", " Thank you so much.", " Be honest please.")

#: How many distinct prompts there are.
TEMPLATES = len(_ASKS) * len(_ADJECTIVES) * len(_NOUNS) * len(_CONTEXTS) * len(_CLOSINGS)


def prompt(i: int) -> str:
    """The ``i``-th prompt (distinct for ``i`` below `TEMPLATES`, about 14 words, no digits)."""
    i %= TEMPLATES
    # Mixed-radix digits, spread so that neighbouring i differ in every word.
    # (the multiplier is prime to TEMPLATES, so this is a permutation).
    i = (i * 2_654_435_761) % TEMPLATES
    a, i = i % len(_ASKS), i // len(_ASKS)
    b, i = i % len(_ADJECTIVES), i // len(_ADJECTIVES)
    c, i = i % len(_NOUNS), i // len(_NOUNS)
    d, i = i % len(_CONTEXTS), i // len(_CONTEXTS)
    e = i % len(_CLOSINGS)
    ask = _ASKS[a]
    return f"{ask[0].upper()}{ask[1:]} {_ADJECTIVES[b]} {_NOUNS[c]} {_CONTEXTS[d]}?{_CLOSINGS[e]}"


def prompts(n: int, start: int = 0) -> list[str]:
    """Prompts ``start`` to ``start + n`` (distinct while below `TEMPLATES`)."""
    return [prompt(i) for i in range(start, start + n)]


def vectors(n: int) -> Any:
    """The built-in embedder's vectors of ``prompts(n)``, kept in the temp dir between runs (1M: ~1 min)."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from axtui.cache import BuiltinEmbedder

    embedder = BuiltinEmbedder()
    path = Path(tempfile.gettempdir()) / f"ax-bench-vectors-{embedder.name}-{n}.npy"
    if path.exists():
        return np.load(path)
    out = embedder.embed_sync(prompts(n))
    np.save(path, out)
    return out
