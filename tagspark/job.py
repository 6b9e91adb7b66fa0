"""The clustering job: read -> normalise -> features + k-means -> name -> write.

``run`` takes a live SparkSession and a validated config; it never reads config files or
environment variables and never creates a session.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
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
from tagspark import choose_k, evaluate, failures, write
from tagspark.clustering import GROUP_COL
from tagspark.config import Config
from tagspark.errors import EmptyCorpusError
from tagspark.estimator import categorised, fit_categories, load_model, suggested, transform
from tagspark.naming import MIXED_NAME
from tagspark.posts import (
    count_partitions,
    count_records,
    count_rejected_by_reason,
    filter_kept_posts,
    filter_rejected,
    summarise_records,
    with_post_ids,
    with_post_tags,
)
from tagspark.read import InputSpec, read_records, with_record_numbers
from tagspark.report import report_html
from tagspark.session import jvm_crash, master_of
from tagspark.stages import CacheScope, StageTimer
from tagspark.storage import join, storage_for
from tagspark.suggest import popularity_note, rated_with

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunResult:
    output: str
    categories: list[cat.Category]
    metadata: dict[str, Any]


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
    with _publishing(spark, cfg, output) as (storage, staging, cache, timer):
        with timer("read"):
            _, numbered, counts, by_reason, partitions = _read(spark, cfg, inputs, cache)
        posts = filter_kept_posts(numbered).select("_pos", "id", "tags", "label")

        chosen = None
        if cfg.kmeans.auto_k:
            with timer("choose_k"):
                chosen = choose_k.sweep(posts, counts["kept"], cfg, cache)
                log.info("choose k: chose k=%d of %s", chosen["chosen_k"], cfg.kmeans.k_range)
                cfg = dataclasses.replace(
                    cfg, kmeans=dataclasses.replace(cfg.kmeans, k=chosen["chosen_k"])
                )

        fitted = fit_categories(posts, counts["kept"], cfg, cache, timer)
        counts.update(fitted.counts)
        categories = fitted.model.categories
        kmeans_col = GROUP_COL if fitted.pipeline is not None else None
        predictions = categorised(fitted.posts, fitted.model, kmeans_col)
        if cfg.input.label_field:  # read twice: scored, then written
            predictions = cache(predictions)

        scored = None
        if cfg.input.label_field:
            with timer("evaluate"):
                scored = _evaluation(predictions, categories, cfg.input.label_field)

        with timer("write"):
            if chosen is not None:
                choose_k.write_curve(chosen, storage, staging.uri)
            if scored is not None:
                write.write_json(storage, scored, staging.path("evaluation.json"))
            _write_rows(
                predictions.select("id", "category_id", "distance"),
                "assignments",
                numbered,
                counts,
                cfg,
                staging,
            )
            write.write_categories(storage, categories, staging.uri)
            write.write_model(storage, fitted, staging.path("model"))

        metadata = {
            **_about(spark, cfg, inputs, partitions, timer),
            "seed": cfg.kmeans.seed,
            "counts": counts,
            "rejected_by_reason": by_reason,
            "categories": len(categories),
            "empty_categories": fitted.empty,
            "features": fitted.fit.info,
            "generic_tags": fitted.generic,
            "popularity": fitted.model.stats.source,
            "choose_k": chosen,
            "kmeans": {"cost": fitted.fit.cost, "iterations": fitted.fit.iterations},
            "evaluation": None
            if scored is None
            else {k: v for k, v in scored.items() if k != "categories"},
            "timings_seconds": {**timer.seconds, "total": timer.total()},
        }
        write.write_json(storage, metadata, staging.path("model", "metadata.json"))
        storage.write_text(staging.path("summary.md"), write.summary_markdown(categories, metadata))
        page = report_html(categories, metadata, fitted.model)
        storage.write_text(staging.path("report.html"), page)
    log.info(
        "wrote %d categories to %s in %.1f s", len(categories), write.display(output), timer.total()
    )
    return RunResult(output, categories, metadata)


def run_assign(
    spark: SparkSession, cfg: Config, inputs: InputSpec, model_dir: str, output: str
) -> dict[str, Any]:
    """``tagspark assign``: place the posts of ``inputs`` with the saved model in
    ``model_dir`` (no refit) and publish ``assignments/``, ``rejected/`` and
    ``assign.json`` (posts per category, the share of tags the model does not know) in
    ``output``. Returns what ``assign.json`` holds."""
    with _publishing(spark, cfg, output) as (storage, staging, cache, timer):
        with timer("load"):
            model, pipeline = load_model(spark, model_dir)
        cfg = _with_model_tags(cfg, model)
        with timer("read"):
            _, numbered, counts, by_reason, partitions = _read(spark, cfg, inputs, cache)
        posts = filter_kept_posts(numbered).select("_pos", "id", "tags")
        with timer("assign"):
            placed = cache(transform(posts, model, pipeline, keep_idx=True))
            per_category, drift = _placed_counts(placed, model)
        with timer("write"):
            _write_rows(
                placed.select("id", "category_id", "distance"),
                "assignments",
                numbered,
                counts,
                cfg,
                staging,
            )
            result = {
                **_about(spark, cfg, inputs, partitions, timer),
                "model": model_dir,
                "counts": counts,
                "rejected_by_reason": by_reason,
                "categories": per_category,
                "unknown_tags": drift,
                "timings_seconds": {**timer.seconds, "total": timer.total()},
            }
            write.write_json(storage, result, staging.path("assign.json"))
    return result


def run_suggest(
    spark: SparkSession,
    cfg: Config,
    inputs: InputSpec,
    model_dir: str,
    output: str,
    n: int,
    popularity_file: str | None = None,
    prefer_in_band: bool = False,
    recommended_only: bool = False,
) -> dict[str, Any]:
    """``tagspark suggest --input``: suggestions for every post of ``inputs``
    (:func:`tagspark.suggest.ranked`), published as ``suggestions/`` (Parquet: id,
    category_id, category, suggestions, unknown_tags, message) with ``rejected/`` and
    ``suggest.json``."""
    with _publishing(spark, cfg, output) as (storage, staging, cache, timer):
        with timer("load"):
            model, _ = load_model(spark, model_dir)
            if popularity_file:
                model = rated_with(model, popularity_file)
        cfg = _with_model_tags(cfg, model)
        with timer("read"):
            _, numbered, counts, by_reason, partitions = _read(spark, cfg, inputs, cache)
        posts = filter_kept_posts(numbered).select("id", "tags")
        with timer("write"):
            rows = suggested(posts, model, n, prefer_in_band, recommended_only)
            # ten nested suggestions a post: written where they are ranked, not gathered
            _write_rows(rows, "suggestions", numbered, counts, cfg, staging, shuffle=False)
            result = {
                **_about(spark, cfg, inputs, partitions, timer),
                "model": model_dir,
                "popularity": model.settings.get("popularity_source"),
                "popularity_note": popularity_note(model),
                "counts": counts,
                "rejected_by_reason": by_reason,
                "timings_seconds": {**timer.seconds, "total": timer.total()},
            }
            write.write_json(storage, result, staging.path("suggest.json"))
    return result


def _about(spark: SparkSession, cfg: Config, inputs: InputSpec, partitions: int, timer) -> dict:
    """What every output's JSON says of its run: versions, times, master, input, config."""
    return {
        "tagspark_version": tagspark.__version__,
        "versions": {
            "spark": spark.version,
            "pyspark": pyspark.__version__,
            "python": platform.python_version(),
            "numpy": numpy.__version__,
        },
        "started_at": timer.started,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "master": master_of(spark),
        "input": {
            "paths": list(inputs.paths),
            "format": inputs.format,
            "files": len(inputs.paths),
            "partitions": partitions,
        },
        "config": cfg.to_dict(),
    }


