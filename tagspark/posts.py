"""Turning records into posts: one normalised tag set per record, ids, and the split into
kept posts, posts without tags, and rejected records."""

from __future__ import annotations

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from tagspark.tags import cap_tags, extract_hashtags, normalise_tags, parse_tag_text


def with_post_tags(records: DataFrame, max_tags: int) -> DataFrame:
    """Replace the raw tag columns with ``tags`` (normalised, capped at ``max_tags``) and
    ``n_tags`` (how many the post had before the cap).

    The ``tags`` list wins; else a ``tag_text`` string is parsed; else hashtags are
    extracted from the ``caption``.

    Examples
    --------
    A record with ``tags = ["#Food", "food", " Italy "]`` gets ``tags = ["food", "italy"]``
    and ``n_tags = 2``.
    """
    raw = F.coalesce(
        F.col("tags"), parse_tag_text(F.col("tag_text")), extract_hashtags(F.col("caption"))
    )
    all_tags = F.coalesce(normalise_tags(raw), F.array().cast("array<string>"))
    return (
        records.withColumn("_all", all_tags)
        .withColumn("n_tags", F.size("_all"))
        .withColumn("tags", cap_tags(F.col("_all"), max_tags))
        .drop("_all", "tag_text", "caption")
    )


def with_post_ids(records: DataFrame) -> DataFrame:
    """Give every record an id: its own, or ``<source>:<record>`` when it has none."""
    generated = F.concat_ws(":", "source", F.col("record").cast("string"))
    return records.withColumn("id", F.coalesce(F.col("id"), generated))


def filter_kept_posts(records: DataFrame) -> DataFrame:
    """Posts to cluster: not rejected and with at least one tag."""
    return records.filter(F.col("reason").isNull() & (F.size("tags") > 0))


def filter_rejected(records: DataFrame) -> DataFrame:
    """Rejected records with where they came from and why: ``source, record, reason, raw``."""
    return records.filter(F.col("reason").isNotNull()).select("source", "record", "reason", "raw")


def summarise_records(records: DataFrame, max_tags: int) -> list[Row]:
    """One pass over the records: per file split and rejection reason, the rows (``n``),
    the partitions they were read in, the first ``_pos``, and how many have no tags, are
    kept, or are over the tag cap. A
    small table (splits x reasons), for :func:`count_records`,
    :func:`count_rejected_by_reason` and :func:`tagspark.read.with_record_numbers`."""
    ok = F.col("reason").isNull()
    return (
        records.withColumn("_part", F.spark_partition_id())
        .groupBy("_file", "_block", "reason")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.collect_set("_part").alias("partitions"),
            F.min("_pos").alias("_first"),
            F.count(F.when(ok & (F.size("tags") == 0), 1)).alias("no_tags"),
            F.count(F.when(ok & (F.size("tags") > 0), 1)).alias("kept"),
            F.count(F.when(ok & (F.col("n_tags") > max_tags), 1)).alias("truncated"),
        )
        .collect()
    )


def count_records(summary: list[Row]) -> dict[str, int]:
    """Counts of :func:`summarise_records`: read, rejected, without tags, kept, truncated."""
    return {
        "read": sum(r["n"] for r in summary),
        "rejected": sum(r["n"] for r in summary if r["reason"] is not None),
        "no_tags": sum(r["no_tags"] for r in summary),
        "kept": sum(r["kept"] for r in summary),
        "truncated": sum(r["truncated"] for r in summary),
    }


def count_partitions(summary: list[Row]) -> int:
    """How many partitions the records were read in, from :func:`summarise_records`."""
    return len({p for r in summary for p in r["partitions"]})


def count_rejected_by_reason(summary: list[Row]) -> dict[str, int]:
    """``{reason: count}`` of the rejected records, from :func:`summarise_records`."""
    by_reason: dict[str, int] = {}
    for r in summary:
        if r["reason"] is not None:
            by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + r["n"]
    return dict(sorted(by_reason.items()))
