"""In-memory vector search over one scope's cached vectors: an exact numpy scan for small scopes and
an inverted-file index (IVF: k-means lists, the query scans the nearest lists) above a size threshold.

The index is derived from the vectors the store reads from its database and lives only in memory,
beside that cache: it is rebuilt whenever the cache is (after any write), so it can never disagree
with the database, and it is never the source of truth. Why IVF and not HNSW: on two shared cores
an HNSW library inserts a few hundred 384-d vectors a second (an hour for a million), while the
k-means lists of a million vectors are built in seconds to a minute with the BLAS the exact scan uses.
Candidates found through the lists are scored exactly; when fewer valid ones than asked are found,
the search falls back to the exact scan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from engram._lazy import LazyModule

if TYPE_CHECKING:
    import numpy as np
else:
    np = LazyModule("numpy")  # numpy loads on the first vector read or write, not for `engram get`/`list`

#: Scopes with at least this many vectors get an IVF index; smaller ones are scanned exactly.
ANN_MIN_VECTORS = 50_000
#: Vectors per list on average (the list count is ``n / LIST_SIZE``, at least 16).
LIST_SIZE = 1000
#: Lists scanned per query, as a share of all lists (at least ``MIN_PROBES``).
PROBE_SHARE = 0.1
MIN_PROBES = 16
_TRAIN_SAMPLE = 50
_ITERATIONS = 6
_ASSIGN_CHUNK = 65_536
#: ``(memory id, cosine similarity)``, best first.
Ranked = list[tuple[str, float]]


@dataclass
class IVFLists:
    """k-means centroids and, for the list-ordered matrix, where each list starts and ends."""

    centroids: np.ndarray
    bounds: np.ndarray
    probes: int

    def candidate_rows(self, vector: np.ndarray) -> np.ndarray:
        """Row numbers (in list order) of the ``probes`` lists nearest to ``vector``."""
        nearest = np.argpartition(-(self.centroids @ vector), self.probes - 1)[:self.probes]
        return np.concatenate([np.arange(self.bounds[i], self.bounds[i + 1]) for i in np.sort(nearest)])


@dataclass
class ScopeVectors:
    """One scope's ids, unit vectors and validity end (epoch seconds, ``inf`` when open), row-aligned;
    with ``lists`` the rows are in list order."""

    ids: list[str]
    matrix: np.ndarray
    valid_to: np.ndarray
    lists: IVFLists | None = None

    @classmethod
    def build(cls, ids: list[str], matrix: np.ndarray, valid_to: np.ndarray, *,
              min_vectors: int = ANN_MIN_VECTORS, seed: int = 0) -> ScopeVectors:
        """Wrap the rows; index them (reordering the rows by list) when there are at least ``min_vectors``."""
        if len(ids) < max(min_vectors, 2 * MIN_PROBES):
            return cls(ids, matrix, valid_to)
        centroids = _kmeans(matrix, max(2 * MIN_PROBES, len(ids) // LIST_SIZE), seed)
        labels = _nearest(matrix, centroids)
        order = np.argsort(labels, kind="stable")
        counts = np.bincount(labels, minlength=len(centroids))
        bounds = np.concatenate([[0], np.cumsum(counts)])
        probes = max(MIN_PROBES, int(np.ceil(PROBE_SHARE * len(centroids))))
        return cls([ids[i] for i in order], np.ascontiguousarray(matrix[order]), valid_to[order],
                   IVFLists(centroids, bounds, min(probes, len(centroids))))

    def search(self, vector: np.ndarray, limit: int, *, now: float | None, exact: bool = False) -> Ranked:
        """Top ``limit`` ``(id, cosine)``, best first; rows whose validity ended by ``now`` are skipped
        (``now`` None keeps them). ``exact`` forces the full scan."""
        vector = np.asarray(vector, dtype=np.float32)
        if self.lists is not None and not exact:
            rows = self.lists.candidate_rows(vector)
            found = self._top(rows, self.matrix[rows] @ vector if len(rows) < len(self.ids) // 2
                              else (self.matrix @ vector)[rows], limit, now)
            if len(found) >= min(limit, len(self.ids)):
                return found
        return self._top(None, self.matrix @ vector, limit, now)

    def _top(self, rows: np.ndarray | None, scores: np.ndarray, limit: int, now: float | None) -> Ranked:
        if now is not None:
            valid = self.valid_to if rows is None else self.valid_to[rows]
            scores = np.where(valid > now, scores, -np.inf)
        top = min(limit, int(np.isfinite(scores).sum()))
        if top <= 0:
            return []
        picked = np.argpartition(-scores, top - 1)[:top]
        picked = picked[np.argsort(-scores[picked], kind="stable")]
        positions = picked if rows is None else rows[picked]
        return [(self.ids[p], float(s)) for p, s in zip(positions, scores[picked], strict=True)]


def _kmeans(matrix: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Spherical k-means centroids, trained on a sample of about ``_TRAIN_SAMPLE`` rows per centroid."""
    rng = np.random.default_rng(seed)
    sample = matrix[np.sort(rng.choice(len(matrix), size=min(len(matrix), count * _TRAIN_SAMPLE), replace=False))]
    centroids = sample[rng.choice(len(sample), size=count, replace=False)].copy()
    for _ in range(_ITERATIONS):
        labels = _nearest(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, labels, sample)
        empty = np.bincount(labels, minlength=count) == 0
        sums[empty] = sample[rng.choice(len(sample), size=int(empty.sum()), replace=False)]
        centroids = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return centroids.astype(np.float32)


def _nearest(matrix: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.concatenate([np.argmax(matrix[start:start + _ASSIGN_CHUNK] @ centroids.T, axis=1)
                           for start in range(0, len(matrix), _ASSIGN_CHUNK)])
