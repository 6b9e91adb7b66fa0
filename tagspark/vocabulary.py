"""The vocabulary and the tag sets every feature method shares.

1. Vocabulary: tags in at least ``min_doc_freq`` posts (and with idf above 0), indexed
   0..n-1 from the most frequent. Rarer tags carry no shared signal, so the feature space is
   sized by the data. The vocabulary (one entry a kept tag, never one a post) is brought to
   the driver and broadcast.
2. Tag sets: each post becomes the sorted set of its vocabulary indices (looked up on the
   executors with Arrow, no shuffle), packed by :mod:`tagspark.codec`; identical sets are
   collapsed into one row with ``weight`` = how many posts carry it (one-tag posts are the
   most common kind). IDF comes from the posts, not from the collapsed rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.types import BinaryType

from tagspark.codec import lists, pack_sets, sorted_unique
from tagspark.errors import ParameterError
from tagspark.stages import Shipped

log = logging.getLogger(__name__)

# Tag sets are spread over ceil(posts / this) partitions, fixed by the data (not the cluster)
# so that a seed gives the same sample and categories everywhere. Measured at 1M posts on 2
# cores: 2 partitions build the sets, the tag matrix and the embedding in 8 s where 10 take
# 18 s (each task also adds a tag matrix the size of the vocabulary's).
POSTS_PER_PARTITION = 500_000
# the tag look-up gathers Arrow batches until they hold this many tags per vocabulary tag
# (see with_tag_sets)
LOOKUP_VALUES_PER_TAG = 4


@dataclass(frozen=True)
class Vocabulary:
    """The kept tags, most frequent first: ``tags[i]`` has document frequency ``df[i]`` and
    ``idf[i] = log((N + 1) / (df + 1))``."""

    tags: tuple[str, ...]
    df: np.ndarray
    idf: np.ndarray
    # tags on every post (idf 0, so left out) and the vocabulary's document-frequency floor:
    # a tag outside the vocabulary and not among these is on fewer than min_doc_freq posts
    everywhere: tuple[str, ...] = ()
    min_doc_freq: int = 1

    def __len__(self) -> int:
        return len(self.tags)

    def mask(self, excluded: Iterable[str] = (), max_tags: int = 0) -> np.ndarray:
        """True for every tag the features use: all but the ``excluded`` ones, and of the
        rest the ``max_tags`` most frequent (all of them when ``max_tags`` is 0).

        >>> v = Vocabulary(("a", "b", "c", "d"), np.array([9, 5, 3, 2]), np.ones(4))
        >>> v.mask(["b"], max_tags=2).tolist()
        [True, False, True, False]
        """
        keep = np.ones(len(self.tags), dtype=bool)
        keep[self.indices(excluded)] = False
        if max_tags:
            keep[np.flatnonzero(keep)[max_tags:]] = False
        return keep

    def indices(self, tags: Iterable[str]) -> list[int]:
        """The indices of those ``tags`` that are in the vocabulary."""
        wanted = set(tags)
        if not wanted:
            return []
        return sorted(self._position[t] for t in wanted if t in self._position)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tags)}


@dataclass
class TagSets:
    """What every method shares: the vocabulary, ``posts`` (the input's columns with
    ``tags`` replaced by ``idx`` and ``set_id``) and ``sets`` (``set_id, idx, weight``,
    one row per distinct set), both cached, and the number of distinct sets; ``unknown``
    is each post's ``idx`` beside its tags outside the vocabulary (``unknown``, a list;
    the same cached rows), for the rare tags' anchors (:func:`tagspark.neighbours.anchors`)."""

    vocabulary: Vocabulary
    posts: DataFrame
    sets: DataFrame
    count: int
    unknown: DataFrame | None = None


