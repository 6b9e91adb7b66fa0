"""The packed tag-set codec: a post's sorted vocabulary indices as one binary value of
little-endian int32s (Spark hashes, groups, shuffles and caches one flat blob a set far
faster than an ``array<int>``; only numpy code looks inside), and the TF-IDF values of
packed sets. Pure numpy and pyarrow: it runs on the executors, inside Arrow batches.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy import sparse


def sorted_unique(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` for integer keys, by a stable sort: the keys come grouped by row,
    in sorted runs that a stable sort merges in near-linear time (measured 30x faster than
    ``np.unique`` on a batch of 10,000 posts)."""
    ordered = np.sort(keys, kind="stable")
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def unique_inverse(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for integer keys, by one unstable argsort
    (measured 0.05 s against numpy's 0.23 s for the 3M keys of a 10,000-post batch).

    >>> [a.tolist() for a in unique_inverse(np.array([7, 3, 7, 9]))]
    [[3, 7, 9], [1, 0, 1, 2]]
    """
    order = np.argsort(keys)
    ordered = keys[order]
    first = np.empty(len(keys), dtype=bool)
    first[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    ids = np.cumsum(first, dtype=np.int64)
    ids -= 1
    inverse = np.empty_like(ids)
    inverse[order] = ids
    return ordered[first], inverse


def ranks_within(groups: np.ndarray) -> np.ndarray:
    """Each entry's place (0 first) among the entries of its group, for ``groups`` that
    come grouped (equal values next to each other).

    >>> ranks_within(np.array([4, 4, 4, 7, 9, 9])).tolist()
    [0, 1, 2, 0, 0, 1]
    """
    if not len(groups):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))


def pack_sets(values: np.ndarray, rows: np.ndarray, n_rows: int) -> pa.BinaryArray:
    """Each row's tag indices (``values``, grouped by their sorted ``rows``) as one binary
    value of little-endian int32s. Spark hashes, groups, shuffles and caches one flat blob
    a set far faster than an ``array<int>``; only numpy code looks inside."""
    offsets = _offsets(rows, n_rows, 4)
    data = np.ascontiguousarray(values, dtype="<i4").tobytes()
    return pa.BinaryArray.from_buffers(
        pa.binary(), n_rows, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )


def unpack_sets(packed: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`pack_sets`: every tag index, and its row."""
    width = np.int64 if pa.types.is_large_binary(packed.type) else np.int32
    _, offset_buffer, data_buffer = packed.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=width)[
        packed.offset : packed.offset + len(packed) + 1
    ]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0] : offsets[-1]]
    rows = np.repeat(np.arange(len(packed)), np.diff(offsets) // 4)
    return data.view("<i4").astype(np.int64), rows


def set_tags(packed: bytes) -> list[int]:
    """One packed set's tag indices (for a row brought to the driver)."""
    return np.frombuffer(packed, dtype="<i4").tolist()


def lists(values: np.ndarray | pa.Array, rows: np.ndarray, n_rows: int) -> pa.ListArray:
    """The list column of ``n_rows`` rows holding ``values``; ``rows`` (sorted) says whose."""
    values = values if isinstance(values, pa.Array) else pa.array(values)
    return pa.ListArray.from_arrays(pa.array(_offsets(rows, n_rows, 1)), values)


def _offsets(rows: np.ndarray, n_rows: int, item_size: int) -> np.ndarray:
    """Arrow offsets of ``n_rows`` rows whose items (``item_size`` units each) belong to the
    sorted ``rows``."""
    offsets = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n_rows) * item_size, out=offsets[1:])
    return offsets


def tag_values(
    packed: pa.Array, idf: np.ndarray, keep: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a packed ``idx`` column: every index, its row, and its ``x = idf / ||idf||`` over
    the row's tags (only the tags in ``keep``, when given; 0 for the others, and for every
    tag of a row with none kept). Identical sets have identical ``x``, so no table stores it.
    """
    idx, rows = unpack_sets(packed)
    values = idf[idx] if keep is None else idf[idx] * keep[idx]
    norms = np.sqrt(np.bincount(rows, values * values, minlength=len(packed)))[rows]
    return idx, rows, np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)


def feature_rows(packed: pa.Array, idf: np.ndarray, column: np.ndarray) -> sparse.csr_matrix:
    """The rows of ``x`` over the feature tags of a packed ``idx`` column, as a sparse
    ``rows x feature tags`` matrix; vocabulary tag ``t`` is feature column ``column[t]``
    (-1: left out of the features, and of ``x``'s norm)."""
    idx, rows, x = tag_values(packed, idf, column >= 0)
    return _feature_matrix(idx, rows, x, len(packed), column)


def feature_indicators(packed: pa.Array, column: np.ndarray) -> sparse.csr_matrix:
    """1 where a row of a packed ``idx`` column holds a feature tag: the sparse ``rows x
    feature tags`` matrix of which row has which (``column`` as for :func:`feature_rows`)."""
    idx, rows = unpack_sets(packed)
    return _feature_matrix(idx, rows, np.ones(len(idx)), len(packed), column)


def _feature_matrix(
    idx: np.ndarray, rows: np.ndarray, values: np.ndarray, n_rows: int, column: np.ndarray
) -> sparse.csr_matrix:
    at = column[idx]
    used = at >= 0
    return sparse.csr_matrix(
        (values[used], (rows[used], at[used])), shape=(n_rows, int(column.max(initial=-1)) + 1)
    )
