"""Which tags go with which: the ``suggest.neighbours`` best companions of each of the
``suggest.max_tags`` most frequent tags, the evidence ``suggest`` ranks a post's candidate
tags by (:mod:`tagspark.suggest`).

For tags ``i`` and ``t`` among those (:func:`tagspark.vocabulary.Vocabulary.mask`, generic
tags left out)::

    c(i, t)   = posts carrying both i and t
    P(t | i)  = c(i, t) / df(i)                    co-occurrence (Sigurbjoernsson & van Zwol 2008)
    w(i, t)   = (1 - walk) P(t | i) + walk * sum over j of P(j | i) P(t | j)

The second term is a two-step walk over the tag graph: a tag that goes with the tags ``i``
goes with is evidence too, which matters most for the many tags seen in few posts (a post
tagged #espresso alone reaches #grinder through #coffee). ``j`` runs over ``i``'s
neighbours and ``t`` over the first :data:`SECOND_STEP` neighbours of each ``j``; each tag
keeps its ``suggest.neighbours`` heaviest ``w(i, t)`` and the ``c(i, t)`` behind them (0 for
a companion reached only through the walk). A post's candidates then score ``sum over its
tags i of w(i, t)``: one gather and a sum, the same for one post and a corpus.

Where it runs: Spark counts ``c`` from the distinct tag sets (each partition adds up its
share ``B^T W B`` with scipy, ``B`` the sets' binary rows over those tags and ``W`` their
posts, in row blocks of :data:`tagspark.matrix.BLOCK_ROWS` tags; a grouped Arrow map sums
each block and keeps every row's ``suggest.neighbours`` most frequent companions). Only those lists
come to the driver (at most ``max_tags`` x neighbours rows, never a tags x tags matrix),
where the walk runs on them with scipy, a block of rows at a time.

How the settings were chosen, on the protocol of ``bench/suggest_quality.py`` (hide half
of every 10th post's tags, suggest 10): ``walk`` 0.5 and the second step's 10 neighbours on
stackexchange_5sites, in a prototype of the protocol (recall@10: plain co-occurrence
0.384, walk 0.2 0.415, 0.5 0.419, 0.7 0.405, 0.9 0.391; 10 or 50 second-step neighbours
within 0.003), then checked once, untuned, on the generated planted and long-tail corpora;
50 neighbours a tag lose nothing against keeping every companion (0.418 against 0.415).
``max_tags`` is 100,000, as ``features.max_tags``: on the generated 300k long tail every tag
(0) finds more (recall@10 0.235 against 0.229) for 4x the stage's time and 3x its rows.
docs/performance.md has the figures.

Every other tag of the posts (seen in too few posts for the vocabulary, or past
``max_tags``) is a *rare* tag and gets one *anchor* instead of companions
(:class:`RareTags`, :func:`anchors`): the walk's step taken through one tag.
"""

from __future__ import annotations

import bisect
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from tagspark.codec import feature_indicators, ranks_within

if TYPE_CHECKING:  # a saved model's reader (tagspark suggest) never imports Spark
    from pyspark.sql import DataFrame

# the neighbours of each intermediate tag that the walk's second step follows
SECOND_STEP = 10
# rows of the walk computed at once on the driver (bounds its memory: rows x neighbours x
# SECOND_STEP entries)
WALK_ROWS = 8192


@dataclass(frozen=True)
class Neighbours:
    """Every tag's companions, by vocabulary index, grouped by tag in index order:
    ``neighbour[offsets[i]:offsets[i + 1]]`` are tag ``i``'s, heaviest ``score`` (``w``)
    first, with ``posts`` (``c``) each. Pure numpy: it serves the executors and a saved model
    alike."""

    offsets: np.ndarray
    neighbour: np.ndarray
    score: np.ndarray
    posts: np.ndarray

    @classmethod
    def of(cls, tag: np.ndarray, neighbour, score, posts, n_tags: int) -> Neighbours:
        """From rows ``tag, neighbour, score, posts`` in any order (vocabulary indices)."""
        order = _by_row_best_first(np.asarray(tag), np.asarray(neighbour), np.asarray(score))
        tag = np.asarray(tag, dtype=np.int64)[order]
        offsets = np.zeros(n_tags + 1, dtype=np.int64)
        np.cumsum(np.bincount(tag, minlength=n_tags), out=offsets[1:])
        return cls(
            offsets,
            np.asarray(neighbour, dtype=np.int64)[order],
            np.asarray(score, dtype=np.float64)[order],
            np.asarray(posts, dtype=np.int64)[order],
        )

    @property
    def tag(self) -> np.ndarray:
        """Each entry's tag."""
        return np.repeat(np.arange(len(self.offsets) - 1), np.diff(self.offsets))

    def __len__(self) -> int:
        return len(self.neighbour)

    def most_per_tag(self) -> int:
        return int(np.diff(self.offsets).max(initial=0))


