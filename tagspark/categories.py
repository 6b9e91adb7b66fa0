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
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from tagspark.features import CATEGORY_COL, GROUP_COL, MIXED_ID, tag_values

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


def category_cells(groups: DataFrame, idf: np.ndarray) -> DataFrame:
    """``category, idx, posts, sx`` for every (category, tag) that occurs: how many of the
    category's posts carry the tag, and the sum of their ``x`` for it.

    ``groups`` has ``category, idx, weight``, one row per distinct tag set (with its
    category) standing for ``weight`` posts; ``idf`` is the vocabulary's. Each partition
    adds up its own cells with numpy (one row a cell it has, never one a post); Spark adds
    the partitions' cells.
    """
    shared = groups.sparkSession.sparkContext.broadcast(idf)

    def add_up(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keys, posts, sx = [], [], []
        for batch in batches:
            idx, rows, x = tag_values(batch.column("idx"), shared.value)
            weight = batch.column("weight").to_numpy()[rows]
            category = batch.column(CATEGORY_COL).to_numpy().astype(np.int64)[rows]
            keys.append((category - MIXED_ID) << 32 | idx.astype(np.int64))
            posts.append(weight)
            sx.append(weight * x)
        if keys:
            cells, at = np.unique(np.concatenate(keys), return_inverse=True)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array((cells >> 32) + MIXED_ID, pa.int32()),
                    pa.array(cells & 0xFFFFFFFF, pa.int32()),
                    pa.array(np.bincount(at, np.concatenate(posts)).round().astype(np.int64)),
                    pa.array(np.bincount(at, np.concatenate(sx))),
                ],
                [CATEGORY_COL, "idx", "posts", "sx"],
            )

    return (
        groups.select(CATEGORY_COL, "idx", "weight")
        .mapInArrow(add_up, f"{CATEGORY_COL} int, idx int, posts long, sx double")
        .groupBy(CATEGORY_COL, "idx")
        .agg(F.sum("posts").alias("posts"), F.sum("sx").alias("sx"))
    )


def category_sizes(groups: DataFrame) -> dict[int, int]:
    """``{category: posts}`` (k + 1 rows at most)."""
    rows = groups.groupBy(CATEGORY_COL).agg(F.sum("weight").alias("size")).collect()
    return {r[CATEGORY_COL]: int(r["size"]) for r in rows}


def category_tag_weights(
    cells: DataFrame, sizes: dict[int, int], vocabulary: DataFrame
) -> DataFrame:
    """``category, idx, tag, weight, posts`` for every tag that occurs in a category:
    ``weight`` is the sum of the posts' ``x`` over the category's size. ``vocabulary`` is
    the ``idx, tag`` table."""
    size = cells.sparkSession.createDataFrame(
        [(c, n) for c, n in sizes.items()], f"{CATEGORY_COL} int, size long"
    )
    return (
        cells.join(F.broadcast(size), CATEGORY_COL)
        .join(F.broadcast(vocabulary), "idx")
        .select(CATEGORY_COL, "idx", "tag", (F.col("sx") / F.col("size")).alias("weight"), "posts")
    )


def top_tags(weights: DataFrame, n: int) -> DataFrame:
    """The ``n`` heaviest tags of each category, ties broken by tag, with their ``rank``."""
    order = Window.partitionBy(CATEGORY_COL).orderBy(F.desc("weight"), F.desc("posts"), "tag")
    return weights.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= n)


def group_distances(
    groups: DataFrame, weights: DataFrame, idf: np.ndarray, distance_measure: str
) -> DataFrame:
    """``group_id, category, distance``: each group's distance to its category's centre in
    tag space (the centre's coordinates are the category's tag weights).

    The centres (one weight a (category, tag) pair: k x vocabulary at most, never one a
    post) are brought to the driver and broadcast; each Arrow batch of groups then looks up
    its tags' weights at once.
    """
    centres = weights.select(CATEGORY_COL, "idx", "weight").toArrow()
    category = centres.column(CATEGORY_COL).to_numpy().astype(np.int64)
    idx = centres.column("idx").to_numpy().astype(np.int64)
    weight = centres.column("weight").to_numpy()
    ids = np.unique(category)
    width = int(idx.max(initial=0)) + 1
    # one sorted key a (category, tag) cell, looked up by binary search
    keys = np.searchsorted(ids, category) * width + idx
    order = np.argsort(keys)
    c2 = np.bincount(np.searchsorted(ids, category), weight * weight, minlength=len(ids))
    shared = groups.sparkSession.sparkContext.broadcast(
        (ids, keys[order], weight[order], c2, width, idf)
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
                [batch.column(GROUP_COL), batch.column(CATEGORY_COL), pa.array(distance)],
                [GROUP_COL, CATEGORY_COL, "distance"],
            )

    return groups.select(GROUP_COL, CATEGORY_COL, "idx").mapInArrow(
        measure, f"{GROUP_COL} long, {CATEGORY_COL} int, distance double"
    )


def empty_distance(weights: DataFrame, distance_measure: str) -> float:
    """The distance of a post with no vocabulary tag (all zero) to the ``mixed`` centre."""
    if distance_measure == "cosine":
        return 1.0
    row = (
        weights.filter(F.col(CATEGORY_COL) == MIXED_ID)
        .agg(F.sum(F.col("weight") ** 2).alias("c2"))
        .first()
    )
    return float(np.sqrt(row["c2"] or 0.0))


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


def collect_categories(top: DataFrame, sizes: dict[int, int], name_tags: int) -> list[Category]:
    """Bring the (small: k x tags_per_category rows) top-tag table to the driver and name
    every category of ``sizes`` (``{category: posts}``)."""
    grouped: dict[int, list[RankedTag]] = {c: [] for c in sizes}
    for r in sorted(top.collect(), key=lambda r: (r[CATEGORY_COL], r["rank"])):
        grouped[r[CATEGORY_COL]].append(RankedTag(r["tag"], float(r["weight"]), int(r["posts"])))
    return name_categories([(c, sizes[c], tags) for c, tags in grouped.items()], name_tags)
