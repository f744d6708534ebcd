"""The vector index: candidates re-checked exactly, partitions, expiry, removal, bounds, snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
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
def test_search_returns_what_brute_force_does(n: int, turns: int, threshold: float, seed: int) -> None:
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


def test_searches_of_thousands_of_rows_match_brute_force() -> None:
    rng = np.random.default_rng(7)
    n, d = 5_000, 32
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


def test_a_full_index_lets_the_least_recently_used_go_first() -> None:
    rng = np.random.default_rng(1)
    vecs = rand(rng, 4, 16)
    idx = VectorIndex(capacity=3)
    for i in range(3):
        assert idx.add("p", f"k{i}", vecs[i][None, :], created=0, expires=0) == []
    idx.touch("k0")  # a hit: k1 is now the least recently used
    assert idx.add("p", "k3", vecs[3][None, :], created=0, expires=0) == ["k1"]
    assert len(idx) == 3 and "k1" not in idx and idx.evictions == 1
    assert idx.search("p", vecs[1][None, :], 0.99, now=1) == []
    assert [c.key for c in idx.search("p", vecs[0][None, :], 0.99, now=1)] == ["k0"]
    assert idx.size("p") == 3


def test_discard_takes_effect_before_the_next_search() -> None:
    idx = VectorIndex()
    idx.add("p", "k", unit(1, 0), created=0, expires=0)
    idx.discard("k")
    idx.discard("never-there")
    assert idx.search("p", unit(1, 0), 0.5, now=1) == []
    assert len(idx) == 0 and idx.size("p") == 0


def test_many_partitions_of_identical_vectors_never_answer_each_other() -> None:
    # The worst case for a shared graph: every partition holds the same question.
    idx = VectorIndex()
    v = unit(1, 0.5, 0.25, 0)
    for p in range(400):
        idx.add(f"user:{p}", f"k{p}", v, created=0, expires=0)
    for p in (0, 17, 399):
        assert [c.key for c in idx.search(f"user:{p}", v, 0.9, now=1)] == [f"k{p}"]
    assert idx.search("user:400", v, 0.1, now=1) == []


def test_recall_against_brute_force_with_many_neighbours_in_other_partitions() -> None:
    rng = np.random.default_rng(3)
    n, d, parts = 3_000, 32, 60
    vecs = rand(rng, n, d)
    idx = VectorIndex()
    # One thread: a graph built on several comes out a little different each time (and so would this figure).
    idx.add_many([f"p{i % parts}" for i in range(n)], [f"k{i}" for i in range(n)], vecs[:, None, :],
                 created=np.zeros(n), expires=np.zeros(n), threads=1)
    found = 0
    for target in range(0, n, 30):
        q = unit_rows(vecs[target] + 0.05 * rng.standard_normal(d).astype(np.float32))
        got = idx.search(f"p{target % parts}", q, 0.8, now=1)
        assert all(int(c.key[1:]) % parts == target % parts for c in got)
        found += bool(got) and got[0].key == f"k{target}"
    assert found == len(range(0, n, 30))


def test_add_many_takes_each_key_once() -> None:
    with pytest.raises(ValueError, match="once"):
        VectorIndex().add_many(["p", "p"], ["k", "k"], np.ones((2, 1, 4), dtype=np.float32) / 2,
                               created=np.zeros(2), expires=np.zeros(2))


def test_a_snapshot_restores_the_index_and_keeps_what_was_added_before_loading(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    vecs = rand(rng, 50, 16)
    first = VectorIndex()
    for i in range(40):
        first.add(f"p{i % 3}", f"k{i}", vecs[i][None, :], created=5, expires=0)
    first.add("p0", "two-turns", vecs[40:42], created=5, expires=0)
    path = tmp_path / "index.npz"
    assert first.save(path) == 41
    assert path.stat().st_mode & 0o777 == 0o600

    second = VectorIndex()
    second.add("p1", "k5", vecs[45][None, :], created=9, expires=0)  # newer than the snapshot's k5
    second.add("p2", "new", vecs[46][None, :], created=9, expires=0)
    assert second.load(path) == 41
    assert len(second) == 42
    for i in (0, 7, 39):
        assert [c.key for c in second.search(f"p{i % 3}", vecs[i][None, :], 0.99, now=10)] == [f"k{i}"]
    assert [c.key for c in second.search("p1", vecs[45][None, :], 0.99, now=10)] == ["k5"]
    assert second.search("p2", vecs[5][None, :], 0.99, now=10) == []
    assert [c.key for c in second.search("p2", vecs[46][None, :], 0.99, now=10)] == ["new"]
    assert [c.key for c in second.search("p0", vecs[40:42], 0.99, now=10)] == ["two-turns"]
    second.add("p0", "after", vecs[47][None, :], created=11, expires=0)  # labels do not collide
    assert [c.key for c in second.search("p0", vecs[47][None, :], 0.99, now=12)] == ["after"]


def test_a_broken_snapshot_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "index.npz"
    path.write_bytes(b"not a snapshot")
    with pytest.raises((ValueError, OSError)):
        VectorIndex().load(path)


def test_similarity_is_the_exact_float32_cosine_not_the_graphs_rounded_one() -> None:
    # The graph keeps bfloat16 (8 bits of mantissa): a cosine read from it is off by ~1e-3,
    # enough to turn a near-threshold miss into a hit. The check must read the float32 vectors.
    rng = np.random.default_rng(7)
    stored = rand(rng, 200, 256)
    idx = VectorIndex()
    idx.add_many(["p"] * 200, [f"k{i}" for i in range(200)], stored[:, None, :], created=np.zeros(200),
                 expires=np.zeros(200), threads=1)  # one thread: the same graph every run
    for i in range(0, 200, 17):
        query = unit_rows(stored[i] + 0.05 * rng.standard_normal(256).astype(np.float32))
        exact = float(stored[i] @ query[0])
        found = {c.key: c for c in idx.search("p", query, -1.0, now=1)}
        assert found[f"k{i}"].mean == pytest.approx(exact, abs=1e-6)
        # A threshold a hair above the exact cosine never admits it, whatever the graph's rounding says.
        assert f"k{i}" not in {c.key for c in idx.search("p", query, exact + 2e-5, now=1)}


def test_a_snapshot_of_another_format_is_refused_so_the_store_rebuilds_it(tmp_path: Path) -> None:
    idx = VectorIndex()
    idx.add("p", "k", unit(1, 0, 0, 0), created=1, expires=0)
    path = tmp_path / "index.npz"
    idx.save(path)
    with np.load(path) as data:
        older = {name: data[name] for name in data.files if name != "format"}
    np.savez(path, **older)
    with pytest.raises(ValueError, match="another version of ax"):
        VectorIndex().load(path)


def test_a_loaded_snapshot_searches_as_widely_as_a_built_index(tmp_path: Path) -> None:
    from axtui.cache.index import GraphShape

    idx = VectorIndex()
    idx.add("p", "k", unit(1, 0, 0, 0), created=1, expires=0)
    path = tmp_path / "index.npz"
    idx.save(path)
    loaded = VectorIndex()
    loaded.shape = GraphShape(16, 53, 37)  # sizes usearch would never pick by default
    loaded.load(path)
    graphs = [shelf.graph for shelf in loaded._shelves.values()]
    assert graphs and all(g.expansion_search == 37 and g.expansion_add == 53 for g in graphs)


def test_an_index_allowed_to_grow_large_links_its_graph_more_densely() -> None:
    from axtui.cache.index import graph_shape

    small, large, unbounded = graph_shape(100_000), graph_shape(1_000_000), graph_shape(0)
    assert large == unbounded
    assert large.connectivity > small.connectivity and large.expansion_search > small.expansion_search
    idx = VectorIndex(capacity=1_000_000)
    idx.add("p", "k", unit(1, 0, 0, 0), created=1, expires=0)
    assert all(shelf.graph.connectivity == large.connectivity for shelf in idx._shelves.values())


def test_rows_that_left_are_never_found_before_or_after_the_graph_lets_them_go(tmp_path: Path) -> None:
    # Evicted rows leave the graph in batches; until then a search must not see them, and a
    # snapshot must not carry them.
    rng = np.random.default_rng(11)
    vecs = rand(rng, 30, 16)
    idx = VectorIndex(capacity=10)
    for i in range(30):
        idx.add("p", f"k{i}", vecs[i][None, :], created=1, expires=0)
    left = {f"k{i}" for i in range(20)}
    for i in range(30):
        found = {c.key for c in idx.search("p", vecs[i][None, :], -1.0, now=2)}
        assert not found & left
    path = tmp_path / "index.npz"
    idx.save(path)
    loaded = VectorIndex(capacity=10)
    loaded.load(path)
    assert sum(shelf.graph.size for shelf in loaded._shelves.values()) == 10
    assert {c.key for c in loaded.search("p", vecs[5][None, :], -1.0, now=2)} <= {f"k{i}" for i in range(20, 30)}
