"""Categories from a clustering: each category's real tags ranked by weight, unique names,
and each post's distance to its category's centre.

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
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.clustering import CATEGORY_COL, GROUP_COL, MIXED_ID
from tagspark.codec import tag_values

MIXED_NAME = "mixed"


@dataclass(frozen=True)
class RankedTag:
    tag: str
    weight: float
    posts: int


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    leading_tags: tuple[str, ...]
    size: int
    tags: tuple[RankedTag, ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "leading_tags": list(self.leading_tags),
            "size": self.size,
            "tags": [{"tag": t.tag, "weight": t.weight, "posts": t.posts} for t in self.tags],
        }


# the idx of the row category_cells adds per category, holding its number of posts
SIZE_ROW = -1


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


def category_cells(groups: DataFrame, idf: np.ndarray) -> Cells:
    """The :class:`Cells` of ``groups`` (``category, idx, weight``, one row per distinct
    tag set, with its category, standing for ``weight`` posts; ``idf`` is the vocabulary's).

    Each partition adds up its own cells with numpy (one row a cell it has, and one a
    category for its size, never one a post); Spark adds the partitions' cells, and the
    total comes to the driver, where naming needs it whole.
    """
    shared = groups.sparkSession.sparkContext.broadcast(idf)

    def add_up(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keys, posts, sx = [], [], []
        for batch in batches:
            idx, rows, x = tag_values(batch.column("idx"), shared.value)
            weight = batch.column("weight").to_numpy()
            category = batch.column(CATEGORY_COL).to_numpy().astype(np.int64)
            keys += [_cell_key(category[rows], idx), _cell_key(category, SIZE_ROW)]
            posts += [weight[rows], weight]
            sx += [weight[rows] * x, np.zeros(len(weight))]
        if keys:
            cells, at = np.unique(np.concatenate(keys), return_inverse=True)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array((cells >> 32) + MIXED_ID, pa.int32()),
                    pa.array((cells & 0xFFFFFFFF) + SIZE_ROW, pa.int32()),
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


def _cell_key(category: np.ndarray, idx: np.ndarray | int) -> np.ndarray:
    """One int64 a (category, idx) pair, ordered by category then idx."""
    return (category - MIXED_ID) << 32 | (np.asarray(idx, dtype=np.int64) - SIZE_ROW)


def tag_weights(cells: Cells, sizes: dict[int, int]) -> np.ndarray:
    """Each cell's weight: the sum of its posts' ``x`` over its category's size
    (``sizes``, which may count more posts than ``cells.sizes``: ones with no tag)."""
    ids = np.array(sorted(sizes), dtype=np.int64)
    size = np.array([sizes[c] for c in ids], dtype=float)[np.searchsorted(ids, cells.category)]
    return cells.sx / size


def top_tags(
    cells: Cells, weights: np.ndarray, tags: tuple[str, ...], n: int, excluded: list[int]
) -> dict[int, list[RankedTag]]:
    """The ``n`` heaviest tags of each category (ties by posts, then by tag), leaving out
    the ``excluded`` tag indices. ``tags`` names the indices (the vocabulary)."""
    by_name = np.empty(len(tags), dtype=np.int64)
    by_name[sorted(range(len(tags)), key=tags.__getitem__)] = np.arange(len(tags))
    kept = np.flatnonzero(~np.isin(cells.idx, excluded))
    order = kept[
        np.lexsort(
            (
                by_name[cells.idx[kept]],
                -cells.posts[kept],
                -weights[kept],
                cells.category[kept],
            )
        )
    ]
    # the cells come grouped by category: each one's rank is its place after the first
    category = cells.category[order]
    first = np.flatnonzero(np.r_[True, category[1:] != category[:-1]])
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    ranked: dict[int, list[RankedTag]] = {}
    for i in order[rank < n]:
        ranked.setdefault(int(cells.category[i]), []).append(
            RankedTag(tags[cells.idx[i]], float(weights[i]), int(cells.posts[i]))
        )
    return ranked


def group_distances(
    groups: DataFrame, cells: Cells, weights: np.ndarray, idf: np.ndarray, distance_measure: str
) -> DataFrame:
    """``group_id, idx, category, distance``: each group's distance to its category's centre in
    tag space (the centre's coordinates are the category's tag ``weights``, one a cell).

    The centres are broadcast; each Arrow batch of groups then looks up its tags' weights
    at once.
    """
    ids = np.unique(cells.category)
    width = int(cells.idx.max(initial=0)) + 1
    # one sorted key a (category, tag) cell, looked up by binary search
    at_centre = np.searchsorted(ids, cells.category)
    keys = at_centre * width + cells.idx
    order = np.argsort(keys)
    c2 = np.bincount(at_centre, weights * weights, minlength=len(ids))
    shared = groups.sparkSession.sparkContext.broadcast(
        (ids, keys[order], weights[order], c2, width, idf)
    )
    cosine = distance_measure == "cosine"

    def measure(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        ids, keys, values, c2, width, idf = shared.value
        for batch in batches:
            idx, rows, x = tag_values(batch.column("idx"), idf)
            idx = idx.astype(np.int64)
            centre = np.searchsorted(ids, batch.column(CATEGORY_COL).to_numpy())
            wanted = centre[rows] * width + idx
            at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            w = np.where(keys[at] == wanted, values[at], 0.0) if len(keys) else np.zeros_like(x)
            dot = np.bincount(rows, x * w, minlength=batch.num_rows)
            x2 = np.bincount(rows, x * x, minlength=batch.num_rows)
            own = c2[centre]
            if cosine:
                denom = np.sqrt(x2 * own)
                distance = np.where(denom > 0, 1 - dot / np.where(denom > 0, denom, 1), 1.0)
            else:
                distance = np.sqrt(np.maximum(0.0, x2 - 2 * dot + own))
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column(GROUP_COL),
                    batch.column("idx"),
                    batch.column(CATEGORY_COL),
                    pa.array(distance),
                ],
                [GROUP_COL, "idx", CATEGORY_COL, "distance"],
            )

    return groups.select(GROUP_COL, CATEGORY_COL, "idx").mapInArrow(
        measure, f"{GROUP_COL} long, idx binary, {CATEGORY_COL} int, distance double"
    )


def with_sets_placed_by_tags(
    groups: DataFrame, cells: Cells, weights: np.ndarray, idf: np.ndarray
) -> DataFrame:
    """``groups`` with every set of category :data:`MIXED_ID` (one the embedding could not
    place: none of its tags is a feature tag, e.g. all rarer than ``features.max_tags``)
    moved to the category whose centre weighs its tags most: the largest sum over its tags
    of ``x(t) * weight(c, t)`` (``weights`` of ``cells``, the centres in tag space), ties to
    the lower id. A set none of whose tags occurs in a placed category stays in
    :data:`MIXED_ID`. A narrow map; the centres' cells are broadcast, sorted by tag.

    Examples
    --------
    With #rare seen only in category 3's posts (weight 0.2) and #odd in category 1's (0.1)
    and 3's (0.05), the set {rare, odd} scores 0.25 x for category 3 against 0.1 x for 1,
    and goes to 3; the set {unseen} stays in mixed.
    """
    placed = cells.category != MIXED_ID
    order = np.lexsort((cells.category[placed], cells.idx[placed]))
    shared = groups.sparkSession.sparkContext.broadcast(
        (cells.idx[placed][order], cells.category[placed][order], weights[placed][order], idf)
    )
    position = groups.columns.index(CATEGORY_COL)

    def place(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        tag, category, weight, idf = shared.value
        width = int(category.max(initial=0)) + 1
        for batch in batches:
            current = batch.column(CATEGORY_COL).to_numpy(zero_copy_only=False)
            idx, rows, x = tag_values(batch.column("idx"), idf)
            mine = current[rows] == MIXED_ID
            idx, rows, x = idx[mine], rows[mine], x[mine]
            # every (tag occurrence, category holding the tag) pair, scored x * weight
            lo = np.searchsorted(tag, idx, "left")
            n = np.searchsorted(tag, idx, "right") - lo
            occurrence = np.repeat(np.arange(len(idx)), n)
            at = np.arange(n.sum()) + np.repeat(lo - np.cumsum(n) + n, n)
            keys, pair = np.unique(rows[occurrence] * width + category[at], return_inverse=True)
            score = np.bincount(pair, x[occurrence] * weight[at], minlength=len(keys))
            row, best = keys // width, keys % width
            ranked = np.lexsort((best, -score, row))
            first = ranked[np.r_[True, row[ranked][1:] != row[ranked][:-1]]] if len(keys) else []
            moved = current.astype(np.int32)
            moved[row[first]] = best[first]
            yield batch.set_column(position, CATEGORY_COL, pa.array(moved))

    return groups.mapInArrow(place, groups.schema)


def empty_distance(cells: Cells, weights: np.ndarray, distance_measure: str) -> float:
    """The distance of a post with no vocabulary tag (all zero) to the ``mixed`` centre."""
    if distance_measure == "cosine":
        return 1.0
    mixed = weights[cells.category == MIXED_ID]
    return float(np.sqrt(np.sum(mixed * mixed)))


def name_categories(
    ranked: list[tuple[int, int, list[RankedTag]]], name_tags: int
) -> list[Category]:
    """Name categories by their leading tags joined with ``_``, unique across categories.

    Parameters
    ----------
    ranked : list of (category id, size, tags ranked highest first)
    name_tags : int
        How many leading tags make a name.

    Returns
    -------
    list of Category, largest first. Category :data:`MIXED_ID` is named ``mixed``. On a
    clash the later (smaller) category adds its next tag until the name is unique, and its
    id when it runs out of tags.

    Examples
    --------
    >>> tags = lambda *ts: [RankedTag(t, 1.0, 1) for t in ts]
    >>> [c.name for c in name_categories([(0, 9, tags("food", "italy")),
    ...                                   (1, 5, tags("food", "pasta"))], 1)]
    ['food', 'food_pasta']
    """
    taken: set[str] = {MIXED_NAME}
    categories = []
    for cid, size, tags in sorted(ranked, key=lambda r: (-r[1], r[0])):
        names = [t.tag for t in tags]
        if cid == MIXED_ID:
            categories.append(Category(cid, MIXED_NAME, (), size, tuple(tags)))
            continue
        n = min(name_tags, len(names))
        name = "_".join(names[:n])
        while (name in taken or not name) and n < len(names):
            n += 1
            name = "_".join(names[:n])
        if name in taken or not name:
            name = f"{name}_{cid}" if name else f"category_{cid}"
        taken.add(name)
        categories.append(Category(cid, name, tuple(names[:n]), size, tuple(tags)))
    return categories


def ranked_categories(
    ranked: dict[int, list[RankedTag]], sizes: dict[int, int], name_tags: int
) -> list[Category]:
    """Name every category of ``sizes`` (``{category: posts}``) from its ranked tags
    (:func:`top_tags`; none for a category whose every tag was left out)."""
    return name_categories([(c, n, ranked.get(c, [])) for c, n in sizes.items()], name_tags)
