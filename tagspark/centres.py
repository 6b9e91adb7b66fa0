"""Placing tag sets by numpy alone: the nearest centre in the embedding, and centres in tag
space (a category's tag weights) for distances and for sets the embedding cannot place.

No Spark here: the same code runs on the executors inside Arrow batches and in a saved
model answering one post (:mod:`tagspark.model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa

from tagspark.codec import feature_rows

# the category of posts with nothing to place them by (no tag left for the features); the
# job also puts posts with only generic tags there and names it "mixed"
MIXED_ID = -1


@dataclass(frozen=True)
class Cells:
    """Every (category, tag) that occurs, on the driver: ``posts[i]`` of category
    ``category[i]`` carry tag ``idx[i]`` and their ``x`` for it adds up to ``sx[i]``;
    ``sizes`` is ``{category: posts}``. At most k x vocabulary cells, never one a post."""

    category: np.ndarray
    idx: np.ndarray
    posts: np.ndarray
    sx: np.ndarray
    sizes: dict[int, int]


def tag_weights(cells: Cells, sizes: dict[int, int]) -> np.ndarray:
    """Each cell's weight: the sum of its posts' ``x`` over its category's size
    (``sizes``, which may count more posts than ``cells.sizes``: ones with no tag)."""
    ids = np.array(sorted(sizes), dtype=np.int64)
    size = np.array([sizes[c] for c in ids], dtype=float)[np.searchsorted(ids, cells.category)]
    return cells.sx / size


def embed_sets(
    packed: pa.Array, projection: np.ndarray, idf: np.ndarray, column: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The embeddings (unit rows) of a packed ``idx`` column, and which of them are
    ``placed`` (have a feature tag)."""
    v = feature_rows(packed, idf, column) @ projection
    norms = np.linalg.norm(v, axis=1)
    placed = norms > 0
    v[placed] /= norms[placed, None]
    v[~placed, 0] = 1.0  # any unit vector: cosine k-means refuses zero vectors
    return v, placed


def remoteness(v: np.ndarray, centres: np.ndarray, distance_measure: str) -> np.ndarray:
    """For each row of ``v`` and each centre, a number that orders the centres from nearest
    to farthest as MLlib's KMeansModel measures: the squared Euclidean distance less
    ``|v|^2`` (the same for every centre), or minus the cosine similarity."""
    if distance_measure == "cosine":
        norms = np.linalg.norm(centres, axis=1)
        return -(v @ (centres / np.where(norms > 0, norms, 1.0)[:, None]).T)
    # |v - c|^2 = |v|^2 - 2 v.c + |c|^2
    return (centres * centres).sum(axis=1) - 2.0 * (v @ centres.T)


def nearest_centres(v: np.ndarray, centres: np.ndarray, distance_measure: str) -> np.ndarray:
    """Each row of ``v``'s nearest centre (the first of equals), as MLlib's KMeansModel
    assigns: squared Euclidean distance, or cosine distance (1 - cosine similarity)."""
    return np.argmin(remoteness(v, centres, distance_measure), axis=1)


