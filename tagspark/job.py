"""The clustering job: read -> normalise -> features + k-means -> name -> write.

``run`` takes a live SparkSession and a validated config; it never reads config files or
environment variables and never creates a session.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy
import pyspark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import tagspark
from tagspark import categories as cat
from tagspark import choose_k, evaluate, failures, generic, write
from tagspark.clustering import CATEGORY_COL, GROUP_KEYS, fit
from tagspark.config import Config
from tagspark.errors import EmptyCorpusError
from tagspark.posts import (
    count_records,
    count_rejected_by_reason,
    filter_kept_posts,
    filter_rejected,
    summarise_records,
    with_post_ids,
    with_post_tags,
)
from tagspark.read import InputSpec, read_records, with_record_numbers
from tagspark.storage import Storage, join
from tagspark.vocabulary import tag_sets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    output: str
    categories: list[cat.Category]
    metadata: dict[str, Any]


class CacheScope:
    """Caches DataFrames (call it on one) and unpersists them all on :meth:`release` or at
    the end of a ``with`` block."""

    def __init__(self) -> None:
        self._cached: list[DataFrame] = []

    def __call__(self, df: DataFrame) -> DataFrame:
        self._cached.append(df.cache())
        return df

    def release(self) -> None:
        for df in self._cached:
            try:
                df.unpersist()
            except Exception as exc:  # a JVM that died has nothing left to free
                log.debug("could not unpersist a cached table: %s", exc)
        self._cached.clear()

    def __enter__(self) -> CacheScope:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StageTimer:
    """Times named stages and logs one line per stage as it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None  # the stage running, or the last one that ran
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self.current = stage
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


def run(spark: SparkSession, cfg: Config, inputs: InputSpec, output: str) -> RunResult:
    """Run the whole job and publish its output folder.

    Parameters
    ----------
    spark : SparkSession
    cfg : Config
        Validated configuration.
    inputs : InputSpec
        From :func:`tagspark.read.resolve_inputs`.
    output : str
        A URI from :func:`tagspark.write.check_output`; written via a staging sibling and
        renamed into place only when everything succeeded.

    Raises
    ------
    EmptyCorpusError, ParameterError, InputError
    """
    timer = StageTimer()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    storage = Storage(spark)
    write.check_output_uri(storage, output, cfg.output.overwrite)
    staging = write.Staging(storage, output, cfg.output.staging_lease_seconds).start()
    cache = CacheScope()
    try:
        with timer("read"):
            records, numbered, counts, by_reason, partitions = _read(spark, cfg, inputs, cache)
        posts = filter_kept_posts(numbered).select("_pos", "id", "tags", "label")

        chosen = None
        if cfg.kmeans.auto_k:
            with timer("choose_k"):
                chosen = choose_k.sweep(posts, counts["kept"], cfg, cache)
                log.info("choose k: chose k=%d of %s", chosen["chosen_k"], cfg.kmeans.k_range)
                cfg = dataclasses.replace(
                    cfg, kmeans=dataclasses.replace(cfg.kmeans, k=chosen["chosen_k"])
                )

        listed = generic.listed_tags(cfg.generic) if cfg.generic.exclude_from_features else []
        with timer("fit"):
            sets = tag_sets(posts, counts["kept"], cfg.features.min_doc_freq, cache)
            counts["distinct_tag_sets"] = sets.count
            fitted = fit(posts, sets, cfg.features, cfg.kmeans, listed, cache)
            groups = cache(fitted.groups)
            log.info("features: %s", fitted.info)
            log.info("k-means: %d iterations, cost %.4f", fitted.iterations, fitted.cost)

        with timer("name"):
            groups, cells = _place_by_tags(groups, sets.vocabulary.idf, counts, cache)
            generic_list = generic.generic_tags(
                generic.tag_spread(cells), cfg.generic, sets.vocabulary
            )
            generic_names = [g["tag"] for g in generic_list]
            if generic_names:
                log.info("generic tags (%d): %s", len(generic_names), ", ".join(generic_names[:20]))
            detected = sorted(set(generic_names) - set(listed))
            if cfg.generic.exclude_from_features and detected:
                log.info("fitting again without the %d detected generic tags", len(detected))
                fitted = fit(posts, sets, cfg.features, cfg.kmeans, listed + detected, cache)
                groups, _ = _place_by_tags(cache(fitted.groups), sets.vocabulary.idf, counts, cache)
            generic_idx = sets.vocabulary.indices(generic_names)
            final = cache(generic.with_mixed(groups, generic_idx)) if generic_idx else groups
            if final is not groups:
                # sets may have moved to mixed (or been fitted again): add up the tags again
                cells = cat.category_cells(final, sets.vocabulary.idf)
            sizes = dict(cells.sizes)
            # posts with no vocabulary tag have no tag set: they are mixed too
            no_tag_posts = counts["kept"] - sum(sizes.values())
            if no_tag_posts:
                sizes[cat.MIXED_ID] = sizes.get(cat.MIXED_ID, 0) + no_tag_posts
            weights = cat.tag_weights(cells, sizes)
            ranked = cat.top_tags(
                cells, weights, sets.vocabulary.tags, cfg.naming.tags_per_category, generic_idx
            )
            categories = cat.ranked_categories(ranked, sizes, cfg.naming.name_tags)
            counts["mixed"] = sizes.get(cat.MIXED_ID, 0)
            log.info("mixed bucket: %d posts with no category-specific tag", counts["mixed"])
            empty = cfg.kmeans.k - sum(c.id != cat.MIXED_ID for c in categories)
            if empty:
                log.warning(
                    "%d of k=%d categories ended empty and are left out", empty, cfg.kmeans.k
                )
            measure = cfg.kmeans.distance_measure
            no_tag_distance = cat.empty_distance(cells, weights, measure)
            predictions = fitted.posts.join(
                cat.group_distances(final, cells, weights, sets.vocabulary.idf, measure),
                GROUP_KEYS,
                "left",
            ).select(
                "_pos",
                "id",
                "label",
                F.coalesce(CATEGORY_COL, F.lit(cat.MIXED_ID)).alias(CATEGORY_COL),
                F.coalesce("distance", F.lit(no_tag_distance)).alias("distance"),
            )
            if cfg.input.label_field:  # read twice: scored, then written
                predictions = cache(predictions)

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
            if chosen is not None:
                choose_k.write_curve(chosen, storage, staging.uri)
            if scored is not None:
                write.write_json(storage, scored, staging.path("evaluation.json"))
            rows_per_file = cfg.output.assignment_rows_per_file
            assignments = predictions.select(
                "id", F.col(CATEGORY_COL).alias("category_id"), "distance"
            )
            write.write_rows(
                assignments, staging.path("assignments"), "parquet", counts["kept"], rows_per_file
            )
            write.write_rows(
                filter_rejected(numbered),
                staging.path("rejected"),
                "json",
                counts["rejected"],
                rows_per_file,
            )
            write.write_categories(spark, storage, categories, staging.uri)
            fitted.model.write().save(staging.path("model"))

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
            "features": fitted.info,
            "generic_tags": generic_list,
            "choose_k": chosen,
            "kmeans": {"cost": fitted.cost, "iterations": fitted.iterations},
            "evaluation": None
            if scored is None
            else {k: v for k, v in scored.items() if k != "categories"},
            "timings_seconds": {**timer.seconds, "total": timer.total()},
        }
        write.write_json(storage, metadata, staging.path("model", "metadata.json"))
        storage.write_text(staging.path("summary.md"), write.summary_markdown(categories, metadata))
        with timer("publish"):
            staging.publish(cfg.output.overwrite)
        log.info(
            "wrote %d categories to %s in %.1f s",
            len(categories),
            write.display(output),
            timer.total(),
        )
        return RunResult(output, categories, metadata)
    except BaseException as exc:
        staging.discard()
        failure = failures.explain(exc, timer.current)
        if failure is not None:
            raise failure from exc
        raise
    finally:
        cache.release()