# tag occurrences of the new posts the model does not know, above which assign warns (drift)
DRIFT_WARNING_SHARE = 0.3


def _placed_counts(placed: DataFrame, model) -> tuple[list[dict], dict[str, Any]]:
    """Posts per category (largest first, with names) and the unknown tags' share."""
    rows = (
        placed.groupBy("category_id")
        .agg(
            F.count(F.lit(1)).alias("posts"),
            F.sum(F.size("tags")).alias("tags"),
            F.sum(F.octet_length("idx") / 4).alias("known"),
        )
        .collect()  # k rows
    )
    names = {c.id: c.name for c in model.categories}
    per_category = sorted(
        (
            {"id": r.category_id, "name": names.get(r.category_id, MIXED_NAME), "posts": r.posts}
            for r in rows
        ),
        key=lambda c: (-c["posts"], c["id"]),
    )
    tags = sum(r.tags or 0 for r in rows)
    known = sum(r.known or 0 for r in rows)
    share = 1 - known / tags if tags else 0.0
    drift = {"tags": int(tags), "unknown": int(tags - known), "share": round(share, 4)}
    if share > DRIFT_WARNING_SHARE:
        log.warning(
            "%.0f%% of the new posts' tags are unknown to the model (trained on other posts): "
            "their categories rest on the few known tags; consider fitting a new model",
            100 * share,
        )
    return per_category, drift


