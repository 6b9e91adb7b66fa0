"""Post features and the k-means fit, for each ``features.method``.

``spectral`` (the default) clusters a low-dimensional embedding of the posts instead of their
raw TF-IDF vectors, which on short tag sets collapse into one junk cluster:

1. Vocabulary: tags in at least ``min_doc_freq`` posts (and with idf above 0), indexed
   0..n-1 from the most frequent. Rarer tags carry no shared signal, so the feature space is
   sized by the data. The vocabulary (one entry a kept tag, never one a post) is brought to
   the driver and broadcast: the tags x tags matrix below is sized by it anyway.
2. Tag sets: each post becomes the sorted set of its vocabulary indices (looked up on the
   executors with Arrow, no shuffle); identical sets are collapsed into one row with
   ``weight`` = how many posts carry it (one-tag posts are the most common kind). IDF
   comes from the posts, not from the collapsed rows.
3. ``x(p, t) = idf(t) / ||idf(p)||``, the post's L2-normalised TF-IDF value, as in the
   article. ``spectral`` scales it as in spectral co-clustering (Dhillon 2001):
   ``a(p, t) = x(p, t) / sqrt(r(p) c(t))`` with ``r(p)`` = the row's sum and ``c(t)`` = the
   tag's column sum over all posts, so a popular tag or a long post does not dominate.
   ``svd`` keeps ``x`` as it is (a plain truncated SVD, "latent semantic analysis").
4. Each partition of tag sets adds up its share of the tags x tags matrix ``A^T A`` with
   scipy (a weighted row counts ``weight`` times); Spark sums the partitions' sparse
   matrices in a tree and brings the total to the driver. There ``power_iterations`` steps
   of the power method from a seeded random start give ``dims`` directions (see
   :func:`power_basis`), and each distinct tag set's row of ``A``, projected on them and
   L2-normalised, is its embedding (computed on the executors, one numpy product per Arrow
   batch).
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.feature import IDF, HashingTF, Normalizer
from pyspark.ml.functions import array_to_vector
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DoubleType,
    StructField,
    StructType,
)

from tagspark.codec import feature_rows, lists, pack_sets, sorted_unique
from tagspark.config import FeaturesConfig, KMeansConfig
from tagspark.errors import ParameterError
from tagspark.matrix import power_basis, tag_matrix

log = logging.getLogger(__name__)

CATEGORY_COL = "category"
GROUP_COL = "group_id"
GROUP_KEYS = [GROUP_COL, "idx"]
# the category of posts with nothing to place them by (no tag left for the features); the
# job also puts posts with only generic tags there and names it "mixed"
MIXED_ID = -1
EMBEDDING_METHODS = ("spectral", "svd")
MIN_AUTO_DIMS = 8
MAX_AUTO_DIMS = 24
# Tag sets are spread over ceil(posts / this) partitions, fixed by the data (not the cluster)
# so that a seed gives the same sample and categories everywhere. Measured at 1M posts on 2
# cores: 2 partitions build the sets, the tag matrix and the embedding in 8 s where 10 take
# 18 s (each task also adds a tag matrix the size of the vocabulary's).
POSTS_PER_PARTITION = 500_000
# the tag look-up gathers Arrow batches until they hold this many tags per vocabulary tag
# (see with_tag_sets)
LOOKUP_VALUES_PER_TAG = 4


@dataclass
class Fit:
    """A fitted clustering.

    ``groups`` has ``group_id, category, idx, weight``: one row per distinct tag set (and,
    for ``tfidf``, per category its posts went to), ``weight`` posts each, ``category``
    :data:`MIXED_ID` for sets with no feature left. ``posts`` is the tag sets' post table
    with ``group_id`` and ``idx`` (null and empty for posts without a vocabulary tag); the
    two columns :data:`GROUP_KEYS` join a post to its group exactly (``group_id`` alone is
    a hash, or for ``tfidf`` the k-means category). ``model`` is the KMeansModel
    (``spectral``/``svd``) or the PipelineModel (``tfidf``) to save.
    """

    groups: DataFrame
    posts: DataFrame
    model: KMeansModel | PipelineModel
    cost: float
    iterations: int
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Vocabulary:
    """The kept tags, most frequent first: ``tags[i]`` has document frequency ``df[i]`` and
    ``idf[i] = log((N + 1) / (df + 1))``."""

    tags: tuple[str, ...]
    df: np.ndarray
    idf: np.ndarray

    def __len__(self) -> int:
        return len(self.tags)

    def mask(self, excluded: Iterable[str] = (), max_tags: int = 0) -> np.ndarray:
        """True for every tag the features use: all but the ``excluded`` ones, and of the
        rest the ``max_tags`` most frequent (all of them when ``max_tags`` is 0).

        >>> v = Vocabulary(("a", "b", "c", "d"), np.array([9, 5, 3, 2]), np.ones(4))
        >>> v.mask(["b"], max_tags=2).tolist()
        [True, False, True, False]
        """
        keep = np.ones(len(self.tags), dtype=bool)
        keep[self.indices(excluded)] = False
        if max_tags:
            keep[np.flatnonzero(keep)[max_tags:]] = False
        return keep

    def indices(self, tags: Iterable[str]) -> list[int]:
        """The indices of those ``tags`` that are in the vocabulary."""
        wanted = set(tags)
        if not wanted:
            return []
        return sorted(self._position[t] for t in wanted if t in self._position)

    @cached_property
    def _position(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tags)}


@dataclass
class TagSets:
    """What every method shares: the vocabulary, ``posts`` (the input's columns with
    ``tags`` replaced by ``idx`` and ``set_id``) and ``sets`` (``set_id, idx, weight``,
    one row per distinct set), both cached, and the number of distinct sets."""

    vocabulary: Vocabulary
    posts: DataFrame
    sets: DataFrame
    count: int


def auto_dims(k: int) -> int:
    """Embedding dimensions when ``features.dims = 0``: ``k`` within ``[8, 24]``.

    Spectral clustering's choice is k leading directions for k clusters. Below 8, tiny
    groups of tags that co-occur only with each other take directions of their own
    (stackexchange_5sites, k=5, 5 dimensions: coffee merged into cooking and a 27-post
    category #untagged #inebriation #liver); far above k, within-topic detail gets
    directions that k-means then splits on. Measured: stackexchange_5sites NMI 0.89-0.90
    with 8 dimensions (power method, three seeds); the 300-theme planted corpus (k=200)
    0.96 with 16 or 32 and 0.961 with 24 (1M posts), so 24 is enough for large k; it keeps
    k-means cheap (MLlib computes its k x k centre statistics on the driver while
    k^2 x dims stays under 10^6: k=200 x 24 dimensions does, x 32 does not).
    """
    return max(MIN_AUTO_DIMS, min(MAX_AUTO_DIMS, k))


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


def tag_vocabulary(posts: DataFrame, n_posts: int, min_doc_freq: int) -> Vocabulary:
    """The tags of ``posts`` in at least ``min_doc_freq`` of them whose idf is above 0,
    ordered by document frequency (ties by tag).

    Examples
    --------
    Posts ``{a, b}, {a, c}, {a, b}`` with ``min_doc_freq=2``: ``a`` is in every post (idf
    ``log(4/4) = 0``, no signal) and ``c`` is too rare, so the vocabulary is ``("b",)``.
    """
    counted = (
        posts.select(F.explode("tags").alias("tag"))
        .groupBy("tag")
        .agg(F.count(F.lit(1)).alias("df"))
        .filter((F.col("df") >= max(min_doc_freq, 1)) & (F.col("df") < n_posts))
        .toArrow()  # one row a kept tag; sorted here, not with a Spark range shuffle
    )
    order = pc.sort_indices(counted, [("df", "descending"), ("tag", "ascending")])
    table = counted.take(order)
    df = table.column("df").to_numpy()
    return Vocabulary(
        tuple(table.column("tag").to_pylist()),
        df,
        np.log((n_posts + 1) / (df + 1.0)),
    )


def with_tag_sets(posts: DataFrame, vocabulary: Vocabulary) -> DataFrame:
    """``posts`` with ``tags`` replaced by ``idx``, the sorted vocabulary indices of its
    tags packed by :func:`pack_sets` (empty when it has none), and ``set_id``, a 64-bit
    hash of ``idx`` (:func:`set_hash`; null when empty) that spreads and orders the sets.

    An Arrow UDF: only the ``tags`` column travels to Python, Arrow batches looked up at
    once on the executor (measured 30% faster than passing whole rows through
    ``mapInArrow``). pyarrow's ``index_in`` hashes the whole vocabulary on every call
    (0.5-0.9 s for 2.7M tags), so batches are gathered until they hold
    :data:`LOOKUP_VALUES_PER_TAG` tags per vocabulary tag: one call per batch for a small
    vocabulary, a few per partition for a large one (measured at 5M long-tail posts with
    2.7M vocabulary tags: the tag sets took 169 s batch by batch, 23 s gathered).
    """
    shared = posts.sparkSession.sparkContext.broadcast(list(vocabulary.tags))
    n_tags = len(vocabulary)

    def look_up(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        known = pa.array(shared.value, pa.string())
        for tags in gathered(batches, LOOKUP_VALUES_PER_TAG * len(known)):
            found = pc.fill_null(pc.index_in(pc.list_flatten(tags), value_set=known), -1)
            rows = pc.list_parent_indices(tags).to_numpy()
            found = found.to_numpy()
            # one sort of row * n_tags + index orders each row's indices, and dropping
            # repeats drops a tag repeated within a post
            keys = sorted_unique(rows[found >= 0] * n_tags + found[found >= 0])
            rows, found = keys // n_tags, keys % n_tags
            yield pack_sets(found, rows, len(tags))

    idx = F.arrow_udf(look_up, BinaryType())
    return (
        posts.withColumn("idx", idx("tags"))
        .drop("tags")
        .withColumn("set_id", F.when(F.length("idx") > 0, set_hash(F.col("idx"))))
    )


def gathered(arrays: Iterator[pa.Array], min_values: int) -> Iterator[pa.Array]:
    """The list ``arrays`` concatenated into ones of at least ``min_values`` items (the
    last one may hold fewer), in order.

    >>> parts = [pa.array([["a"], ["b", "c"]]), pa.array([["d"]]), pa.array([["e", "f"]])]
    >>> [a.to_pylist() for a in gathered(iter(parts), 3)]
    [[['a'], ['b', 'c']], [['d'], ['e', 'f']]]
    """
    pending: list[pa.Array] = []
    held = 0
    for array in arrays:
        pending.append(array)
        held += len(array.flatten())
        if held >= min_values:
            yield pa.concat_arrays(pending)
            pending, held = [], 0
    if pending:
        yield pa.concat_arrays(pending)


def set_hash(idx: Column) -> Column:
    """The 64-bit hash of a packed set. Not an identity: sets are told apart by ``idx``
    (see :func:`weighted_sets`), so a clash costs nothing but a shared partition."""
    return F.xxhash64(idx)


def weighted_sets(post_sets: DataFrame, partitions: int) -> DataFrame:
    """``set_id, idx, weight``: one row per distinct tag set, ``weight`` posts each.

    A set is its packed ``idx`` itself: rows are grouped by ``(set_id, idx)``, so two sets
    whose 64-bit ``set_id`` hashes clash stay two rows (the hash only spreads and orders
    them; joins on a set use both columns). The rows sit in ``partitions`` partitions by
    ``set_id``, sorted, whatever the cluster's shuffle settings: k-means|| samples each
    partition with its own seed, so the same points must sit in the same partitions in the
    same order on every run.
    """
    return (
        post_sets.filter(F.col("set_id").isNotNull())
        .select("set_id", "idx")
        .repartition(partitions, "set_id")
        .groupBy("set_id", "idx")
        .agg(F.count(F.lit(1)).alias("weight"))
        .sortWithinPartitions("set_id", "idx")
    )


def tag_sets(posts: DataFrame, n_posts: int, min_doc_freq: int, cache) -> TagSets:
    """Steps 1-3 of the module docstring for ``posts`` (``_pos, tags`` and any other
    columns, which are kept). ``cache`` is the caller's ``DataFrame -> DataFrame`` that
    caches and later unpersists.

    Raises
    ------
    ParameterError
        Fewer than 2 vocabulary tags.
    """
    vocabulary = tag_vocabulary(posts, n_posts, min_doc_freq)
    if len(vocabulary) < 2:
        raise ParameterError(
            f"only {len(vocabulary)} tag(s) occur in at least features.min_doc_freq="
            f"{min_doc_freq} posts; at least 2 are needed to form categories"
        )
    log.info("vocabulary: %d tags in at least %d posts", len(vocabulary), min_doc_freq)
    post_sets = cache(with_tag_sets(posts, vocabulary))
    partitions = max(1, -(-n_posts // POSTS_PER_PARTITION))
    sets = cache(weighted_sets(post_sets, partitions))
    count = sets.count()
    log.info("tag sets: %d distinct, in %d partitions", count, partitions)
    return TagSets(vocabulary, post_sets, sets, count)


def with_embedding(
    sets: DataFrame, projection: np.ndarray, idf: np.ndarray, column: np.ndarray
) -> DataFrame:
    """``sets`` with ``features``, each set's ``sum over its feature tags of x(t) *
    projection[column[t]]``, L2-normalised (``projection = D_c^-1/2 V``, so this is the row
    of ``U s`` up to a scale the normalisation removes), and ``placed``: false for a set
    with no feature tag, whose ``features`` are a placeholder unit vector and whose k-means
    category means nothing. A narrow map, one numpy product per batch."""
    shared = sets.sparkSession.sparkContext.broadcast((projection.astype(np.float64), idf, column))
    dims = projection.shape[1]
    schema = StructType(
        [
            *sets.schema.fields,
            StructField("_features", ArrayType(DoubleType())),
            StructField("placed", BooleanType()),
        ]
    )

    def project(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            v, placed = _embed_batch(batch, *shared.value)
            rows = np.repeat(np.arange(batch.num_rows), dims)
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, lists(v.ravel(), rows, batch.num_rows), pa.array(placed)],
                [*batch.schema.names, "_features", "placed"],
            )

    return (
        sets.mapInArrow(project, schema)
        .withColumn("features", array_to_vector("_features"))
        .drop("_features")
    )


def _embed_batch(
    batch: pa.RecordBatch, projection: np.ndarray, idf: np.ndarray, column: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The batch's embeddings (unit rows) and which of them are ``placed``."""
    v = feature_rows(batch.column("idx"), idf, column) @ projection
    norms = np.linalg.norm(v, axis=1)
    placed = norms > 0
    v[placed] /= norms[placed, None]
    v[~placed, 0] = 1.0  # any unit vector: cosine k-means refuses zero vectors
    return v, placed


def nearest_centres(v: np.ndarray, centres: np.ndarray, distance_measure: str) -> np.ndarray:
    """Each row of ``v``'s nearest centre (the first of equals), as MLlib's KMeansModel
    assigns: squared Euclidean distance, or cosine distance (1 - cosine similarity)."""
    if distance_measure == "cosine":
        norms = np.linalg.norm(centres, axis=1)
        unit = centres / np.where(norms > 0, norms, 1.0)[:, None]
        return np.argmax(v @ unit.T, axis=1)
    # |v - c|^2 = |v|^2 - 2 v.c + |c|^2, and |v|^2 is the same for every centre
    return np.argmin((centres * centres).sum(axis=1) - 2.0 * (v @ centres.T), axis=1)


def assigned_sets(
    sets: DataFrame, embedding: Embedding, centres: np.ndarray, distance_measure: str
) -> DataFrame:
    """``group_id, category, idx, weight``: every tag set with its nearest of ``centres``
    (the fitted model's), :data:`MIXED_ID` when it is not placed. Embedding and assignment
    in one narrow map, one numpy product each per batch: no vector column, no second pass.
    """
    shared = sets.sparkSession.sparkContext.broadcast(
        (embedding.projection.astype(np.float64), embedding.idf, embedding.column, centres)
    )

    def assign(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        projection, idf, column, centres = shared.value
        for batch in batches:
            v, placed = _embed_batch(batch, projection, idf, column)
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


@dataclass(frozen=True)
class Embedding:
    """A fitted embedding of tag sets (:func:`embed`) and what was done (``info``)."""

    projection: np.ndarray
    idf: np.ndarray
    column: np.ndarray
    info: dict[str, Any]

    def of(self, sets: DataFrame) -> DataFrame:
        """``sets`` (any rows with ``idx``) with ``features`` and ``placed``."""
        return with_embedding(sets, self.projection, self.idf, self.column)


def embed(
    sets: TagSets, features: FeaturesConfig, dims: int, seed: int, keep: np.ndarray
) -> Embedding:
    """Step 4 of the module docstring: the embedding that gives each tag set ``features``
    and ``placed`` (see :func:`with_embedding`), ``dims``-dimensional (fewer when fewer tags
    are kept).

    ``keep`` marks the vocabulary tags the features use (the others, e.g. generic tags and
    tags past ``features.max_tags``, are left out of the matrix and of every row).
    """
    n_kept = int(keep.sum())
    if n_kept < 2:
        raise ParameterError(
            f"only {n_kept} tag(s) are left for the features; at least 2 are needed to form "
            "categories"
        )
    dims = min(dims, n_kept)
    idf = sets.vocabulary.idf
    column = np.full(len(keep), -1, dtype=np.int64)
    column[keep] = np.arange(n_kept)
    matrix = tag_matrix(sets.sets, idf, column, features.method, features.matrix)
    log.info("tag matrix: %d x %d, %d entries, on the %s", n_kept, n_kept, matrix.nnz, matrix.where)
    try:
        basis = power_basis(matrix, dims, features.power_iterations, seed)
    finally:
        matrix.release()
    log.info("embedding: %d dimensions", dims)
    info = {
        "method": features.method,
        "vocabulary": len(keep),
        "feature_tags": n_kept,
        "tag_matrix": matrix.where,
        "tag_matrix_entries": matrix.nnz,
        "distinct_tag_sets": sets.count,
        "dims": dims,
        "power_iterations": features.power_iterations,
    }
    return Embedding(basis * matrix.scale[:, None], idf, column, info)


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
    embedding = embed(sets, features, features.dims or auto_dims(kmeans.k), kmeans.seed, keep)
    info = embedding.info
    n_points = sets.count if keep.all() else embedding.of(sets.sets).filter("placed").count()
    check_k(kmeans.k, n_points)
    # drawn before embedding, so only the sample is embedded twice; cached: k-means reads it
    # once per iteration, and its summary once more
    drawn = fit_sample(sets.sets, n_points, kmeans.fit_sets, kmeans.seed)
    sample = cache(embedding.of(drawn).filter("placed"))
    info["fit_sets"] = min(n_points, kmeans.fit_sets or n_points)
    log.info("k-means: k=%d on about %d of %d tag sets", kmeans.k, info["fit_sets"], n_points)
    model = kmeans_estimator(kmeans).setWeightCol("weight").fit(sample)
    centres = np.array(model.clusterCenters())
    groups = assigned_sets(sets.sets, embedding, centres, kmeans.distance_measure)
    summary = model.summary
    return Fit(
        groups,
        sets.posts.withColumnRenamed("set_id", GROUP_COL),
        model,
        summary.trainingCost,
        summary.numIter,
        info,
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
