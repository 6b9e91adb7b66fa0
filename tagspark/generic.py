"""Generic tags (#love, #instagood, ...) and the ``mixed`` bucket.

A generic tag is frequent and spread over the categories the way the posts themselves are:

    share(t)  = posts carrying t / posts in categories
    spread(t) = exp(H(t's posts over categories)) / exp(H(all posts over categories))

so ``spread`` is 1 for a tag that falls into categories in proportion to their sizes and
about 1/k for a tag that lives in one category. A tag is generic when ``share >=
generic.min_share``, ``spread >= generic.min_spread`` and it occurs in at least
:data:`MIN_CATEGORIES` categories; ``generic.tags`` adds the user's own. Generic tags never
name a category. A post left with no tag that is neither generic nor too rare to learn from
(below ``features.min_doc_freq``) goes to the ``mixed`` bucket, category id -1.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.categories import MIXED_ID
from tagspark.config import GenericConfig
from tagspark.features import CATEGORY_COL

MIN_CATEGORIES = 3


def tag_spread(values: DataFrame) -> DataFrame:
    """``tag, posts, share, spread, categories`` for every tag of the clustered posts.

    ``values`` has one row per (post, tag) with the post's ``category`` (null or
    :data:`MIXED_ID` for posts outside the categories, which are left out).
    """
    placed = values.filter(F.col(CATEGORY_COL).isNotNull() & (F.col(CATEGORY_COL) != MIXED_ID))
    sizes = placed.groupBy(CATEGORY_COL).agg(F.countDistinct("_pos").alias("size"))
    total = sizes.agg(F.sum("size").alias("total"))
    corpus_entropy = sizes.crossJoin(total).agg(
        F.sum(-(F.col("size") / F.col("total")) * F.log(F.col("size") / F.col("total"))).alias(
            "h0"
        ),
        F.first("total").alias("total"),
    )
    per_category = placed.groupBy("tag", CATEGORY_COL).agg(F.count(F.lit(1)).alias("n"))
    per_tag = per_category.groupBy("tag").agg(
        F.sum("n").alias("posts"),
        F.count(F.lit(1)).alias("categories"),
        F.collect_list("n").alias("ns"),
    )
    entropy = F.aggregate(
        "ns",
        F.lit(0.0),
        lambda acc, n: acc - (n / F.col("posts")) * F.log(n / F.col("posts")),
    )
    return per_tag.crossJoin(F.broadcast(corpus_entropy)).select(
        "tag",
        "posts",
        (F.col("posts") / F.col("total")).alias("share"),
        F.exp(entropy - F.col("h0")).alias("spread"),
        "categories",
    )


def generic_tags(spread: DataFrame, cfg: GenericConfig) -> list[dict]:
    """The generic tags, most frequent first: detected ones (when ``cfg.detect``) and the
    user's ``cfg.tags``, each ``{"tag", "posts", "share", "spread", "source"}``.
    The detected list is small (every tag in it is in ``min_share`` of the posts)."""
    found: dict[str, dict] = {}
    if cfg.detect:
        rows = spread.filter(
            (F.col("share") >= cfg.min_share)
            & (F.col("spread") >= cfg.min_spread)
            & (F.col("categories") >= MIN_CATEGORIES)
        ).collect()
        for r in rows:
            found[r["tag"]] = _entry(r, "detected")
    listed = listed_tags(cfg)
    if listed:
        for r in spread.filter(F.col("tag").isin(listed)).collect():
            found[r["tag"]] = _entry(r, "listed")
        for tag in listed:
            found.setdefault(
                tag, {"tag": tag, "posts": 0, "share": 0.0, "spread": 0.0, "source": "listed"}
            )
    return sorted(found.values(), key=lambda g: (-g["posts"], g["tag"]))


def listed_tags(cfg: GenericConfig) -> list[str]:
    """The user's ``generic.tags``, normalised as tags are (no ``#``, lower case)."""
    return [t.strip().lstrip("#").lower() for t in cfg.tags if t.strip().lstrip("#")]


def _entry(row, source: str) -> dict:
    return {
        "tag": row["tag"],
        "posts": int(row["posts"]),
        "share": round(float(row["share"]), 6),
        "spread": round(float(row["spread"]), 4),
        "source": source,
    }


def with_mixed(predictions: DataFrame, values: DataFrame, generic: list[str]) -> DataFrame:
    """``predictions`` with ``category`` set to :data:`MIXED_ID` for every post that has no
    tag that is both learnable (``x > 0``) and not generic, or no category at all."""
    specific = (
        values.filter((F.col("x") > 0) & ~F.col("tag").isin(generic))
        .select("_pos")
        .distinct()
        .withColumn("_specific", F.lit(True))
    )
    keep = F.col("_specific") & F.col(CATEGORY_COL).isNotNull()
    return (
        predictions.join(specific, "_pos", "left")
        .withColumn(CATEGORY_COL, F.when(keep, F.col(CATEGORY_COL)).otherwise(F.lit(MIXED_ID)))
        .drop("_specific")
    )
