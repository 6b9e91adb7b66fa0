"""The pyspark.ml stages around the fit: :class:`HashtagExtractor` (captions to tags, by the
job's rules) and :class:`CategoryEvaluator` (scores categories, for pyspark.ml.tuning), so a
whole pipeline is pyspark.ml::

    from pyspark.ml import Pipeline
    from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
    from tagspark import CategoryEvaluator, HashtagExtractor, TagCategories

    est = TagCategories(seed=1)
    pipeline = Pipeline(stages=[HashtagExtractor(inputCol="caption"), est])
    grid = ParamGridBuilder().addGrid(est.k, [3, 5, 8]).build()
    tvs = TrainValidationSplit(estimator=pipeline, estimatorParamMaps=grid,
                               evaluator=CategoryEvaluator(labelCol="site"), seed=1)
    tvs.fit(posts).bestModel
"""

from __future__ import annotations

from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.evaluation import ClusteringEvaluator, Evaluator
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasLabelCol, HasOutputCol, HasPredictionCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark import evaluate
from tagspark.centres import MIXED_ID
from tagspark.errors import ConfigError
from tagspark.tags import extract_hashtags, normalise_tags


class HashtagExtractor(
    Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable
):
    """The hashtags of a caption (``inputCol``, a string), normalised by the job's rules
    (:func:`tagspark.tags.extract_hashtags`, :func:`tagspark.tags.normalise_tags`: the
    functions ``tagspark cluster`` reads captions with), in ``outputCol``: an array of
    strings, empty for a caption without hashtags or a null one.

    Examples
    --------
    ``"Sunset at the #Beach! #beach#sea"`` gives ``["beach", "sea"]``.
    """

    @keyword_only
    def __init__(self, *, inputCol: str = "caption", outputCol: str = "tags") -> None:  # noqa: N803
        super().__init__()
        self._setDefault(inputCol="caption", outputCol="tags")
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, *, inputCol: str = "caption", outputCol: str = "tags") -> HashtagExtractor:  # noqa: N802,N803
        return self._set(**self._input_kwargs)

    def setInputCol(self, value: str) -> HashtagExtractor:  # noqa: N802
        return self._set(inputCol=value)

    def setOutputCol(self, value: str) -> HashtagExtractor:  # noqa: N802
        return self._set(outputCol=value)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        tags = normalise_tags(extract_hashtags(F.col(self.getInputCol())))
        return dataset.withColumn(
            self.getOutputCol(), F.coalesce(tags, F.array().cast("array<string>"))
        )


METRICS = ("nmi", "ari", "purity", "silhouette")


class CategoryEvaluator(
    Evaluator, HasLabelCol, HasPredictionCol, DefaultParamsReadable, DefaultParamsWritable
):
    """Scores a :class:`~tagspark.estimator.TagCategoriesModel`'s output, larger is better:

    - ``nmi`` (default), ``ari``, ``purity``: against the known class in ``labelCol``
      (:func:`tagspark.evaluate.scores`, posts without a label left out);
    - ``silhouette``: of the posts' embeddings in ``embeddingCol`` (set the estimator's
      ``embeddingCol`` too) by pyspark's ClusteringEvaluator, squared Euclidean, mixed
      posts left out. Comparing k by silhouette needs one space for every k: fix ``dims``.
    """

    metricName: Param[str] = Param(
        Params._dummy(),
        "metricName",
        f"the score: {', '.join(METRICS)}",
        TypeConverters.toString,
    )
    embeddingCol: Param[str] = Param(
        Params._dummy(),
        "embeddingCol",
        "the posts' embeddings, for the silhouette",
        TypeConverters.toString,
    )

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._setDefault(
            metricName="nmi",
            labelCol="label",
            predictionCol="category_id",
            embeddingCol="embedding",
        )
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> CategoryEvaluator:  # noqa: N802
        metric = kwargs.get("metricName", self.getOrDefault(self.metricName))
        if metric not in METRICS:
            raise ConfigError(f"metricName must be one of {', '.join(METRICS)}, got {metric!r}")
        return self._set(**kwargs)

    def getMetricName(self) -> str:  # noqa: N802
        return self.getOrDefault(self.metricName)

    def setMetricName(self, value: str) -> CategoryEvaluator:  # noqa: N802
        return self.setParams(metricName=value)

    def getEmbeddingCol(self) -> str:  # noqa: N802
        return self.getOrDefault(self.embeddingCol)

    def setEmbeddingCol(self, value: str) -> CategoryEvaluator:  # noqa: N802
        return self._set(embeddingCol=value)

    def setLabelCol(self, value: str) -> CategoryEvaluator:  # noqa: N802
        return self._set(labelCol=value)

    def setPredictionCol(self, value: str) -> CategoryEvaluator:  # noqa: N802
        return self._set(predictionCol=value)

    def isLargerBetter(self) -> bool:  # noqa: N802
        return True

    def _evaluate(self, dataset: DataFrame) -> float:
        metric, prediction = self.getMetricName(), self.getPredictionCol()
        if metric == "silhouette":
            placed = dataset.filter(
                (F.col(prediction) != MIXED_ID) & F.col(self.getEmbeddingCol()).isNotNull()
            )
            return ClusteringEvaluator(
                featuresCol=self.getEmbeddingCol(),
                predictionCol=prediction,
                distanceMeasure="squaredEuclidean",
            ).evaluate(placed)
        table = evaluate.contingency(dataset, self.getLabelCol(), prediction)
        return float(evaluate.scores(table)[metric])
