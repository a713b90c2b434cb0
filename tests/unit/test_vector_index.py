"""The in-memory IVF index over a scope's vectors: same top results as the exact scan, validity
filtering, and the fallback when the probed lists hold too few valid vectors."""

from __future__ import annotations

import numpy as np

from engram.store.vector_index import ScopeVectors


def clustered(count: int, dim: int = 32, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    rows = centres[rng.integers(40, size=count)] + 0.3 * rng.standard_normal((count, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_finds_the_exact_top_results() -> None:
    rows = clustered(4050)
    matrix, queries = rows[:4000], rows[4000:]
    ids = [f"m{i}" for i in range(len(matrix))]
    indexed = ScopeVectors.build(ids, matrix, np.full(len(ids), np.inf), min_vectors=1000)
    assert indexed.lists is not None
    assert sorted(indexed.ids) == sorted(ids)
    overlaps = []
    for vector in queries:
        exact = indexed.search(vector, 10, now=None, exact=True)
        approximate = indexed.search(vector, 10, now=None)
        assert approximate[0] == exact[0]
        overlaps.append(len({i for i, _ in exact} & {i for i, _ in approximate}) / 10)
    assert np.mean(overlaps) >= 0.98


def test_small_scopes_are_scanned_exactly() -> None:
    matrix = clustered(100)
    vectors = ScopeVectors.build([f"m{i}" for i in range(100)], matrix, np.full(100, np.inf), min_vectors=1000)
    assert vectors.lists is None
    found = vectors.search(matrix[7], 3, now=None)
    assert found[0][0] == "m7" and found[0][1] > 0.999


def test_ended_validity_is_skipped_and_the_scan_fills_in() -> None:
    matrix = clustered(3000)
    ids = [f"m{i}" for i in range(3000)]
    valid_to = np.full(3000, np.inf)
    valid_to[:2990] = 10.0  # only ten memories are still valid at now=20
    vectors = ScopeVectors.build(ids, matrix, valid_to, min_vectors=1000)
    found = vectors.search(matrix[0], 10, now=20.0)
    assert sorted(i for i, _ in found) == sorted(f"m{i}" for i in range(2990, 3000))
    assert len(vectors.search(matrix[0], 10, now=None)) == 10



def test_search_scores_are_the_cosines_of_the_rows() -> None:
    matrix = clustered(3000)
    indexed = ScopeVectors.build([f"m{i}" for i in range(3000)], matrix, np.full(3000, np.inf), min_vectors=1000)
    query = matrix[11]
    expected = matrix.astype(np.float64) @ query.astype(np.float64)
    for exact in (True, False):
        found = indexed.search(query, 5, now=None, exact=exact)
        assert found[0][0] == "m11"
        assert all(abs(score - expected[int(memory_id[1:])]) < 1e-5 for memory_id, score in found)
