"""k-means over the posts' features, for each ``features.method``.

``spectral`` (the default) clusters a low-dimensional embedding of the posts instead of their
raw TF-IDF vectors, which on short tag sets collapse into one junk cluster:

1-2. The vocabulary and the distinct tag sets (:mod:`tagspark.vocabulary`).
3-4. The embedding of every tag set (:mod:`tagspark.embedding`, over the tags x tags matrix
   of :mod:`tagspark.matrix`).
5. MLlib KMeans on the embeddings, each row weighted by its number of posts, fitted on a
   seeded random sample of at most ``kmeans.fit_sets`` distinct tag sets (all of them when
   there are fewer); every set is then given its nearest centre.

``tfidf`` is the article's method unchanged: HashingTF -> IDF -> Normalizer -> KMeans over
every post.

Posts with no vocabulary tag (every tag rarer than ``min_doc_freq``) have no features;
:func:`fit` leaves them out and the job puts them in the ``mixed`` bucket.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import IDF, HashingTF, Normalizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.centres import MIXED_ID, embed_sets, nearest_centres
from tagspark.config import FeaturesConfig, KMeansConfig
from tagspark.embedding import Embedding, auto_dims, embed, min_component_share
from tagspark.errors import ParameterError
from tagspark.stages import Shipped, release_ml_objects
from tagspark.vocabulary import TagSets

log = logging.getLogger(__name__)

CATEGORY_COL = "category"
GROUP_COL = "group_id"
GROUP_KEYS = [GROUP_COL, "idx"]


@dataclass
class Fit:
    """A fitted clustering.

    ``groups`` has ``group_id, category, idx, weight``: one row per distinct tag set (and,
    for ``tfidf``, per category its posts went to), ``weight`` posts each, ``category``
    :data:`MIXED_ID` for sets with no feature left. ``posts`` is the tag sets' post table
    with ``group_id`` and ``idx`` (null and empty for posts without a vocabulary tag); the
    two columns :data:`GROUP_KEYS` join a post to its group exactly (``group_id`` alone is
    a hash, or for ``tfidf`` the k-means category). ``model`` is the PipelineModel
    (``tfidf``), or None (``spectral``/``svd``: the KMeansModel is released once its
    ``centres`` are read, see :func:`tagspark.stages.release_ml_objects`, and the
    ``embedding`` places sets); ``excluded`` are the tags left out of the features.
    """

    groups: DataFrame
    posts: DataFrame
    model: PipelineModel | None
    cost: float
    iterations: int
    info: dict[str, Any] = field(default_factory=dict)
    embedding: Embedding | None = None
    centres: np.ndarray | None = None
    excluded: tuple[str, ...] = ()


def kmeans_estimator(kmeans: KMeansConfig, features_col: str = "features") -> KMeans:
    return KMeans(
        featuresCol=features_col,
        predictionCol=CATEGORY_COL,
        k=kmeans.k,
        maxIter=kmeans.max_iter,
        tol=kmeans.tol,
        seed=kmeans.seed,
        initMode=kmeans.init_mode,
        initSteps=kmeans.init_steps,
        distanceMeasure=kmeans.distance_measure,
        solver=kmeans.solver,
    )


def build_tfidf_pipeline(
    features: FeaturesConfig, kmeans: KMeansConfig, tags_col: str = "tags"
) -> Pipeline:
    """The article's unfitted pipeline: binary HashingTF, IDF, L2 Normalizer, KMeans.

    Its model adds ``tf``, ``tfidf``, ``features`` and ``category`` columns.
    """
    tf = HashingTF(
        inputCol=tags_col, outputCol="tf", numFeatures=features.num_features, binary=True
    )
    idf = IDF(inputCol=tf.getOutputCol(), outputCol="tfidf", minDocFreq=features.min_doc_freq)
    norm = Normalizer(inputCol=idf.getOutputCol(), outputCol="features", p=2.0)
    return Pipeline(stages=[tf, idf, norm, kmeans_estimator(kmeans)])


def assigned_sets(
    sets: DataFrame, embedding: Embedding, centres: np.ndarray, distance_measure: str
) -> DataFrame:
    """``group_id, category, idx, weight``: every tag set with its nearest of ``centres``
    (the fitted model's), :data:`MIXED_ID` when it is not placed. Embedding and assignment
    in one narrow map, one numpy product each per batch: no vector column, no second pass.
    """
    shared = Shipped(
        (embedding.projection.astype(np.float64), embedding.idf, embedding.column, centres)
    )

    def assign(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        projection, idf, column, centres = shared.value
        for batch in batches:
            v, placed = embed_sets(batch.column("idx"), projection, idf, column)
            nearest = nearest_centres(v, centres, distance_measure)
            category = np.where(placed, nearest, MIXED_ID).astype(np.int32)
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("set_id"),
                    pa.array(category),
                    batch.column("idx"),
                    batch.column("weight"),
                ],
                [GROUP_COL, CATEGORY_COL, "idx", "weight"],
            )

    schema = f"{GROUP_COL} long, {CATEGORY_COL} int, idx binary, weight long"
    return sets.select("set_id", "idx", "weight").mapInArrow(assign, schema)


def fit_sample(rows: DataFrame, n_points: int, limit: int, seed: int) -> DataFrame:
    """``rows`` drawn at random with ``seed``, each with chance ``limit / n_points``: about
    ``limit`` of the ``n_points`` that count (all of them when there are no more, or when
    ``limit`` is 0)."""
    if limit == 0 or n_points <= limit:
        return rows
    return rows.sample(fraction=limit / n_points, seed=seed)


def fit(
    posts: DataFrame,
    sets: TagSets,
    features: FeaturesConfig,
    kmeans: KMeansConfig,
    excluded: list[str],
    cache,
) -> Fit:
    """Cluster ``posts`` (``_pos, tags``; their :func:`tag_sets` are ``sets``) with
    ``features.method``, leaving the ``excluded`` tags out of the features.

    Raises
    ------
    ParameterError
        Fewer than 2 tags left for the features, or k above the number of distinct tag sets.
    """
    if features.method == "tfidf":
        return _fit_tfidf(posts, sets, features, kmeans, excluded, cache)
    keep = sets.vocabulary.mask(excluded, features.max_tags)
    dims = features.dims or auto_dims(kmeans.k)
    embedding = embed(sets, features, dims, kmeans.seed, keep, min_component_share(kmeans.k))
    info = embedding.info
    every_set_placed = keep.all() and not info["tags_cut_off"]
    n_points = sets.count if every_set_placed else embedding.of(sets.sets).filter("placed").count()
    check_k(kmeans.k, n_points)
    # drawn before embedding, so only the sample is embedded twice; cached: k-means reads it
    # once per iteration, and its summary once more
    drawn = fit_sample(sets.sets, n_points, kmeans.fit_sets, kmeans.seed)
    sample = cache(embedding.of(drawn).filter("placed"))
    info["fit_sets"] = min(n_points, kmeans.fit_sets or n_points)
    log.info("k-means: k=%d on about %d of %d tag sets", kmeans.k, info["fit_sets"], n_points)
    model = kmeans_estimator(kmeans).setWeightCol("weight").fit(sample)
    centres = np.array(model.clusterCenters())
    summary = model.summary
    cost, iterations = summary.trainingCost, summary.numIter
    del model, summary
    release_ml_objects()
    groups = assigned_sets(sets.sets, embedding, centres, kmeans.distance_measure)
    return Fit(
        groups,
        sets.posts.withColumnRenamed("set_id", GROUP_COL),
        None,
        cost,
        iterations,
        info,
        embedding,
        centres,
        tuple(excluded),
    )


def _fit_tfidf(
    posts: DataFrame,
    sets: TagSets,
    features: FeaturesConfig,
    kmeans: KMeansConfig,
    excluded: list[str],
    cache,
) -> Fit:
    """The article's pipeline over every post. A group is a tag set and the category its
    posts went to (posts of one set can differ in tags outside the vocabulary)."""
    check_k(kmeans.k, sets.count)
    posts = without_tags(posts, excluded)
    model = build_tfidf_pipeline(features, kmeans).fit(posts)
    assigned = model.transform(posts).select("_pos", CATEGORY_COL)
    # a group is (k-means category, set): group_id is the category, and with idx the key
    with_category = cache(
        sets.posts.join(assigned, "_pos", "left").withColumn(
            GROUP_COL, F.when(F.col("set_id").isNotNull(), F.col(CATEGORY_COL).cast("long"))
        )
    )
    groups = (
        with_category.filter(F.col(GROUP_COL).isNotNull())
        .groupBy(GROUP_COL, "idx")
        .agg(F.count(F.lit(1)).alias("weight"))
        .select(GROUP_COL, F.col(GROUP_COL).cast("int").alias(CATEGORY_COL), "idx", "weight")
    )
    summary = model.stages[-1].summary
    info = {
        "method": "tfidf",
        "num_features": features.num_features,
        "distinct_tag_sets": sets.count,
    }
    return Fit(
        groups,
        with_category.drop(CATEGORY_COL, "set_id"),
        model,
        summary.trainingCost,
        summary.numIter,
        info,
        excluded=tuple(excluded),
    )


def without_tags(posts: DataFrame, tags: list[str]) -> DataFrame:
    """``posts`` with ``tags`` removed from every tag set (posts left empty stay, empty)."""
    if not tags:
        return posts
    return posts.withColumn("tags", F.array_except("tags", F.array(*[F.lit(t) for t in tags])))


def check_k(k: int, distinct_tag_sets: int) -> None:
    """k-means cannot make more categories than there are distinct points."""
    if distinct_tag_sets < 2:
        raise ParameterError(
            f"the corpus has {distinct_tag_sets} distinct tag set(s); at least 2 are needed "
            "to form categories"
        )
    if k > distinct_tag_sets:
        raise ParameterError(
            f"k={k} is more than the {distinct_tag_sets} distinct tag sets in the corpus; "
            f"choose k between 2 and {distinct_tag_sets}"
        )
