"""Categories from a clustering, on Spark: every (category, tag) cell's posts and weight,
and sets placed by their tags.

HashingTF forgets which tag made a bucket, and different tags can share one, so the
centroid's coordinates cannot name tags. Instead each tag is weighed per category from the
posts assigned to it, exactly as the centroid weighs its bucket but per real tag::

    x(p, t)    = idf(t) / ||idf(p)||       post p's normalised TF-IDF value for tag t
    weight(c, t) = sum of x(p, t) over posts p in c  /  size(c)

with ``idf(t) = log((N + 1) / (df(t) + 1))``, Spark's IDF formula over the tag's own
document frequency, for the vocabulary's tags (tags rarer than ``min_doc_freq`` have idf 0
and never lead a category). Without hash collisions this equals the centroid coordinate of
the tag's bucket; with collisions it still names only real tags and never adds two tags'
weights together. Identical tag sets have identical ``x``, so the sums run over the
distinct sets, each counted as many times as it has posts.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.centres import MIXED_ID, Cells, TagCentres, generic_led, only_generic
from tagspark.clustering import CATEGORY_COL
from tagspark.codec import tag_values, unpack_sets
from tagspark.stages import Shipped

# the idx of the row category_cells adds per category, holding its number of posts
SIZE_ROW = -1


def category_cells(
    groups: DataFrame, idf: np.ndarray, generic_only: np.ndarray | None = None
) -> Cells:
    """The :class:`Cells` of ``groups`` (``category, idx, weight``, one row per distinct
    tag set, with its category, standing for ``weight`` posts; ``idf`` is the vocabulary's).
    With ``generic_only`` (vocabulary indices), only the sets outside :data:`MIXED_ID` whose
    every tag is one of them count: the cells that :func:`with_mixed_cells` moves.

    Each partition adds up its own cells with numpy (one row a cell it has, and one a
    category for its size, never one a post); Spark adds the partitions' cells, and the
    total comes to the driver, where naming needs it whole.
    """
    shared = Shipped((idf, generic_only))

    def add_up(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keys, posts, sx = [], [], []
        idf, generic = shared.value
        for batch in batches:
            if generic is not None:
                idx, rows = unpack_sets(batch.column("idx"))
                moved = only_generic(idx, rows, batch.num_rows, generic)
                moved &= batch.column(CATEGORY_COL).to_numpy() != MIXED_ID
                if not moved.any():
                    continue
                batch = batch.filter(pa.array(moved))
            idx, rows, x = tag_values(batch.column("idx"), idf)
            weight = batch.column("weight").to_numpy()
            category = batch.column(CATEGORY_COL).to_numpy().astype(np.int64)
            keys += [_cell_key(category[rows], idx), _cell_key(category, SIZE_ROW)]
            posts += [weight[rows], weight]
            sx += [weight[rows] * x, np.zeros(len(weight))]
        if keys:
            cells, at = np.unique(np.concatenate(keys), return_inverse=True)
            category, idx = _cell_of(cells)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(category, pa.int32()),
                    pa.array(idx, pa.int32()),
                    pa.array(np.bincount(at, np.concatenate(posts)).round().astype(np.int64)),
                    pa.array(np.bincount(at, np.concatenate(sx))),
                ],
                [CATEGORY_COL, "idx", "posts", "sx"],
            )

    table = (
        groups.select(CATEGORY_COL, "idx", "weight")
        .mapInArrow(add_up, f"{CATEGORY_COL} int, idx int, posts long, sx double")
        .groupBy(CATEGORY_COL, "idx")
        .agg(F.sum("posts").alias("posts"), F.sum("sx").alias("sx"))
        .toArrow()  # k x vocabulary rows at most
    )
    category = table.column(CATEGORY_COL).to_numpy().astype(np.int64)
    idx = table.column("idx").to_numpy().astype(np.int64)
    posts = table.column("posts").to_numpy()
    size = idx == SIZE_ROW
    tag = ~size
    return Cells(
        category[tag],
        idx[tag],
        posts[tag],
        table.column("sx").to_numpy()[tag],
        {int(c): int(n) for c, n in zip(category[size], posts[size], strict=True)},
    )


def with_mixed_cells(cells: Cells, moved: Cells) -> Cells:
    """``cells`` once the sets behind ``moved`` (:func:`category_cells` with
    ``generic_only``) went to :data:`MIXED_ID`: their cells taken from their categories and
    added to the mixed one, without another pass over the sets."""
    category = np.concatenate([cells.category, moved.category, np.full(len(moved.idx), MIXED_ID)])
    idx = np.concatenate([cells.idx, moved.idx, moved.idx])
    keys, at = np.unique(_cell_key(category, idx), return_inverse=True)
    sign = np.concatenate(
        [np.ones(len(cells.idx)), -np.ones(len(moved.idx)), np.ones(len(moved.idx))]
    )
    posts = np.bincount(at, sign * np.concatenate([cells.posts, moved.posts, moved.posts]))
    sx = np.bincount(at, sign * np.concatenate([cells.sx, moved.sx, moved.sx]))
    kept = posts.round() > 0
    sizes = dict(cells.sizes)
    for c, n in moved.sizes.items():
        sizes[c] -= n
        sizes[MIXED_ID] = sizes.get(MIXED_ID, 0) + n
    return Cells(
        *_cell_of(keys[kept]),
        posts[kept].round().astype(np.int64),
        sx[kept],
        {c: n for c, n in sizes.items() if n > 0},
    )


def _cell_key(category: np.ndarray, idx: np.ndarray | int) -> np.ndarray:
    """One int64 a (category, idx) pair, ordered by category then idx."""
    return (category - MIXED_ID) << 32 | (np.asarray(idx, dtype=np.int64) - SIZE_ROW)


def _cell_of(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``(category, idx)`` arrays that :func:`_cell_key` made ``keys`` of.

    >>> _cell_of(_cell_key(np.array([-1, 0, 7]), np.array([3, -1, 0])))
    (array([-1,  0,  7]), array([ 3, -1,  0]))
    """
    return (keys >> 32) + MIXED_ID, (keys & 0xFFFFFFFF) + SIZE_ROW


def with_generic_led_sets_unplaced(
    groups: DataFrame, column: np.ndarray, generic: np.ndarray
) -> DataFrame:
    """``groups`` with every set that has a tag outside ``generic`` (vocabulary indices) but
    no feature tag outside it (``column[t] < 0``: not a feature) moved to
    :data:`MIXED_ID`, for :func:`with_sets_placed_by_tags` to place by its other tags. Such
    a set's embedding holds its generic tags alone: every one of them lands on the same
    point, and k-means gathers them into one catch-all category named after whatever rare
    tags they carry (:func:`generic_led`)."""
    shared = Shipped((column, generic))
    position = groups.columns.index(CATEGORY_COL)

    def unplace(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        column, generic = shared.value
        for batch in batches:
            idx, rows = unpack_sets(batch.column("idx"))
            led = generic_led(idx, rows, batch.num_rows, column, generic)
            current = batch.column(CATEGORY_COL).to_numpy(zero_copy_only=False)
            moved = np.where(led, MIXED_ID, current).astype(np.int32)
            yield batch.set_column(position, CATEGORY_COL, pa.array(moved))

    return groups.mapInArrow(unplace, groups.schema)


def with_sets_placed_by_tags(groups: DataFrame, placing: TagCentres, idf: np.ndarray) -> DataFrame:
    """``groups`` with every set of category :data:`MIXED_ID` (one the embedding could not
    place: none of its tags is a feature tag, e.g. all rarer than ``features.max_tags``)
    moved to the category whose centre weighs its tags most (:meth:`TagCentres.best` of
    ``placing``, the placed categories' centres). A set none of whose tags occurs in a
    placed category stays in :data:`MIXED_ID`. A narrow map; the centres travel with it.

    Examples
    --------
    With #rare seen only in category 3's posts (weight 0.2) and #odd in category 1's (0.1)
    and 3's (0.05), the set {rare, odd} scores 0.25 x for category 3 against 0.1 x for 1,
    and goes to 3; the set {unseen} stays in mixed.
    """
    shared = Shipped((placing, idf))
    position = groups.columns.index(CATEGORY_COL)

    def place(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        placing, idf = shared.value
        for batch in batches:
            current = batch.column(CATEGORY_COL).to_numpy(zero_copy_only=False)
            idx, rows, x = tag_values(batch.column("idx"), idf)
            best = placing.best(idx, rows, x, batch.num_rows)
            moved = np.where(current == MIXED_ID, best, current).astype(np.int32)
            yield batch.set_column(position, CATEGORY_COL, pa.array(moved))

    return groups.mapInArrow(place, groups.schema)
