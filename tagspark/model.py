"""Features and clustering: HashingTF -> IDF -> Normalizer -> KMeans in one Spark ML Pipeline,
and the checks that come before fitting it."""

from __future__ import annotations

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.feature import IDF, HashingTF, Normalizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.config import FeaturesConfig, KMeansConfig
from tagspark.errors import ParameterError

CATEGORY_COL = "category"


def build_pipeline(
    features: FeaturesConfig, kmeans: KMeansConfig, tags_col: str = "tags"
) -> Pipeline:
    """The unfitted pipeline: binary HashingTF, IDF, L2 Normalizer, KMeans.

    Parameters
    ----------
    features : FeaturesConfig
        ``num_features`` (a power of two) and ``min_doc_freq``.
    kmeans : KMeansConfig
        k, max_iter, tol, seed, init_mode, init_steps, distance_measure.
    tags_col : str
        The ``array<string>`` column of tags.

    Returns
    -------
    Pipeline
        Its model adds ``tf``, ``tfidf``, ``features`` and ``category`` columns.

    Examples
    --------
    >>> model = build_pipeline(FeaturesConfig(), KMeansConfig(k=2)).fit(posts)
    >>> model.transform(posts).select("id", "category")
    """
    tf = HashingTF(
        inputCol=tags_col, outputCol="tf", numFeatures=features.num_features, binary=True
    )
    idf = IDF(inputCol=tf.getOutputCol(), outputCol="tfidf", minDocFreq=features.min_doc_freq)
    norm = Normalizer(inputCol=idf.getOutputCol(), outputCol="features", p=2.0)
    km = KMeans(
        featuresCol=norm.getOutputCol(),
        predictionCol=CATEGORY_COL,
        k=kmeans.k,
        maxIter=kmeans.max_iter,
        tol=kmeans.tol,
        seed=kmeans.seed,
        initMode=kmeans.init_mode,
        initSteps=kmeans.init_steps,
        distanceMeasure=kmeans.distance_measure,
    )
    return Pipeline(stages=[tf, idf, norm, km])


def count_distinct_tag_sets(posts: DataFrame) -> int:
    """How many different tag sets the posts carry (order within a post does not count)."""
    return posts.select(F.array_sort("tags").alias("tags")).distinct().count()


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


def kmeans_stage(model: PipelineModel) -> KMeansModel:
    """The fitted KMeans stage of a pipeline model."""
    return model.stages[-1]