def tag_vocabulary(posts: DataFrame, n_posts: int, min_doc_freq: int) -> Vocabulary:
    """The tags of ``posts`` in at least ``min_doc_freq`` of them whose idf is above 0,
    ordered by document frequency (ties by tag).

    Examples
    --------
    Posts ``{a, b}, {a, c}, {a, b}`` with ``min_doc_freq=2``: ``a`` is in every post (idf
    ``log(4/4) = 0``, no signal) and ``c`` is too rare, so the vocabulary is ``("b",)``.
    """
    counted = (
        posts.select(F.explode("tags").alias("tag"))
        .groupBy("tag")
        .agg(F.count(F.lit(1)).alias("df"))
        .filter(F.col("df") >= max(min_doc_freq, 1))
        .toArrow()  # one row a kept tag; sorted here, not with a Spark range shuffle
    )
    everywhere = pc.greater_equal(counted.column("df"), n_posts)
    counted, on_every_post = counted.filter(pc.invert(everywhere)), counted.filter(everywhere)
    order = pc.sort_indices(counted, [("df", "descending"), ("tag", "ascending")])
    table = counted.take(order)
    df = table.column("df").to_numpy()
    return Vocabulary(
        tuple(table.column("tag").to_pylist()),
        df,
        np.log((n_posts + 1) / (df + 1.0)),
        tuple(sorted(on_every_post.column("tag").to_pylist())),
        max(min_doc_freq, 1),
    )