def cooccurrence(
    sets: DataFrame, column: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``tag, neighbour, posts`` (columns): every given tag's ``keep`` most frequent
    companions among the tag sets ``sets`` (``idx, weight``), ties to the lower column.
    ``column[t]`` is vocabulary tag ``t``'s column, -1 for tags left out."""
    from tagspark.matrix import BLOCK_ROWS  # the tag matrix's blocks; matrix needs Spark

    n = int(column.max(initial=-1)) + 1
    n_blocks = -(-n // BLOCK_ROWS)

    def partial(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        scaled = []
        for batch in batches:
            b = feature_indicators(batch.column("idx"), column)
            weight = batch.column("weight").to_numpy().astype(float)
            scaled.append(sparse.diags(np.sqrt(weight)) @ b)
        if not scaled:
            return
        stacked = sparse.vstack(scaled, format="csr")
        counts = (stacked.T @ stacked).tocsr()
        for block in range(n_blocks):
            rows = counts[block * BLOCK_ROWS : (block + 1) * BLOCK_ROWS]
            if rows.nnz:
                yield pa.RecordBatch.from_arrays(
                    [pa.array([block], pa.int32()), pa.array([pickle.dumps(rows, protocol=5)])],
                    ["block", "part"],
                )

    def top(table: pa.Table) -> pa.Table:
        block = int(table.column("block")[0].as_py())
        total = sum(pickle.loads(p) for p in table.column("part").to_pylist()).tocoo()
        row = total.row.astype(np.int64) + block * BLOCK_ROWS
        col = total.col.astype(np.int64)
        posts = np.rint(total.data).astype(np.int64)
        other = (row != col) & (posts > 0)
        row, col, posts = row[other], col[other], posts[other]
        kept = _first_per_row(row, col, posts.astype(float), keep)
        return pa.table(
            {
                "tag": pa.array(row[kept], pa.int32()),
                "neighbour": pa.array(col[kept], pa.int32()),
                "posts": pa.array(posts[kept], pa.int64()),
            }
        )

    found = (
        sets.select("idx", "weight")
        .mapInArrow(partial, "block int, part binary")
        .groupBy("block")
        .applyInArrow(top, "tag int, neighbour int, posts long")
        .toArrow()  # at most given tags x keep rows
    )
    return (
        found.column("tag").to_numpy().astype(np.int64),
        found.column("neighbour").to_numpy().astype(np.int64),
        found.column("posts").to_numpy().astype(np.int64),
    )


def _first_per_row(row: np.ndarray, col: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """The positions of each row's ``n`` largest ``value`` (ties to the lower ``col``).

    >>> _first_per_row(np.array([0, 0, 0, 1]), np.array([1, 2, 3, 0]),
    ...                np.array([1.0, 3.0, 1.0, 2.0]), 2).tolist()
    [1, 0, 3]
    """
    order = _by_row_best_first(row, col, value)
    return order[ranks_within(row[order]) < n]


def _by_row_best_first(row: np.ndarray, col: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The order of ``np.lexsort((col, -value, row))``: by row, largest value first, ties
    to the lower col; two sort keys instead of three, and none when the entries are in that
    order already (as :func:`walked`'s are for :meth:`Neighbours.of`).

    >>> _by_row_best_first(np.array([1, 0, 0]), np.array([0, 2, 1]), np.ones(3)).tolist()
    [2, 1, 0]
    """
    if len(row) < 2:
        return np.arange(len(row))
    row, col = row.astype(np.int64), col.astype(np.int64)
    same_row = row[1:] == row[:-1]
    if (row[1:] >= row[:-1]).all() and not (
        same_row & ((value[1:] > value[:-1]) | ((value[1:] == value[:-1]) & (col[1:] < col[:-1])))
    ).any():
        return np.arange(len(row))
    # a stable sort by (row, col) first, so that the stable sort by (row, -value) keeps ties
    # in col order
    key = row * (int(col.max()) + 1) + col
    by = np.argsort(key, kind="stable") if (key[1:] < key[:-1]).any() else np.arange(len(key))
    return by[np.lexsort((-value[by], row[by]))]


def walked(
    tag: np.ndarray,
    neighbour: np.ndarray,
    posts: np.ndarray,
    df: np.ndarray,
    walk: float,
    keep: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``tag, neighbour, score, posts``: ``w`` of the module docstring from the companions
    ``tag, neighbour, posts`` (``c``; any index space of ``len(df)`` tags, ``df`` their
    posts), each tag's ``keep`` heaviest, their ``c`` beside (0: reached only by the walk)."""
    n = len(df)
    p = posts / df[tag].astype(float)
    step = sparse.csr_matrix((p, (tag, neighbour)), shape=(n, n))
    direct = sparse.csr_matrix((posts.astype(float), (tag, neighbour)), shape=(n, n))
    kept = _first_per_row(tag, neighbour, p, SECOND_STEP)
    second = sparse.csr_matrix((p[kept], (tag[kept], neighbour[kept])), shape=(n, n))
    out: list[tuple[np.ndarray, ...]] = []
    for start in range(0, n, WALK_ROWS):
        rows = slice(start, min(n, start + WALK_ROWS))
        w = ((1 - walk) * step[rows] + walk * (step[rows] @ second)).tocoo()
        row = w.row.astype(np.int64) + start
        col = w.col.astype(np.int64)
        other = row != col
        row, col, score = row[other], col[other], w.data[other]
        best = _first_per_row(row, col, score, keep)
        row, col, score = row[best], col[best], score[best]
        c = np.asarray(direct[row, col]).ravel().astype(np.int64) if len(row) else row
        out.append((row, col, score, c))
    if not out:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0), empty
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def tag_neighbours(
    sets: DataFrame, df: np.ndarray, given: np.ndarray, keep: int, walk: float
) -> Neighbours:
    """The :class:`Neighbours` of every tag in ``given`` (a vocabulary mask), from the
    tag sets ``sets``; ``df`` is the vocabulary's document frequency."""
    vocab_of = np.flatnonzero(given)
    column = np.full(len(given), -1, dtype=np.int64)
    column[vocab_of] = np.arange(len(vocab_of))
    tag, neighbour, posts = cooccurrence(sets, column, keep)
    tag, neighbour, score, posts = walked(tag, neighbour, posts, df[vocab_of], walk, keep)
    return Neighbours.of(vocab_of[tag], vocab_of[neighbour], score, posts, len(given))


# -- rare tags ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RareTags:
    """The tags that have no companions of their own (seen in fewer than
    ``features.min_doc_freq`` posts, or past ``suggest.max_tags``), each with its *anchor*:
    the companion-bearing tag it goes with most (:func:`anchors`). ``tag`` is sorted;
    ``posts`` are the posts with both, of the tag's ``df`` posts. ``suggest`` walks a rare
    tag ``i`` through its anchor ``j``, the walk of the module docstring with ``j`` its one
    step::

        w(i, t) = (1 - walk) P(j | i) [t = j] + walk * P(j | i) w(j, t),   P(j | i) = posts / df
    """

    tag: pa.StringArray
    anchor: np.ndarray
    posts: np.ndarray
    df: np.ndarray

    @classmethod
    def of(cls, table: pa.Table) -> RareTags:
        """From a table ``tag, anchor_index, posts, df`` sorted by ``tag``."""
        return cls(
            table.column("tag").combine_chunks(),
            table.column("anchor_index").to_numpy().astype(np.int64),
            table.column("posts").to_numpy().astype(np.int64),
            table.column("df").to_numpy().astype(np.int64),
        )

    def table(self) -> pa.Table:
        return pa.table(
            {
                "tag": self.tag,
                "anchor_index": pa.array(self.anchor, pa.int32()),
                "posts": pa.array(self.posts, pa.int64()),
                "df": pa.array(self.df, pa.int64()),
            }
        )

    def __len__(self) -> int:
        return len(self.tag)

    def find(self, names: pa.Array) -> np.ndarray:
        """The position of each of ``names`` here, -1 for a tag that is not rare. A few names
        (one post's) are found by binary search in the sorted tags; many (a batch's) by one
        hash of them all (pyarrow hashes the whole set on every call: 1.7 s for 3.1M tags)."""
        if not len(self.tag) or not len(names):
            return np.full(len(names), -1, dtype=np.int64)
        if len(names) * SEARCH_PER_HASH < len(self.tag):
            sorted_tags = _Sorted(self.tag)
            found = []
            for name in names.to_pylist():
                at = bisect.bisect_left(sorted_tags, name) if name is not None else len(self.tag)
                found.append(at if at < len(self.tag) and sorted_tags[at] == name else -1)
            return np.array(found, dtype=np.int64)
        return pc.fill_null(pc.index_in(names, value_set=self.tag), -1).to_numpy().astype(np.int64)


# RareTags.find searches when it looks up fewer names than the rare tags / this
SEARCH_PER_HASH = 64


class _Sorted:
    """A sorted Arrow string array as a sequence of str, for :mod:`bisect`."""

    def __init__(self, array: pa.StringArray) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i: int) -> str:
        return self.array[i].as_py()


def anchors(looked_up: DataFrame, given: np.ndarray, rare: np.ndarray, vocabulary) -> RareTags:
    """Every rare tag's anchor, from ``looked_up`` (``idx, unknown``: each post's packed
    vocabulary indices and its tags outside the vocabulary). ``given[i]``: vocabulary tag
    ``i`` has companions; ``rare[i]``: it is rare (no companions, not generic);
    ``vocabulary`` the :class:`tagspark.vocabulary.Vocabulary`. A post's *head* is its
    companion-bearing tag in the most posts (the lowest index: the vocabulary runs from the
    most frequent); a rare tag's anchor is the head of most of its posts (ties to the more
    frequent head), and ``posts`` are those posts. Counting every companion-bearing tag of
    its posts instead of the heads scored the same on the 300k long tail (recall@10 0.2429
    against 0.2428) and took the 2M long tail's neighbours stage from 16 s to 140 s.

    One Spark pass over the cached tag sets. A rare vocabulary tag's (tag, head) pairs are
    counted, in each batch and then across them. A tag outside the vocabulary is on one
    post when ``features.min_doc_freq`` is at most 2 (tags on every post left out), so its
    row is final as it is; with a higher floor those are counted too. Only one row a rare
    tag reaches the driver. When no vocabulary tag is rare, only the posts with tags outside
    the vocabulary are passed to Python (the planted 1M corpus has none: the pass took 1 s
    instead of 3 s)."""
    from pyspark.sql import functions as F

    from tagspark.codec import unpack_sets
    from tagspark.stages import Shipped

    shared = Shipped((given, rare, list(vocabulary.everywhere)))
    n_tags = len(vocabulary.tags)

    def pairs_of(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        given, rare, everywhere = shared.value
        for batch in batches:
            idx, rows = unpack_sets(batch.column("idx"))
            head = np.full(batch.num_rows, -1, dtype=np.int64)
            bearing = np.flatnonzero(given[idx])  # each row's indices are sorted
            first_rows, first = np.unique(rows[bearing], return_index=True)
            head[first_rows] = idx[bearing[first]]
            # each post's rare vocabulary tags, with the post's head, counted here
            mine = np.flatnonzero(rare[idx] & (head[rows] >= 0))
            keys, posts = np.unique(idx[mine] * n_tags + head[rows[mine]], return_counts=True)
            unknown = batch.column("unknown")
            flat = pc.list_flatten(unknown).cast(pa.string())
            parent = pc.list_parent_indices(unknown).to_numpy()
            headed = head[parent] >= 0
            if everywhere:
                headed &= ~pc.is_in(flat, value_set=pa.array(everywhere)).to_numpy(False)
            n_unknown = int(headed.sum())
            yield pa.RecordBatch.from_arrays(
                [
                    pa.concat_arrays([pa.nulls(len(keys), pa.string()), flat.filter(headed)]),
                    pa.array(np.r_[keys // n_tags, np.full(n_unknown, -1)], pa.int32()),
                    pa.array(np.r_[keys % n_tags, head[parent[headed]]], pa.int32()),
                    pa.array(np.r_[posts, np.ones(n_unknown, dtype=np.int64)], pa.int64()),
                ],
                ["tag", "tag_index", "anchor", "posts"],
            )

    looked_up = looked_up.select("idx", "unknown")
    if not rare.any():  # then only a tag outside the vocabulary can be rare
        looked_up = looked_up.filter(F.size("unknown") > 0)
    pairs = looked_up.mapInArrow(pairs_of, "tag string, tag_index int, anchor int, posts long")
    once = vocabulary.min_doc_freq <= 2
    counted = pairs.filter(F.col("tag_index") >= 0) if once else pairs
    found = (
        counted.groupBy("tag", "tag_index", "anchor")
        .agg(F.sum("posts").alias("posts"))
        .groupBy("tag", "tag_index")
        .agg(
            F.max_by("anchor", F.struct("posts", -F.col("anchor"))).alias("anchor_index"),
            F.max("posts").alias("posts"),
            F.sum("posts").alias("df"),  # the posts of a tag outside the vocabulary
        )
    )
    if once:  # each tag outside the vocabulary is on one post: its row is final
        found = found.unionByName(
            pairs.filter(F.col("tag_index") < 0).select(
                "tag",
                "tag_index",
                F.col("anchor").alias("anchor_index"),
                "posts",
                F.col("posts").alias("df"),
            )
        )
    found = found.toArrow()  # one row a rare tag
    index = found.column("tag_index").to_numpy()
    in_vocabulary = index >= 0
    df = found.column("df").to_numpy().copy()
    df[in_vocabulary] = vocabulary.df[index[in_vocabulary]]  # every post of the tag
    name = found.column("tag").combine_chunks()
    tags = pa.array(vocabulary.tags, pa.string())
    named = pc.if_else(pc.is_null(name), tags.take(pa.array(np.maximum(index, 0))), name)
    table = pa.table(
        {
            "tag": named,
            "anchor_index": found.column("anchor_index"),
            "posts": found.column("posts"),
            "df": pa.array(df, pa.int64()),
        }
    )
    return RareTags.of(table.sort_by("tag"))
