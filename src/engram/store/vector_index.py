"""In-memory vector search over one scope's cached vectors: an exact numpy scan for small scopes and
an inverted-file index (IVF: k-means lists, the query scans the nearest lists) above a size threshold.

The index is derived from the vectors the store reads from its database and lives only in memory,
beside that cache: writes patch it (new rows are scanned exactly until the next rebuild), so it
never disagrees with the database, and it is never the source of truth. Why IVF and not HNSW: on two shared cores
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
LIST_SIZE = 500
#: Lists scanned per query: this times the square root of the list count (at least ``MIN_PROBES``). The
#: recall of an IVF index follows the number of lists scanned more than their share: on real text
#: (``engram bench scale``'s corpus) recall@10 against the exact scan was 0.981 with 20 of 200 lists
#: (100,000 vectors) and 0.988 with 40 of 2,000 (a million), 0.997 with 60.
PROBES_PER_ROOT = 1.5
MIN_PROBES = 16
_TRAIN_SAMPLE = 50
_ITERATIONS = 6
_ASSIGN_CHUNK = 65_536
#: ``(memory id, cosine similarity)``, best first.
Ranked = list[tuple[str, float]]


def similarities(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``matrix @ vector`` on the calling thread (numpy's own loops, not the BLAS). A query's products are
    small (one vector against a few thousand rows); OpenBLAS split them over its threads, whose workers
    then spun through the rest of the search: on two shared cores (load 5) a 100,000-memory scope's search
    used 50 ms of CPU per query with them and 30 without. Building the index keeps the BLAS."""
    return np.einsum("ij,j->i", matrix, vector)


@dataclass
class IVFLists:
    """k-means centroids and, for the list-ordered matrix, where each list starts and ends."""

    centroids: np.ndarray
    bounds: np.ndarray
    probes: int

    def nearest(self, vector: np.ndarray) -> np.ndarray:
        """The ``probes`` lists nearest to ``vector``, in list order."""
        return np.sort(np.argpartition(-similarities(self.centroids, vector), self.probes - 1)[:self.probes])

class ScopeVectors:
    """One scope's ids, unit vectors and validity end (epoch seconds, ``inf`` when open), row-aligned.

    Writes patch it in place (``upsert``, ``remove``) instead of reloading the scope: a changed row is
    overwritten, a removed one masked, a new one appended. With ``lists`` the first ``indexed`` rows are
    in list order and the rows after them (appended since the index was built) are scanned exactly with
    every query; ``stale`` says when masked and appended rows are many enough to rebuild (``compacted``)."""

    def __init__(self, ids: list[str], matrix: np.ndarray, valid_to: np.ndarray,
                 lists: IVFLists | None = None) -> None:
        self.ids = list(ids)
        self.matrix = matrix
        self.valid_to = np.asarray(valid_to, dtype=np.float64)
        self.alive = np.ones(len(self.ids), dtype=bool)
        self.size = len(self.ids)
        self.indexed = self.size
        self.dead = 0
        self.lists = lists
        self.position = {memory_id: row for row, memory_id in enumerate(self.ids)}

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
        probes = max(MIN_PROBES, int(np.ceil(PROBES_PER_ROOT * np.sqrt(len(centroids)))))
        return cls([ids[i] for i in order], np.ascontiguousarray(matrix[order]), valid_to[order],
                   IVFLists(centroids, bounds, min(probes, len(centroids))))

    def __len__(self) -> int:
        return len(self.position)

    def upsert(self, memory_id: str, vector: np.ndarray, valid_to: float) -> None:
        """Set one row: overwritten where it is (unless it sits in an IVF list), else appended."""
        row = self.position.get(memory_id)
        if row is not None and (self.lists is None or row >= self.indexed):
            self._writable()
            self.matrix[row] = vector
            self.valid_to[row] = valid_to
            return
        if row is not None:
            self.remove(memory_id)
        if self.size == len(self.matrix):
            self._grow(len(vector))
        self.matrix[self.size] = vector
        self.valid_to[self.size] = valid_to
        self.alive[self.size] = True
        self.ids.append(memory_id)
        self.position[memory_id] = self.size
        self.size += 1

    def remove(self, memory_id: str) -> None:
        """Mask one row and zero its vector (nothing when the id is not here): an erased memory's embedding
        does not linger in the cache."""
        row = self.position.pop(memory_id, None)
        if row is not None:
            self._writable()
            self.matrix[row] = 0.0
            self.alive[row] = False
            self.dead += 1

    def _writable(self) -> None:
        if not self.matrix.flags.writeable:
            self.matrix = self.matrix.copy()

    def stale(self) -> bool:
        """Whether masked rows, or rows appended after the IVF index was built, are many enough to rebuild."""
        if self.dead > max(64, self.size // 4):
            return True
        return self.lists is not None and self.size - self.indexed > max(1000, self.indexed // 20)

    def compacted(self, *, min_vectors: int = ANN_MIN_VECTORS) -> ScopeVectors:
        """The live rows alone, re-indexed when there are at least ``min_vectors``."""
        live = np.flatnonzero(self.alive[:self.size])
        return ScopeVectors.build([self.ids[i] for i in live], np.ascontiguousarray(self.matrix[live]),
                                  self.valid_to[live], min_vectors=min_vectors)

    def _grow(self, width: int) -> None:
        capacity = max(64, self.size + self.size // 8)
        matrix = np.zeros((capacity, width), dtype=np.float32)
        if self.size:
            matrix[:self.size] = self.matrix[:self.size]
        self.matrix = matrix
        self.valid_to = np.concatenate([self.valid_to[:self.size], np.full(capacity - self.size, np.inf)])
        self.alive = np.concatenate([self.alive[:self.size], np.zeros(capacity - self.size, dtype=bool)])

    def search(self, vector: np.ndarray, limit: int, *, now: float | None, exact: bool = False) -> Ranked:
        """Top ``limit`` ``(id, cosine)``, best first; rows whose validity ended by ``now`` are skipped
        (``now`` None keeps them). ``exact`` forces the full scan."""
        vector = np.asarray(vector, dtype=np.float32)
        if not self.position:
            return []
        if self.lists is not None and not exact:
            # each list is a contiguous block of rows: score the blocks in place (no gathered copy)
            spans = [(int(self.lists.bounds[i]), int(self.lists.bounds[i + 1])) for i in self.lists.nearest(vector)]
            spans.append((self.indexed, self.size))
            rows = np.concatenate([np.arange(low, high) for low, high in spans])
            scores = np.concatenate([similarities(self.matrix[low:high], vector) for low, high in spans])
            found = self._top(rows, scores, limit, now)
            if len(found) >= min(limit, len(self.position)):
                return found
        return self._top(None, similarities(self.matrix[:self.size], vector), limit, now)

    def _top(self, rows: np.ndarray | None, scores: np.ndarray, limit: int, now: float | None) -> Ranked:
        if now is not None or self.dead:
            keep = self.alive[:self.size] if rows is None else self.alive[rows]
            if now is not None:
                keep = keep & ((self.valid_to[:self.size] if rows is None else self.valid_to[rows]) > now)
            scores = np.where(keep, scores, -np.inf)
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