def with_tag_sets(
    posts: DataFrame, vocabulary: Vocabulary, tags_col: str = "tags", keep_unknown: bool = False
) -> DataFrame:
    """``posts`` with ``tags`` (``tags_col``) replaced by ``idx``, the sorted vocabulary
    indices of its tags packed by :func:`pack_sets` (empty when it has none), and
    ``set_id``, a 64-bit hash of ``idx`` (:func:`set_hash`; null when empty) that spreads
    and orders the sets. With ``keep_unknown``, also ``unknown``: the post's tags outside
    the vocabulary, from the same look-up.

    An Arrow UDF: only the ``tags`` column travels to Python, Arrow batches looked up at
    once on the executor (measured 30% faster than passing whole rows through
    ``mapInArrow``). pyarrow's ``index_in`` hashes the whole vocabulary on every call
    (0.5-0.9 s for 2.7M tags), so batches are gathered until they hold
    :data:`LOOKUP_VALUES_PER_TAG` tags per vocabulary tag: one call per batch for a small
    vocabulary, a few per partition for a large one (measured at 5M long-tail posts with
    2.7M vocabulary tags: the tag sets took 169 s batch by batch, 23 s gathered).
    """
    shared = Shipped(list(vocabulary.tags))

    def look_up(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        known = pa.array(shared.value, pa.string())
        for tags in gathered(batches, LOOKUP_VALUES_PER_TAG * len(known)):
            packed, hit = packed_tags(tags, known)
            if not keep_unknown:
                yield packed
                continue
            rows = pc.list_parent_indices(tags).to_numpy()
            miss = pa.array(~hit)
            unknown = lists(pc.list_flatten(tags).filter(miss), rows[~hit], len(tags))
            yield pa.StructArray.from_arrays([packed, unknown], ["idx", "unknown"])

    if keep_unknown:
        both = T.StructType(
            [
                T.StructField("idx", T.BinaryType()),
                T.StructField("unknown", T.ArrayType(T.StringType())),
            ]
        )
        looked = F.arrow_udf(look_up, both)(tags_col)
        posts = (
            posts.withColumn("_looked", looked)
            .select(
                "*", F.col("_looked.idx").alias("idx"), F.col("_looked.unknown").alias("unknown")
            )
            .drop("_looked")
        )
    else:
        posts = posts.withColumn("idx", F.arrow_udf(look_up, BinaryType())(tags_col))
    return posts.drop(tags_col).withColumn(
        "set_id", F.when(F.length("idx") > 0, set_hash(F.col("idx")))
    )


def packed_tags(tags: pa.ListArray, known: pa.Array) -> tuple[pa.BinaryArray, np.ndarray]:
    """Each row's tags (a list column) as the sorted packed indices of those in ``known``
    (the vocabulary, in index order), and for every tag of the flattened column whether it
    is known. A tag repeated within a row counts once.

    >>> packed, hit = packed_tags(pa.array([["b", "a", "b"], ["zz"]]), pa.array(["a", "b"]))
    >>> [np.frombuffer(v.as_py(), "<i4").tolist() for v in packed], hit.tolist()
    ([[0, 1], []], [True, True, True, False])
    """
    found = pc.fill_null(pc.index_in(pc.list_flatten(tags), value_set=known), -1).to_numpy()
    rows = pc.list_parent_indices(tags).to_numpy()
    hit = found >= 0
    # one sort of row * n_tags + index orders each row's indices and drops repeats
    keys = sorted_unique(rows[hit] * len(known) + found[hit])
    return pack_sets(keys % len(known), keys // len(known), len(tags)), hit


def gathered(arrays: Iterator[pa.Array], min_values: int) -> Iterator[pa.Array]:
    """The list ``arrays`` concatenated into ones of at least ``min_values`` items (the
    last one may hold fewer), in order.

    >>> parts = [pa.array([["a"], ["b", "c"]]), pa.array([["d"]]), pa.array([["e", "f"]])]
    >>> [a.to_pylist() for a in gathered(iter(parts), 3)]
    [[['a'], ['b', 'c']], [['d'], ['e', 'f']]]
    """
    for pending in _gathering(arrays, min_values, lambda array: array):
        yield pa.concat_arrays(pending)


def gathered_batches(
    batches: Iterator[pa.RecordBatch], min_values: int, column: str = "tags"
) -> Iterator[pa.RecordBatch]:
    """:func:`gathered` for record batches, counting the items of their list ``column``."""
    for pending in _gathering(batches, min_values, lambda batch: batch.column(column)):
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


def _gathering(items: Iterator, min_values: int, values) -> Iterator[list]:
    pending: list = []
    held = 0
    for item in items:
        pending.append(item)
        held += len(values(item).flatten())
        if held >= min_values:
            yield pending
            pending, held = [], 0
    if pending:
        yield pending


def set_hash(idx: Column) -> Column:
    """The 64-bit hash of a packed set. Not an identity: sets are told apart by ``idx``
    (see :func:`weighted_sets`), so a clash costs nothing but a shared partition."""
    return F.xxhash64(idx)


def weighted_sets(post_sets: DataFrame, partitions: int) -> DataFrame:
    """``set_id, idx, weight``: one row per distinct tag set, ``weight`` posts each.

    A set is its packed ``idx`` itself: rows are grouped by ``(set_id, idx)``, so two sets
    whose 64-bit ``set_id`` hashes clash stay two rows (the hash only spreads and orders
    them; joins on a set use both columns). The rows sit in ``partitions`` partitions by
    ``set_id``, sorted, whatever the cluster's shuffle settings: k-means|| samples each
    partition with its own seed, so the same points must sit in the same partitions in the
    same order on every run.
    """
    return (
        post_sets.filter(F.col("set_id").isNotNull())
        .select("set_id", "idx")
        .repartition(partitions, "set_id")
        .groupBy("set_id", "idx")
        .agg(F.count(F.lit(1)).alias("weight"))
        .sortWithinPartitions("set_id", "idx")
    )


def tag_sets(posts: DataFrame, n_posts: int, min_doc_freq: int, cache) -> TagSets:
    """Steps 1-3 of the module docstring for ``posts`` (``_pos, tags`` and any other
    columns, which are kept). ``cache`` is the caller's ``DataFrame -> DataFrame`` that
    caches and later unpersists.

    Raises
    ------
    ParameterError
        Fewer than 2 vocabulary tags.
    """
    vocabulary = tag_vocabulary(posts, n_posts, min_doc_freq)
    if len(vocabulary) < 2:
        raise ParameterError(
            f"only {len(vocabulary)} tag(s) occur in at least features.min_doc_freq="
            f"{min_doc_freq} posts; at least 2 are needed to form categories"
        )
    log.info("vocabulary: %d tags in at least %d posts", len(vocabulary), min_doc_freq)
    looked_up = cache(with_tag_sets(posts, vocabulary, keep_unknown=True))
    post_sets = looked_up.drop("unknown")  # the same cached rows
    partitions = max(1, -(-n_posts // POSTS_PER_PARTITION))
    sets = cache(weighted_sets(post_sets, partitions))
    count = sets.count()
    log.info("tag sets: %d distinct, in %d partitions", count, partitions)
    return TagSets(vocabulary, post_sets, sets, count, looked_up.select("idx", "unknown"))
