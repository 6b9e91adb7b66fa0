"""The spectral (or LSA) embedding of tag sets, steps 3-4 of :mod:`tagspark.clustering`.

``x(p, t) = idf(t) / ||idf(p)||`` is the post's L2-normalised TF-IDF value, as in the
article. ``spectral`` scales it as in spectral co-clustering (Dhillon 2001):
``a(p, t) = x(p, t) / sqrt(r(p) c(t))`` with ``r(p)`` = the row's sum and ``c(t)`` = the
tag's column sum over all posts, so a popular tag or a long post does not dominate. ``svd``
keeps ``x`` as it is (a plain truncated SVD, "latent semantic analysis"). The power method
on the tags x tags matrix ``A^T A`` (:mod:`tagspark.matrix`) gives ``dims`` directions, and
each tag set's row of ``A`` projected on them and L2-normalised is its embedding (computed
on the executors, one numpy product per Arrow batch).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql.types import ArrayType, BooleanType, DoubleType, StructField, StructType

from tagspark.centres import embed_sets
from tagspark.codec import lists
from tagspark.config import FeaturesConfig
from tagspark.errors import ParameterError
from tagspark.matrix import TagMatrix, power_basis, tag_matrix
from tagspark.stages import Shipped
from tagspark.vocabulary import TagSets

log = logging.getLogger(__name__)

EMBEDDING_METHODS = ("spectral", "svd")
MIN_AUTO_DIMS = 8
MAX_AUTO_DIMS = 24


def auto_dims(k: int) -> int:
    """Embedding dimensions when ``features.dims = 0``: ``k`` within ``[8, 24]``.

    Spectral clustering's choice is k leading directions for k clusters. Below 8, small
    groups of tags that co-occur mostly with each other take directions of their own
    (stackexchange_5sites, k=5, 5 dimensions, measured before components were cut off,
    :func:`min_component_share`: coffee merged into cooking); far above k, within-topic detail
    gets directions that k-means then splits on. Measured: stackexchange_5sites NMI
    0.89-0.91 with 8 dimensions (power method, three seeds); the 300-theme planted corpus
    (k=200) 0.96 with 16 or 32 and 0.961 with 24 (1M posts), so 24 is enough for large k; it keeps
    k-means cheap (MLlib computes its k x k centre statistics on the driver while
    k^2 x dims stays under 10^6: k=200 x 24 dimensions does, x 32 does not).
    """
    return max(MIN_AUTO_DIMS, min(MAX_AUTO_DIMS, k))


def with_embedding(
    sets: DataFrame, projection: np.ndarray, idf: np.ndarray, column: np.ndarray
) -> DataFrame:
    """``sets`` with ``features``, each set's ``sum over its feature tags of x(t) *
    projection[column[t]]``, L2-normalised (``projection = D_c^-1/2 V``, so this is the row
    of ``U s`` up to a scale the normalisation removes), and ``placed``: false for a set
    with no feature tag, whose ``features`` are a placeholder unit vector and whose k-means
    category means nothing. A narrow map, one numpy product per batch."""
    shared = Shipped((projection.astype(np.float64), idf, column))
    dims = projection.shape[1]
    schema = StructType(
        [
            *sets.schema.fields,
            StructField("_features", ArrayType(DoubleType())),
            StructField("placed", BooleanType()),
        ]
    )

    def project(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        _test_task_delay()
        for batch in batches:
            v, placed = embed_sets(batch.column("idx"), *shared.value)
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


# Test hooks, read on the executors (spark.executorEnv): each embedding task first leaves a
# file named by its process id in TAGSPARK_TEST_TASK_MARKERS and waits
# TAGSPARK_TEST_TASK_DELAY seconds, so that a test can kill the worker running k-means' first
# job (which embeds the sample) while its task runs. Once the test has put a file named
# ``done`` there, tasks no longer wait.
TASK_DELAY = "TAGSPARK_TEST_TASK_DELAY"
TASK_MARKERS = "TAGSPARK_TEST_TASK_MARKERS"


def _test_task_delay() -> None:
    delay = float(os.environ.get(TASK_DELAY) or 0)
    markers = os.environ.get(TASK_MARKERS)
    if not delay or (markers and Path(markers, "done").exists()):
        return
    if markers:
        Path(markers, str(os.getpid())).touch()
    time.sleep(delay)


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


def min_component_share(k: int) -> float:
    """The share of the tag graph's volume a connected component needs to be spanned by
    the embedding: a tenth of the mean category's, ``1 / (10 k)``.

    Tags that share a post are joined in the tag graph. Each connected component of it
    gives the spectral matrix an eigenvalue of exactly 1, the highest, so the power method
    spends its directions on components before it splits any topic: on
    stackexchange_5sites, ten tags each seen only alone (#untagged in 9 posts, #lambic in
    2 ...) took the directions that coffee (225 posts) needed, and k-means gave them
    centres. A component this small could only be a category because it is cut off.
    """
    return 1.0 / (10.0 * k)


def spanned_tags(matrix: TagMatrix, min_share: float) -> np.ndarray:
    """A mask over the feature tags: those in connected components holding at least
    ``min_share`` of the matrix's volume (the column sums; every tag when none does, or
    when the components are not known)."""
    started = time.perf_counter()
    components = matrix.components()
    if components is None:
        return np.ones(matrix.n, dtype=bool)
    volume = np.bincount(components, weights=matrix.column_sums, minlength=matrix.n)
    spanned = volume[components] >= min_share * volume.sum()
    log.info(
        "tag graph: %d components, %d of them under %.3g of the volume, in %.1f s",
        len(np.unique(components)),
        len(np.unique(components[~spanned])),
        min_share,
        time.perf_counter() - started,
    )
    return spanned if spanned.any() else np.ones(matrix.n, dtype=bool)


def embed(
    sets: TagSets,
    features: FeaturesConfig,
    dims: int,
    seed: int,
    keep: np.ndarray,
    min_share: float,
) -> Embedding:
    """Step 4 of the module docstring: the embedding that gives each tag set ``features``
    and ``placed`` (see :func:`with_embedding`), ``dims``-dimensional (fewer when fewer tags
    are kept).

    ``keep`` marks the vocabulary tags the features use (the others, e.g. generic tags and
    tags past ``features.max_tags``, are left out of the matrix and of every row). Tags in
    connected components under ``min_share`` of the volume (:func:`min_component_share`)
    stay in the matrix but get no direction: a set of only such tags is not ``placed``.
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
        spanned = spanned_tags(matrix, min_share)
        dims = min(dims, int(spanned.sum()))
        basis = power_basis(matrix, dims, features.power_iterations, seed, rows=spanned)
    finally:
        matrix.release()
    log.info("embedding: %d dimensions; %d tags cut off", dims, int((~spanned).sum()))
    info = {
        "method": features.method,
        "vocabulary": len(keep),
        "feature_tags": n_kept,
        "tag_matrix": matrix.where,
        "tag_matrix_entries": matrix.nnz,
        "distinct_tag_sets": sets.count,
        "dims": dims,
        "power_iterations": features.power_iterations,
        "tags_cut_off": int((~spanned).sum()),
    }
    return Embedding(basis * matrix.scale[:, None], idf, column, info)