@dataclass(frozen=True)
class TagCentres:
    """Categories' centres in tag space: ``weight[i]`` of tag ``idx[i]`` in category
    ``category[i]`` (one entry a cell, from :func:`tag_weights`). Pure numpy, so it serves
    the executors (broadcast, inside Arrow batches) and a saved model alike; every method
    takes a batch of sets as :func:`tagspark.codec.tag_values` gives them (``idx, rows,
    x``) and their number, ``n_rows``."""

    category: np.ndarray
    idx: np.ndarray
    weight: np.ndarray
    # each category's squared norm, when these cells are only some of its tags' (a model
    # read in part for one post); by default the cells' own
    norm2: dict[int, float] | None = None

    @classmethod
    def of(cls, cells: Cells, weights: np.ndarray, placed_only: bool = False) -> TagCentres:
        """The centres of ``cells``; only those of placed categories with ``placed_only``."""
        keep = cells.category != MIXED_ID if placed_only else slice(None)
        return cls(
            cells.category[keep].astype(np.int64),
            cells.idx[keep].astype(np.int64),
            np.asarray(weights, dtype=float)[keep],
        )

    def __len__(self) -> int:
        return len(self.idx)

    @cached_property
    def _by_cell(self) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
        """Category ids, key width, the cells' sorted keys ``centre * width + tag`` (looked
        up by binary search), their weights, and each centre's squared norm."""
        known = np.fromiter(self.norm2 or (), dtype=np.int64)
        ids = np.unique(np.concatenate([self.category, known]))
        width = int(self.idx.max(initial=0)) + 1
        at_centre = np.searchsorted(ids, self.category)
        keys = at_centre * width + self.idx
        order = np.argsort(keys)
        c2 = np.bincount(at_centre, self.weight * self.weight, minlength=len(ids))
        if self.norm2 is not None:
            c2 = np.array([self.norm2.get(int(c), 0.0) for c in ids])
        return ids, width, keys[order], self.weight[order], c2

    def norms2(self) -> dict[int, float]:
        """Each category's squared norm (``centre_norm2`` of ``model.json``)."""
        ids, _, _, _, c2 = self._by_cell
        return {int(c): float(v) for c, v in zip(ids, c2, strict=True)}

    @cached_property
    def _by_tag(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.lexsort((self.category, self.idx))
        return self.idx[order], self.category[order], self.weight[order]

    def distance(
        self,
        idx: np.ndarray,
        rows: np.ndarray,
        x: np.ndarray,
        category: np.ndarray,
        n_rows: int,
        distance_measure: str,
    ) -> np.ndarray:
        """Each row's distance to the centre of its ``category`` (a row with no tag: the
        centre's norm, or 1 for cosine; a category with no cell: the origin)."""
        ids, width, keys, values, c2 = self._by_cell
        slot = np.minimum(np.searchsorted(ids, category), max(len(ids) - 1, 0))
        known = ids[slot] == category if len(ids) else np.zeros(n_rows, dtype=bool)
        wanted = slot[rows] * width + idx
        at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
        hit = (keys[at] == wanted) & known[rows] if len(keys) else np.zeros(len(idx), bool)
        w = np.where(hit, values[at] if len(keys) else 0.0, 0.0)
        dot = np.bincount(rows, x * w, minlength=n_rows)
        x2 = np.bincount(rows, x * x, minlength=n_rows)
        own = np.where(known, c2[slot] if len(ids) else 0.0, 0.0)
        if distance_measure == "cosine":
            denom = np.sqrt(x2 * own)
            return np.where(denom > 0, 1 - dot / np.where(denom > 0, denom, 1), 1.0)
        return np.sqrt(np.maximum(0.0, x2 - 2 * dot + own))

    def scores(
        self, idx: np.ndarray, rows: np.ndarray, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``row, category, score``: for every row and every category holding one of its
        tags, the sum over those tags of ``x(t) * weight(c, t)``, ordered by row, then best
        score first (ties to the lower id)."""
        tag, category, weight = self._by_tag
        width = int(category.max(initial=0)) + 1
        lo = np.searchsorted(tag, idx, "left")
        n = np.searchsorted(tag, idx, "right") - lo
        occurrence = np.repeat(np.arange(len(idx)), n)
        at = np.arange(n.sum()) + np.repeat(lo - np.cumsum(n) + n, n)
        keys, pair = np.unique(rows[occurrence] * width + category[at], return_inverse=True)
        score = np.bincount(pair, x[occurrence] * weight[at], minlength=len(keys))
        row, best = keys // width, keys % width
        ranked = np.lexsort((best, -score, row))
        return row[ranked], best[ranked], score[ranked]

    def best(self, idx: np.ndarray, rows: np.ndarray, x: np.ndarray, n_rows: int) -> np.ndarray:
        """Each row's highest-scoring category (:meth:`scores`), :data:`MIXED_ID` for a row
        none of whose tags any category holds."""
        row, category, _ = self.scores(idx, rows, x)
        first = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, dtype=bool)
        chosen = np.full(n_rows, MIXED_ID, dtype=np.int64)
        chosen[row[first]] = category[first]
        return chosen


def only_generic(idx: np.ndarray, rows: np.ndarray, n_rows: int, generic: np.ndarray) -> np.ndarray:
    """True for each row (of ``n_rows``; ``idx`` and ``rows`` as
    :func:`tagspark.codec.unpack_sets` gives them) with no tag outside ``generic``
    (vocabulary indices), a row with no tag included."""
    specific = np.bincount(rows, ~np.isin(idx, generic), minlength=n_rows)
    return specific == 0


def generic_led(
    idx: np.ndarray, rows: np.ndarray, n_rows: int, column: np.ndarray, generic: np.ndarray
) -> np.ndarray:
    """True for each row with a tag outside ``generic`` and no feature tag outside it: its
    embedding is its generic tags' alone (or none), so it is placed by its other tags.

    >>> generic_led(np.array([0, 5, 0, 1, 5]), np.array([0, 0, 1, 1, 2]), 3,
    ...             np.array([0, 1, -1, -1, -1, -1]), np.array([0]))
    array([ True, False,  True])
    """
    is_generic = np.isin(idx, generic)
    specific = np.bincount(rows, ~is_generic, minlength=n_rows) > 0
    specific_feature = np.bincount(rows, ~is_generic & (column[idx] >= 0), minlength=n_rows) > 0
    return specific & ~specific_feature