def _with_model_tags(cfg: Config, model) -> Config:
    """``cfg`` with the tag rules the model was fitted with."""
    max_tags = model.settings.get("tags", {}).get("max_tags_per_post", cfg.tags.max_tags_per_post)
    return dataclasses.replace(cfg, tags=dataclasses.replace(cfg.tags, max_tags_per_post=max_tags))


def _write_rows(
    rows: DataFrame,
    name: str,
    numbered: DataFrame,
    counts,
    cfg: Config,
    staging,
    shuffle: bool = True,
) -> None:
    """``rows`` (one a kept post) as Parquet in ``name/`` (see :func:`write.write_rows` for
    ``shuffle``), and the rejected records as JSON Lines in ``rejected/``."""
    per_file = cfg.output.assignment_rows_per_file
    write.write_rows(rows, staging.path(name), "parquet", counts["kept"], per_file, shuffle)
    write.write_rows(
        filter_rejected(numbered), staging.path("rejected"), "json", counts["rejected"], per_file
    )


def _evaluation(predictions: DataFrame, categories, label_field: str) -> dict[str, Any]:
    scored = evaluate.evaluation(evaluate.contingency(predictions), categories)
    if scored["posts"] == 0:
        log.warning("no post has the label field '%s'", label_field)
    log.info(
        "against '%s' (%d labelled posts): %s",
        label_field,
        scored["posts"],
        evaluate.describe(scored),
    )
    return scored


@contextmanager
def _publishing(spark: SparkSession, cfg: Config, output: str) -> Iterator[tuple]:
    """``(storage, staging, cache, timer)`` for a job that publishes ``output``: published
    when the block ends, discarded (and a failure of the environment told in one sentence,
    :mod:`tagspark.failures`) when it raises; cached tables released either way."""
    timer = StageTimer()
    storage = storage_for(spark)
    write.check_output_uri(storage, output, cfg.output.overwrite)
    staging = write.Staging(storage, output, cfg.output.staging_lease_seconds).start()
    cache = CacheScope()
    try:
        yield storage, staging, cache, timer
        with timer("publish"):
            staging.publish(cfg.output.overwrite)
    except BaseException as exc:
        staging.discard()
        failure = failures.explain(exc, timer.current, jvm_crash)
        if failure is not None:
            raise failure from exc
        raise
    finally:
        cache.release()


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
    partitions = count_partitions(summary)
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
        storage = storage_for(spark)
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
