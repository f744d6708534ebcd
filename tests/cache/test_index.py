"""The vector index: exact two-stage search, partitions, expiry, removal, growth."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from axtui.cache.index import VectorIndex
from axtui.cache.semantic import unit_rows


def unit(*values: float) -> np.ndarray:
    return unit_rows(np.array([values], dtype=np.float32))


def rand(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    return unit_rows(rng.standard_normal((n, d)).astype(np.float32))


def test_search_finds_only_its_partition_and_live_rows() -> None:
    idx = VectorIndex()
    idx.add("p", "k1", unit(1, 0, 0, 0), created=10, expires=0)
    idx.add("p", "k2", unit(1, 0.1, 0, 0), created=10, expires=50)
    idx.add("q", "k3", unit(1, 0, 0, 0), created=10, expires=0)
    found = idx.search("p", unit(1, 0, 0, 0), 0.9, now=20)
    assert [c.key for c in found] == ["k1", "k2"]
    assert found[0].mean > 0.999
    assert [c.key for c in idx.search("p", unit(1, 0, 0, 0), 0.9, now=60)] == ["k1"]  # k2 expired
    assert [c.key for c in idx.search("p", unit(1, 0, 0, 0), 0.9, now=20, min_created=11)] == []
    assert idx.search("nowhere", unit(1, 0, 0, 0), 0.5, now=20) == []
    assert idx.search("p", unit(0, 0, 1, 0), 0.5, now=20) == []


def test_a_conversation_is_as_similar_as_its_least_similar_turn() -> None:
    idx = VectorIndex()
    system, question = unit(1, 0, 0, 0)[0], unit(0, 1, 0, 0)[0]
    idx.add("p", "k", np.stack([system, question]), created=0, expires=0)
    other_system = unit_rows(np.array([[0.6, 0, 0.8, 0]], dtype=np.float32))[0]
    found = idx.search("p", np.stack([other_system, question]), 0.7, now=1)
    assert len(found) == 1
    assert abs(found[0].mean - 0.8) < 1e-3  # mean of 0.6 and 1.0
    assert abs(found[0].min_turn - 0.6) < 1e-3


def test_remove_and_growth_keep_every_other_row_findable() -> None:
    rng = np.random.default_rng(0)
    idx = VectorIndex()
    vecs = rand(rng, 300, 32)
    for i, v in enumerate(vecs):
        idx.add("p", f"k{i}", v[None, :], created=0, expires=0)
    for i in range(0, 300, 3):
        assert idx.remove(f"k{i}")
    assert not idx.remove("k0")
    assert len(idx) == 200
    for i in (1, 2, 4, 298, 299):
        top = idx.search("p", vecs[i][None, :], 0.99, now=1)
        assert [c.key for c in top] == [f"k{i}"]
    assert idx.search("p", vecs[0][None, :], 0.99, now=1) == []
    idx.clear()
    assert len(idx) == 0 and idx.nbytes() == 0


def test_re_adding_a_key_moves_it() -> None:
    idx = VectorIndex()
    idx.add("p", "k", unit(1, 0), created=0, expires=0)
    idx.add("q", "k", unit(1, 0), created=0, expires=0)
    assert idx.search("p", unit(1, 0), 0.5, now=1) == []
    assert [c.key for c in idx.search("q", unit(1, 0), 0.5, now=1)] == ["k"]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 200), st.integers(1, 3), st.floats(0.0, 0.95), st.integers(0, 2**32 - 1))
def test_two_stage_search_returns_exactly_what_brute_force_does(n: int, turns: int, threshold: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 16
    idx = VectorIndex(k=n)
    rows = []
    base = rand(rng, turns, d)
    for i in range(n):
        # Rows near one conversation, so some pass any threshold.
        conv = unit_rows(base + rng.uniform(0, 1.2) * rng.standard_normal((turns, d)).astype(np.float32))
        rows.append(conv)
        idx.add("p", f"k{i}", conv, created=0, expires=0)
    q = unit_rows(base + 0.1 * rng.standard_normal((turns, d)).astype(np.float32))
    expected = {f"k{i}" for i, conv in enumerate(rows) if float(np.mean(np.sum(conv * q, axis=1))) >= threshold + 2e-3}
    got = {c.key for c in idx.search("p", q, threshold, now=1)}
    assert expected <= got
    for c in idx.search("p", q, threshold, now=1):
        conv = rows[int(c.key[1:])]
        assert abs(c.mean - float(np.mean(np.sum(conv * q, axis=1)))) < 5e-3
        assert abs(c.min_turn - float(np.min(np.sum(conv * q, axis=1)))) < 5e-3


def test_searches_across_many_chunks_match_brute_force() -> None:
    rng = np.random.default_rng(7)
    n, d = 5_000, 32  # more rows than one matrix product takes
    vecs = rand(rng, n, d)
    idx = VectorIndex(k=50)
    for i, v in enumerate(vecs):
        idx.add("p", f"k{i}", v[None, :], created=0, expires=0)
    for target in (0, 2_047, 2_048, 4_999):
        q = unit_rows(vecs[target] + 0.05 * rng.standard_normal(d).astype(np.float32))
        expected = {f"k{i}" for i in np.flatnonzero(vecs @ q[0] >= 0.8 + 2e-3)}
        got = {c.key for c in idx.search("p", q, 0.8, now=1)}
        assert f"k{target}" in got
        assert expected <= got
