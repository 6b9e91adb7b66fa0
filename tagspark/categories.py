"""Categories from a clustering: each category's real tags ranked by weight, unique names,
and each post's distance to its category's centre.

HashingTF forgets which tag made a bucket, and different tags can share one, so the
centroid's coordinates cannot name tags. Instead each tag is weighed per category from the
posts assigned to it, exactly as the centroid weighs its bucket but per real tag::

    x(p, t)    = idf(t) / ||idf(p)||       post p's normalised TF-IDF value for tag t
    weight(c, t) = sum of x(p, t) over posts p in c  /  size(c)

with ``idf(t) = log((N + 1) / (df(t) + 1))`` (0 when ``df(t) < min_doc_freq``), Spark's IDF
formula over the tag's own document frequency. Without hash collisions this equals the
centroid coordinate of the tag's bucket; with collisions it still names only real tags and
never adds two tags' weights together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from tagspark.features import CATEGORY_COL

MIXED_ID = -1
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


def tag_idf(posts: DataFrame, n_posts: int, min_doc_freq: int) -> DataFrame:
    """``tag, df, idf`` for every tag of ``posts`` (one row a distinct tag); ``n_posts`` is
    ``posts.count()``, passed in because the caller knows it already."""
    n = F.lit(float(n_posts))
    df = (
        posts.select(F.explode("tags").alias("tag"))
        .groupBy("tag")
        .agg(F.count(F.lit(1)).alias("df"))
    )
    idf = F.when(F.col("df") >= min_doc_freq, F.log((n + 1) / (F.col("df") + 1))).otherwise(0.0)
    return df.withColumn("idf", idf)


def explode_tag_values(predictions: DataFrame, idf: DataFrame, key: str = "_pos") -> DataFrame:
    """One row per (post, tag): ``key, category, tag, x`` with ``x`` the post's normalised
    TF-IDF value for the tag (0 for a post whose every tag has idf 0)."""
    exploded = predictions.select(key, CATEGORY_COL, F.explode("tags").alias("tag")).join(
        idf.select("tag", "idf"), "tag"
    )
    norm = F.sqrt(F.sum(F.col("idf") ** 2).over(Window.partitionBy(key)))
    return exploded.select(
        key,
        CATEGORY_COL,
        "tag",
        F.when(norm > 0, F.col("idf") / norm).otherwise(0.0).alias("x"),
    )


def category_tag_weights(values: DataFrame, sizes: DataFrame) -> DataFrame:
    """``category, tag, weight, posts`` for every tag that occurs in a category."""
    return (
        values.groupBy(CATEGORY_COL, "tag")
        .agg(F.sum("x").alias("_sum"), F.count(F.lit(1)).alias("posts"))
        .join(sizes, CATEGORY_COL)
        .select(CATEGORY_COL, "tag", (F.col("_sum") / F.col("size")).alias("weight"), "posts")
    )


def top_tags(weights: DataFrame, n: int) -> DataFrame:
    """The ``n`` heaviest tags of each category, ties broken by tag, with their ``rank``."""
    order = Window.partitionBy(CATEGORY_COL).orderBy(F.desc("weight"), F.desc("posts"), "tag")
    return weights.withColumn("rank", F.row_number().over(order)).filter(F.col("rank") <= n)


def post_distances(
    values: DataFrame, weights: DataFrame, distance_measure: str, key: str = "_pos"
) -> DataFrame:
    """``key, distance``: each post's distance to its category's centre in tag space
    (the centre's coordinates are the category's tag weights)."""
    centre_norm2 = weights.groupBy(CATEGORY_COL).agg(F.sum(F.col("weight") ** 2).alias("c2"))
    per_post = (
        values.join(weights.select(CATEGORY_COL, "tag", "weight"), [CATEGORY_COL, "tag"])
        .groupBy(key, CATEGORY_COL)
        .agg(F.sum(F.col("x") * F.col("weight")).alias("dot"), F.sum(F.col("x") ** 2).alias("x2"))
        .join(F.broadcast(centre_norm2), CATEGORY_COL)
    )
    if distance_measure == "cosine":
        denom = F.sqrt("x2") * F.sqrt("c2")
        distance = F.when(denom > 0, 1 - F.col("dot") / denom).otherwise(1.0)
    else:
        distance = F.sqrt(F.greatest(F.lit(0.0), F.col("x2") - 2 * F.col("dot") + F.col("c2")))
    return per_post.select(key, distance.alias("distance"))


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


def collect_categories(top: DataFrame, sizes: DataFrame, name_tags: int) -> list[Category]:
    """Bring the (small: k x tags_per_category rows) top-tag table to the driver and name it."""
    size_of = {r[CATEGORY_COL]: int(r["size"]) for r in sizes.collect()}
    grouped: dict[int, list[RankedTag]] = {c: [] for c in size_of}
    for r in sorted(top.collect(), key=lambda r: (r[CATEGORY_COL], r["rank"])):
        grouped[r[CATEGORY_COL]].append(RankedTag(r["tag"], float(r["weight"]), int(r["posts"])))
    return name_categories([(c, size_of[c], tags) for c, tags in grouped.items()], name_tags)