def _place_by_tags(
    groups: DataFrame, idf, counts: dict[str, int], cache: CacheScope
) -> tuple[DataFrame, cat.Cells]:
    """``groups`` and their cells, with the sets the embedding could not place (no feature
    tag) given the category whose centre weighs their tags most
    (:func:`tagspark.categories.with_sets_placed_by_tags`); ``counts["placed_by_tags"]``
    says how many posts that moved."""
    cells = cat.category_cells(groups, idf)
    unplaced = cells.sizes.get(cat.MIXED_ID, 0)
    counts["placed_by_tags"] = 0
    if not unplaced:
        return groups, cells
    weights = cat.tag_weights(cells, cells.sizes)
    groups = cache(cat.with_sets_placed_by_tags(groups, cells, weights, idf))
    cells = cat.category_cells(groups, idf)
    counts["placed_by_tags"] = unplaced - cells.sizes.get(cat.MIXED_ID, 0)
    log.info(
        "%d posts with no feature tag placed by their rarer tags, %d left for mixed",
        counts["placed_by_tags"],
        unplaced - counts["placed_by_tags"],
    )
    return groups, cells


def _read(spark: SparkSession, cfg: Config, inputs: InputSpec, cache: CacheScope):
    """The read stage: records (cached), numbered records, counts, rejections by reason and
    the number of input partitions.

    Raises
    ------
    EmptyCorpusError
        No record has a tag.
    """
    records = cache(
        read_records(spark, inputs, cfg.input).transform(with_post_tags, cfg.tags.max_tags_per_post)
    )
    summary = summarise_records(records, cfg.tags.max_tags_per_post)
    # asked after the first job: before it, Spark plans the whole read once more (2 s)
    partitions = records.rdd.getNumPartitions()
    counts = count_records(summary)
    by_reason = count_rejected_by_reason(summary)
    numbered = with_post_ids(with_record_numbers(records, summary))
    log.info(
        "read %(read)d records: %(kept)d posts kept, %(no_tags)d without tags, "
        "%(rejected)d rejected, %(truncated)d over the tag cap",
        counts,
    )
    log.info("input: %d file(s) read in %d partition(s)", len(inputs.paths), partitions)
    if counts["kept"] == 0:
        raise EmptyCorpusError(_empty_message(counts, by_reason))
    return records, numbered, counts, by_reason, partitions


def run_choose_k(spark: SparkSession, cfg: Config, inputs: InputSpec, output: str) -> dict:
    """``tagspark choose-k``: read, sweep k on a sample, write ``choose_k.csv``,
    ``choose_k.json`` and ``choose_k.png`` into ``output`` (created)."""
    timer = StageTimer()
    with CacheScope() as cache:
        with timer("read"):
            _, numbered, counts, _, _ = _read(spark, cfg, inputs, cache)
        posts = filter_kept_posts(numbered).select("_pos", "tags")
        with timer("choose_k"):
            result = choose_k.sweep(posts, counts["kept"], cfg, cache)
        storage = Storage(spark)
        storage.mkdirs(output)
        choose_k.write_curve(result, storage, output)
        write.write_json(
            storage,
            {**result, "timings_seconds": timer.seconds},
            join(output, "choose_k.json"),
        )
        return result


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
