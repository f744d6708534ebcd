"""Embedders: turn each turn of a conversation into a unit vector.

Two implementations share the `Embedder` interface:

- `BuiltinEmbedder`, offline and free: hashed word, word-pair and character
  n-gram features of the normalised text (`axtui.cache.text.words`), so
  questions that differ only in case, punctuation, spacing, filler words or
  the order of their clauses get (nearly) the same vector. It does not know
  that "pasta" and "spaghetti" are related; true paraphrases need
- `ProviderEmbedder`, which asks a configured ``/v1/embeddings`` model
  through the gateway, so its calls are rate-limited, recorded and priced
  like any other call.

Vectors are float32 rows of unit length: a dot product is a cosine.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import numpy as np
from cachetools import LRUCache

from axtui.cache.text import STOPWORDS, word_tuple
from axtui.errors import ProviderError
from axtui.types import Caller

__all__ = ["BuiltinEmbedder", "EmbedFn", "Embedder", "ProviderEmbedder", "unit_rows"]

#: Words (and word pairs) whose features `BuiltinEmbedder` remembers before starting afresh.
_MAX_MEMO = 100_000
#: Texts whose vectors `BuiltinEmbedder` remembers (the least recently used leave first).
_MAX_TEXTS = 4096

#: What compose hands a `ProviderEmbedder`: texts and the caller to bill -> one vector per text.
EmbedFn = Callable[[list[str], Caller], Awaitable[list[list[float]]]]


class Embedder(Protocol):
    """Texts in, unit vectors out (one float32 row per text)."""

    #: Identifies the vector space; vectors of different names are never compared.
    name: str

    async def embed(self, texts: Sequence[str], caller: Caller | None = None) -> np.ndarray:
        """Unit vectors for ``texts``, shape ``(len(texts), dim)``.

        Args:
            texts: the texts, in order.
            caller: who the embedding is done for (billed for paid embedders).
        """
        ...


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` as float32 rows of unit length (zero rows stay zero)."""
    m = np.asarray(matrix, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(m / norms, dtype=np.float32)


class BuiltinEmbedder:
    """Hashed n-gram features of the normalised text; offline, deterministic, free.

    Features, each hashed (CRC-32, stable across processes) into ``dim``
    signed buckets:

    - every word (stop words count a fifth as much);
    - every pair of neighbouring content words, so "dog bites man" and
      "man bites dog" differ while a clause moved as a whole still matches;
    - character 3-grams of content words, so "colour"/"color" stay close;
    - numbers count double (the guards compare them exactly anyway).

    Term weights are sublinear (1 + log tf).
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 16 or dim & (dim - 1):
            raise ValueError(f"embedding dimension {dim} must be a power of two of at least 16")
        self.dim = dim
        self.name = f"builtin-ngram-{dim}"
        self._mask = dim - 1
        self._doubles = struct.Struct(f"={dim}d")  # native order, as numpy reads it
        #: The vectors of the texts seen last, least recently used first.
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        #: Words and word pairs recur across texts: their features' hashes are remembered.
        self._tokens: dict[str, _Word] = {}
        self._pairs: dict[tuple[str, str], int] = {}

    async def embed(self, texts: Sequence[str], caller: Caller | None = None) -> np.ndarray:
        """Unit vectors for ``texts`` (see the class docstring)."""
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        """The same as `embed`, without an event loop (eval, benchmarks)."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        memo = self._memo
        for i, text in enumerate(texts):
            # Taken out and put back last: the least recently used text leaves first. Each step
            # is one call into C, so a lookup in a worker thread cannot break one on the loop.
            vec = memo.pop(text, None)
            if vec is None:
                vec = self._one(text)
            memo[text] = vec
            if len(memo) > _MAX_TEXTS:
                memo.popitem(last=False)
            out[i] = vec
        return out

    def _one(self, text: str) -> np.ndarray:
        # Features are keyed by their CRC-32 (what picks their bucket and sign anyway).
        weights: dict[int, float] = {}
        get = weights.get
        content: list[str] = []
        tokens = self._tokens
        if len(tokens) > _MAX_MEMO:
            tokens.clear()
        for tok in word_tuple(text):
            word = tokens.get(tok)
            if word is None:
                word = tokens[tok] = _word(tok)
            features, is_content = word
            for h, w in features:
                weights[h] = get(h, 0.0) + w
            if is_content:
                content.append(tok)
        pairs = self._pairs
        if len(pairs) > _MAX_MEMO:
            pairs.clear()
        for pair in itertools.pairwise(content):
            ph = pairs.get(pair)
            if ph is None:
                ph = pairs[pair] = zlib.crc32(f"b:{pair[0]} {pair[1]}".encode())
            weights[ph] = get(ph, 0.0) + 0.7
        # Summed in a list of Python floats: indexing a numpy array per feature costs more than the hashing.
        acc = [0.0] * self.dim
        mask = self._mask
        log = math.log
        for h, w in weights.items():
            # Sublinear weight: a word said twice is not twice the question.
            if w > 1.0:
                w = 1.0 + log(w)
            acc[h & mask] += w if h & 0x10000 else -w
        # The norm in plain Python: numpy's (a BLAS dot) lets go of the GIL, and
        # on a busy server a background thread then holds the event loop up.
        norm = math.hypot(*acc)
        # Packed as doubles in one call, then rounded to float32 (as np.array(acc, float32) rounds).
        vec = np.frombuffer(self._doubles.pack(*acc), dtype=np.float64).astype(np.float32)
        if norm > 0:
            vec /= norm
        return vec


#: A word's features as (CRC-32, weight) pairs, and whether it is a content word (not a stop word).
_Word = tuple[tuple[tuple[int, float], ...], bool]


def _word(tok: str) -> _Word:
    return _token_features(tok), tok not in STOPWORDS


def _token_features(tok: str) -> tuple[tuple[int, float], ...]:
    """A word's own features as (CRC-32, weight): itself, or its number, and its character 3-grams."""
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


class ProviderEmbedder:
    """Vectors from an embedding model served by the gateway (``/v1/embeddings``).

    ``embed_fn`` is the gateway's embedding entry point (bound by compose),
    so every embedding call is admitted, recorded and priced. Vectors of
    texts seen recently are remembered, so a repeated system prompt is
    embedded (and paid for) once.
    """

    def __init__(self, model: str, embed_fn: EmbedFn, *, memo_size: int = 4096) -> None:
        self.model = model
        self.name = f"provider:{model}"
        self._embed_fn = embed_fn
        self._memo: LRUCache[str, np.ndarray] = LRUCache(maxsize=memo_size)
        self.dim: int | None = None

    async def embed(self, texts: Sequence[str], caller: Caller | None = None) -> np.ndarray:
        """Unit vectors for ``texts``; only texts not remembered are sent.

        Raises:
            ProviderError: the embedding model failed or answered vectors of the wrong shape.
        """
        found: dict[str, np.ndarray] = {}
        missing: list[str] = []
        for text in dict.fromkeys(texts):
            row = self._memo.get(text)
            if row is None:
                missing.append(text)
            else:
                found[text] = row
        if missing:
            raw = await self._embed_fn(missing, caller or Caller())
            if len(raw) != len(missing):
                raise ProviderError(
                    f"embedding model {self.model!r} returned {len(raw)} vectors for {len(missing)} inputs"
                )
            rows = unit_rows(np.asarray(raw, dtype=np.float32))
            if self.dim is None:
                self.dim = rows.shape[1]
            elif rows.shape[1] != self.dim:
                raise ProviderError(
                    f"embedding model {self.model!r} changed its dimension from {self.dim} to {rows.shape[1]}"
                )
            for text, row in zip(missing, rows, strict=True):
                self._memo[text] = found[text] = row
        return np.stack([found[t] for t in texts]).astype(np.float32, copy=False)
