"""The clustering job: read -> normalise -> features + k-means -> name -> write.

``run`` takes a live SparkSession and a validated config; it never reads config files or
environment variables and never creates a session.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import tagspark
from tagspark import categories as cat
from tagspark import evaluate, write
from tagspark.config import Config
from tagspark.errors import EmptyCorpusError
from tagspark.model import (
    CATEGORY_COL,
    build_pipeline,
    check_k,
    count_distinct_tag_sets,
    kmeans_stage,
)
from tagspark.posts import (
    count_records,
    count_rejected_by_reason,
    filter_kept_posts,
    filter_rejected,
    with_post_ids,
    with_post_tags,
)
from tagspark.read import InputSpec, read_records, with_record_numbers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    output: Path
    categories: list[cat.Category]
    metadata: dict[str, Any]


class StageTimer:
    """Times named stages and logs one line per stage as it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        log.info("stage %s: started", stage)
        start = time.perf_counter()
        yield
        self.seconds[stage] = round(time.perf_counter() - start, 3)
        log.info(
            "stage %s: done in %.1f s (%.1f s since start)",
            stage,
            self.seconds[stage],
            time.perf_counter() - self._start,
        )

    def total(self) -> float:
        return round(time.perf_counter() - self._start, 3)


def run(spark: SparkSession, cfg: Config, inputs: InputSpec, output: Path) -> RunResult:
    """Run the whole job and publish its output folder.

    Parameters
    ----------
    spark : SparkSession
    cfg : Config
        Validated configuration.
    inputs : InputSpec
        From :func:`tagspark.read.resolve_inputs`.
    output : Path
        From :func:`tagspark.write.check_output`; written via a staging sibling and
        renamed into place only when everything succeeded.

    Raises
    ------
    EmptyCorpusError, ParameterError, InputError
    """
    timer = StageTimer()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for stale in write.sweep_stale_staging(output):
        log.info("removed %s, left by a run that was killed", stale)
    staging = write.staging_path(output)
    cached: list[DataFrame] = []

    def cache(df: DataFrame) -> DataFrame:
        cached.append(df.cache())
        return df

    try:
        with timer("read"):
            records = cache(
                read_records(spark, inputs, cfg.input).transform(
                    with_post_tags, cfg.tags.max_tags_per_post
                )
            )
            partitions = records.rdd.getNumPartitions()
            counts = count_records(records, cfg.tags.max_tags_per_post)
            by_reason = count_rejected_by_reason(records)
            numbered = with_post_ids(with_record_numbers(records))
            log.info(
                "read %(read)d records: %(kept)d posts kept, %(no_tags)d without tags, "
                "%(rejected)d rejected, %(truncated)d over the tag cap",
                counts,
            )
            log.info("input: %d file(s) read in %d partition(s)", len(inputs.paths), partitions)
        if counts["kept"] == 0:
            raise EmptyCorpusError(_empty_message(counts, by_reason))
        posts = filter_kept_posts(numbered).select("_pos", "id", "tags", "label")

        with timer("fit"):
            counts["distinct_tag_sets"] = count_distinct_tag_sets(posts)
            check_k(cfg.kmeans.k, counts["distinct_tag_sets"])
            model = build_pipeline(cfg.features, cfg.kmeans).fit(posts)
            summary = kmeans_stage(model).summary
            log.info("k-means: %d iterations, cost %.4f", summary.numIter, summary.trainingCost)

        with timer("name"):
            predictions = cache(
                model.transform(posts).select("_pos", "id", "tags", "label", CATEGORY_COL)
            )
            sizes = cache(predictions.groupBy(CATEGORY_COL).agg(F.count(F.lit(1)).alias("size")))
            idf = cat.tag_idf(posts, counts["kept"], cfg.features.min_doc_freq)
            values = cache(cat.explode_tag_values(predictions, idf))
            weights = cache(cat.category_tag_weights(values, sizes))
            top = cat.top_tags(weights, cfg.naming.tags_per_category)
            categories = cat.collect_categories(top, sizes, cfg.naming.name_tags)
            empty = cfg.kmeans.k - len(categories)
            if empty:
                log.warning(
                    "%d of k=%d categories ended empty and are left out", empty, cfg.kmeans.k
                )

        scored = None
        if cfg.input.label_field:
            with timer("evaluate"):
                scored = evaluate.evaluation(evaluate.contingency(predictions), categories)
                if scored["posts"] == 0:
                    log.warning("no post has the label field '%s'", cfg.input.label_field)
                log.info(
                    "against '%s' (%d labelled posts): %s",
                    cfg.input.label_field,
                    scored["posts"],
                    evaluate.describe(scored),
                )

        with timer("write"):
            staging.mkdir()
            if scored is not None:
                write.write_json(scored, staging / "evaluation.json")
            rows_per_file = cfg.output.assignment_rows_per_file
            assignments = predictions.join(
                cat.post_distances(values, weights, cfg.kmeans.distance_measure), "_pos"
            ).select("id", F.col(CATEGORY_COL).alias("category_id"), "distance")
            write.write_rows(
                assignments, staging / "assignments", "parquet", counts["kept"], rows_per_file
            )
            write.write_rows(
                filter_rejected(numbered),
                staging / "rejected",
                "json",
                counts["rejected"],
                rows_per_file,
            )
            write.write_categories(spark, categories, staging)
            model.write().save((staging / "model").as_uri())

        metadata = {
            "tagspark_version": tagspark.__version__,
            "versions": {
                "spark": spark.version,
                "pyspark": pyspark.__version__,
                "python": platform.python_version(),
                "numpy": numpy.__version__,
            },
            "started_at": started,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "master": spark.sparkContext.master,
            "input": {
                "paths": list(inputs.paths),
                "format": inputs.format,
                "files": len(inputs.paths),
                "partitions": partitions,
            },
            "config": cfg.to_dict(),
            "seed": cfg.kmeans.seed,
            "counts": counts,
            "rejected_by_reason": by_reason,
            "categories": len(categories),
            "empty_categories": empty,
            "kmeans": {"cost": summary.trainingCost, "iterations": summary.numIter},
            "evaluation": None
            if scored is None
            else {k: v for k, v in scored.items() if k != "categories"},
            "timings_seconds": {**timer.seconds, "total": timer.total()},
        }
        write.write_json(metadata, staging / "model" / "metadata.json")
        (staging / "summary.md").write_text(
            write.summary_markdown(categories, metadata), encoding="utf-8"
        )
        write.publish(staging, output)
        log.info("wrote %d categories to %s in %.1f s", len(categories), output, timer.total())
        return RunResult(output, categories, metadata)
    except BaseException:
        write.discard(staging)
        raise
    finally:
        for df in cached:
            df.unpersist()


def _empty_message(counts: dict[str, int], by_reason: dict[str, int]) -> str:
    if counts["read"] == 0:
        return "the input holds no records"
    parts = [f"{counts['read']} records read"]
    if counts["no_tags"]:
        parts.append(f"{counts['no_tags']} without tags")
    if counts["rejected"]:
        reasons = "; ".join(f"{r}: {n}" for r, n in by_reason.items())
        parts.append(f"{counts['rejected']} rejected ({reasons})")
    return "no post with tags in the input: " + ", ".join(parts)
