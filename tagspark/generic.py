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

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.config import GenericConfig
from tagspark.features import CATEGORY_COL, MIXED_ID, Vocabulary, unpack_sets

MIN_CATEGORIES = 3


def tag_spread(cells: DataFrame, sizes: dict[int, int]) -> DataFrame:
    """``idx, posts, share, spread, categories`` for every vocabulary tag of the clustered
    posts, from :func:`tagspark.categories.category_cells` and the category ``sizes``
    (:data:`MIXED_ID` is left out of both)."""
    placed = {c: n for c, n in sizes.items() if c != MIXED_ID}
    total = sum(placed.values())
    corpus_entropy = -sum(n / total * np.log(n / total) for n in placed.values() if n)
    per_tag = (
        cells.filter(F.col(CATEGORY_COL) != MIXED_ID)
        .groupBy("idx")
        .agg(
            F.sum("posts").alias("posts"),
            F.count(F.lit(1)).alias("categories"),
            F.collect_list("posts").alias("ns"),
        )
    )
    entropy = F.aggregate(
        "ns",
        F.lit(0.0),
        lambda acc, n: acc - (n / F.col("posts")) * F.log(n / F.col("posts")),
    )
    return per_tag.select(
        "idx",
        "posts",
        (F.col("posts") / F.lit(float(max(total, 1)))).alias("share"),
        F.exp(entropy - F.lit(corpus_entropy)).alias("spread"),
        "categories",
    )


def generic_tags(spread: DataFrame, cfg: GenericConfig, vocabulary: Vocabulary) -> list[dict]:
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
            found[vocabulary.tags[r["idx"]]] = _entry(r, vocabulary, "detected")
    listed = listed_tags(cfg)
    if listed:
        for r in spread.filter(F.col("idx").isin(vocabulary.indices(listed))).collect():
            found[vocabulary.tags[r["idx"]]] = _entry(r, vocabulary, "listed")
        for tag in listed:
            found.setdefault(
                tag, {"tag": tag, "posts": 0, "share": 0.0, "spread": 0.0, "source": "listed"}
            )
    return sorted(found.values(), key=lambda g: (-g["posts"], g["tag"]))


def listed_tags(cfg: GenericConfig) -> list[str]:
    """The user's ``generic.tags``, normalised as tags are (no ``#``, lower case)."""
    return [t.strip().lstrip("#").lower() for t in cfg.tags if t.strip().lstrip("#")]


def _entry(row, vocabulary: Vocabulary, source: str) -> dict:
    return {
        "tag": vocabulary.tags[row["idx"]],
        "posts": int(row["posts"]),
        "share": round(float(row["share"]), 6),
        "spread": round(float(row["spread"]), 4),
        "source": source,
    }


def with_mixed(groups: DataFrame, generic: list[int]) -> DataFrame:
    """``groups`` with ``category`` set to :data:`MIXED_ID` for every tag set with no
    vocabulary tag outside ``generic`` (indices). A narrow map over Arrow batches."""
    if not generic:
        return groups
    shared = groups.sparkSession.sparkContext.broadcast(np.asarray(generic, dtype=np.int64))
    position = groups.columns.index(CATEGORY_COL)

    def move(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            idx, rows = unpack_sets(batch.column("idx"))
            specific = np.bincount(rows, ~np.isin(idx, shared.value), minlength=batch.num_rows)
            category = batch.column(CATEGORY_COL).to_numpy(zero_copy_only=False)
            moved = pa.array(np.where(specific > 0, category, MIXED_ID).astype(np.int32))
            yield batch.set_column(position, CATEGORY_COL, moved)

    return groups.mapInArrow(move, groups.schema)
