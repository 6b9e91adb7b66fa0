"""The fit, from posts to a :class:`~tagspark.model.TagModel`, and the same as pyspark.ml
stages: :class:`TagCategories` (an Estimator) and :class:`TagCategoriesModel` (its Model),
so a notebook needs no CLI::

    from tagspark import TagCategories, TagCategoriesModel

    model = TagCategories(k=20, seed=42).fit(posts)        # a DataFrame with a tags column
    model.transform(posts).select("id", "category_id", "distance")
    model.categories[0].name                               # e.g. 'boat_water_sailing'
    model.save("model/")
    TagCategoriesModel.load("model/")

The stages of the fit (:func:`fit_categories`), the job's ``fit`` and ``name``:

1. the vocabulary and the distinct tag sets (:mod:`tagspark.vocabulary`), k-means by
   ``features.method`` (:mod:`tagspark.clustering`);
2. sets with no feature tag placed by their tags (:func:`place_by_tags`);
3. generic tags found from how their posts spread (:mod:`tagspark.generic`); with
   ``generic.exclude_from_features`` the fit runs again without them;
4. sets with only generic tags moved to ``mixed``; every category's tags weighed, ranked and
   named (:mod:`tagspark.naming`), and rated against the popularity band
   (:mod:`tagspark.popularity`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.ml import Estimator, Model, PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

from tagspark import categories as cat
from tagspark import generic, naming, popularity
from tagspark.centres import MIXED_ID, TagCentres, tag_weights
from tagspark.clustering import Fit, fit
from tagspark.codec import lists
from tagspark.config import Config, KMeansConfig, build_config
from tagspark.model import PIPELINE, TagModel
from tagspark.naming import MIXED_NAME
from tagspark.neighbours import tag_neighbours
from tagspark.stages import CacheScope
from tagspark.tags import cap_tags, normalise_tags
from tagspark.vocabulary import TagSets, Vocabulary, packed_tags, tag_sets, with_tag_sets

log = logging.getLogger(__name__)

Timer = Callable[[str], AbstractContextManager]


@dataclass
class Fitted:
    """What :func:`fit_categories` gives the job: the ``model``, the Spark ``pipeline``
    (tfidf), the corpus's ``posts`` with their packed tag sets (``idx``; and for tfidf their
    k-means category in ``group_id``), the last k-means ``fit``, ``counts``
    (``distinct_tag_sets``, ``placed_by_tags``, ``mixed``), the generic tags found and the
    number of ``empty`` categories (the tag statistics are ``model.stats``)."""

    model: TagModel
    pipeline: PipelineModel | None
    posts: DataFrame
    fit: Fit
    counts: dict[str, int]
    generic: list[dict]
    empty: int


def fit_categories(
    posts: DataFrame,
    n_posts: int,
    cfg: Config,
    cache: CacheScope,
    timer: Timer | None = None,
) -> Fitted:
    """Fit categories to ``posts`` (``_pos, tags`` and any other columns; ``n_posts`` of
    them, each with a tag). ``timer(stage)`` times the ``fit`` and ``name`` stages.

    Raises
    ------
    ParameterError
        Too few tags or tag sets for k.
    """
    timer = timer or (lambda stage: nullcontext())
    counts = {}
    listed = generic.listed_tags(cfg.generic) if cfg.generic.exclude_from_features else []
    with timer("fit"):
        sets = tag_sets(posts, n_posts, cfg.features.min_doc_freq, cache)
        counts["distinct_tag_sets"] = sets.count
        fitted = fit(posts, sets, cfg.features, cfg.kmeans, listed, cache)
        log.info("features: %s", fitted.info)
        log.info("k-means: %d iterations, cost %.4f", fitted.iterations, fitted.cost)

    with timer("name"):
        groups, cells, placing = place_by_tags(cache(fitted.groups), sets, fitted, counts, cache)
        generic_list = generic.generic_tags(generic.tag_spread(cells), cfg.generic, sets.vocabulary)
        generic_names = [g["tag"] for g in generic_list]
        if generic_names:
            log.info("generic tags (%d): %s", len(generic_names), ", ".join(generic_names[:20]))
        detected = sorted(set(generic_names) - set(listed))
        if cfg.generic.exclude_from_features and detected:
            log.info("fitting again without the %d detected generic tags", len(detected))
            fitted = fit(posts, sets, cfg.features, cfg.kmeans, listed + detected, cache)
            groups, cells, placing = place_by_tags(
                cache(fitted.groups), sets, fitted, counts, cache
            )
        generic_idx = sets.vocabulary.indices(generic_names)
        if generic_idx:
            # sets with only generic tags go to mixed: their cells move with them
            generic_only = np.asarray(generic_idx, dtype=np.int64)
            moved = cat.category_cells(groups, sets.vocabulary.idf, generic_only)
            cells = cat.with_mixed_cells(cells, moved)
        sizes = dict(cells.sizes)
        # posts with no vocabulary tag have no tag set: they are mixed too
        no_tag_posts = n_posts - sum(sizes.values())
        if no_tag_posts:
            sizes[MIXED_ID] = sizes.get(MIXED_ID, 0) + no_tag_posts
        weights = tag_weights(cells, sizes)
        ranked = naming.top_tags(
            cells, weights, sets.vocabulary.tags, cfg.naming.tags_per_category, generic_idx
        )
        categories = naming.ranked_categories(ranked, sizes, cfg.naming.name_tags)
        counts["mixed"] = sizes.get(MIXED_ID, 0)
        log.info("mixed bucket: %d posts with no category-specific tag", counts["mixed"])
        empty = cfg.kmeans.k - sum(c.id != MIXED_ID for c in categories)
        if empty:
            log.warning("%d of k=%d categories ended empty and are left out", empty, cfg.kmeans.k)
        model = _model(sets, fitted, cells, weights, placing, generic_idx, categories, cfg)
        stats = popularity.tag_stats(model, cfg.popularity, _popularity_counts(cfg))
        model.categories = popularity.rated(categories, stats, model.position)
        model.settings["popularity_source"] = stats.source
        model.stats = stats
    with timer("neighbours"):
        # the features' tags, generic ones left out: a walk through #love goes anywhere
        features = sets.vocabulary.mask([*fitted.excluded, *generic_names], cfg.features.max_tags)
        model.neighbours = tag_neighbours(
            sets.sets, sets.vocabulary.df, features, cfg.suggest.neighbours, cfg.suggest.walk
        )
        log.info(
            "neighbours: %d companions of %d tags (at most %d a tag)",
            len(model.neighbours),
            int(features.sum()),
            model.neighbours.most_per_tag(),
        )
    pipeline = fitted.model if cfg.features.method == "tfidf" else None
    return Fitted(model, pipeline, fitted.posts, fitted, counts, generic_list, empty)


def _popularity_counts(cfg: Config) -> dict[str, int]:
    return popularity.read_popularity(cfg.popularity.file) if cfg.popularity.file else {}


def place_by_tags(
    groups: DataFrame, sets: TagSets, fitted: Fit, counts: dict[str, int], cache: CacheScope
) -> tuple[DataFrame, cat.Cells, TagCentres | None]:
    """``groups`` and their cells, with the sets the embedding could not place (no feature
    tag) given the category whose centre weighs their tags most
    (:func:`tagspark.categories.with_sets_placed_by_tags`), and the centres that placed
    them (None when every set was placed); ``counts["placed_by_tags"]`` says how many posts
    moved."""
    idf = sets.vocabulary.idf
    cells = cat.category_cells(groups, idf)
    unplaced = cells.sizes.get(MIXED_ID, 0)
    counts["placed_by_tags"] = 0
    if not unplaced:
        return groups, cells, None
    placing = TagCentres.of(cells, tag_weights(cells, cells.sizes), placed_only=True)
    if fitted.embedding is not None:
        # a set placed by its tags has no feature tag: only the others' cells can score
        placing = _restricted(placing, fitted.embedding.column < 0)
    groups = cache(cat.with_sets_placed_by_tags(groups, placing, idf))
    cells = cat.category_cells(groups, idf)
    counts["placed_by_tags"] = unplaced - cells.sizes.get(MIXED_ID, 0)
    log.info(
        "%d posts with no feature tag placed by their rarer tags, %d left for mixed",
        counts["placed_by_tags"],
        unplaced - counts["placed_by_tags"],
    )
    return groups, cells, placing


def _restricted(centres: TagCentres, tags: np.ndarray) -> TagCentres:
    keep = tags[centres.idx]
    return TagCentres(centres.category[keep], centres.idx[keep], centres.weight[keep])


def _model(
    sets: TagSets,
    fitted: Fit,
    cells: cat.Cells,
    weights: np.ndarray,
    placing: TagCentres | None,
    generic_idx: list[int],
    categories: list[naming.Category],
    cfg: Config,
) -> TagModel:
    vocabulary = sets.vocabulary
    embedding = fitted.embedding
    return TagModel(
        method=cfg.features.method,
        distance_measure=cfg.kmeans.distance_measure,
        n_posts=sum(c.size for c in categories),  # every post: mixed and no-tag ones too
        tags=vocabulary.tags,
        df=vocabulary.df,
        idf=vocabulary.idf,
        column=embedding.column if embedding else np.full(len(vocabulary), -1, dtype=np.int64),
        centres=TagCentres.of(cells, weights),
        cell_posts=cells.posts,
        generic=np.asarray(generic_idx, dtype=np.int64),
        categories=categories,
        projection=embedding.projection if embedding else None,
        kmeans_centres=fitted.centres,
        placing=placing,
        excluded=fitted.excluded,
        settings={
            "tags": {"max_tags_per_post": cfg.tags.max_tags_per_post},
            "popularity": dataclasses.asdict(cfg.popularity),
            "config": cfg.to_dict(),
            "suggest": dataclasses.asdict(cfg.suggest),
        },
    )


# -- on Spark -------------------------------------------------------------------------------


def categorised(posts: DataFrame, model: TagModel, kmeans_col: str | None = None) -> DataFrame:
    """``posts`` (with a packed ``idx`` column; for tfidf, the pipeline's category in
    ``kmeans_col``) with ``category_id`` and ``distance`` (:meth:`TagModel.place`). A narrow
    map: the model, without its tag strings, is broadcast."""
    slim = dataclasses.replace(model, tags=(), categories=[])
    shared = posts.sparkSession.sparkContext.broadcast(slim)
    schema = StructType(
        [
            *posts.schema.fields,
            StructField("category_id", IntegerType()),
            StructField("distance", DoubleType()),
        ]
    )

    def place(batches):
        model = shared.value
        for batch in batches:
            kmeans = None
            if kmeans_col is not None:
                kmeans = batch.column(kmeans_col).fill_null(MIXED_ID).to_numpy()
            category, distance = model.place(batch.column("idx"), kmeans)
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, pa.array(category.astype(np.int32)), pa.array(distance)],
                [*batch.schema.names, "category_id", "distance"],
            )

    return posts.mapInArrow(place, schema)


def transform(
    df: DataFrame,
    model: TagModel,
    pipeline: PipelineModel | None,
    tags_col: str = "tags",
    keep_idx: bool = False,
) -> DataFrame:
    """``df`` with ``category_id`` and ``distance`` for its tags (``tags_col``, an
    array of strings, normalised and capped as the job does); with ``keep_idx``, also the
    packed vocabulary indices of its tags (``idx``)."""
    max_tags = model.settings.get("tags", {}).get("max_tags_per_post", 30)
    tags = F.coalesce(normalise_tags(F.col(tags_col)), F.array().cast("array<string>"))
    with_tags = df.withColumn("_ts_tags", cap_tags(tags, max_tags))
    vocabulary = Vocabulary(model.tags, model.df, model.idf)
    kmeans_col, scratch = None, ["set_id"] if keep_idx else ["idx", "set_id"]
    if pipeline is not None:
        excluded = F.array(*[F.lit(t) for t in model.excluded]).cast("array<string>")
        with_tags = with_tags.withColumn("_ts_features", F.array_except("_ts_tags", excluded))
        stages = pipeline.stages
        stages[0].setInputCol("_ts_features")
        outputs = [s.getOutputCol() for s in stages[:-1]] + [stages[-1].getPredictionCol()]
        with_tags = pipeline.transform(with_tags).drop(*outputs[:-1], "_ts_features")
        kmeans_col = outputs[-1]
        scratch.append(kmeans_col)
    indexed = with_tag_sets(with_tags, vocabulary, "_ts_tags")
    return categorised(indexed, model, kmeans_col).drop(*scratch)


def suggested(
    posts: DataFrame,
    model: TagModel,
    n: int,
    prefer_in_band: bool = False,
    recommended_only: bool = False,
) -> DataFrame:
    """``id, category_id, category, suggestions, unknown_tags, message`` for every post of
    ``posts`` (``id, tags``, normalised): :func:`tagspark.suggest.ranked` over whole Arrow
    batches, the post's category (:meth:`TagModel.category_of`), its tags the model does not
    know, and why it has no suggestions (or null). The model is broadcast."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from tagspark.suggest import SUGGESTION_FIELDS, ranked, why_none

    shared = posts.sparkSession.sparkContext.broadcast(model)
    out = pa.schema(
        [
            ("id", pa.string()),
            ("category_id", pa.int32()),
            ("category", pa.string()),
            ("suggestions", pa.list_(SUGGESTION_FIELDS)),
            ("unknown_tags", pa.list_(pa.string())),
            ("message", pa.string()),
        ]
    )

    def run(batches):
        model = shared.value
        known = pa.array(model.tags, pa.string())
        names = {c.id: c.name for c in model.categories}
        for batch in batches:
            tags = batch.column("tags")
            packed, hit = packed_tags(tags, known)
            category = model.category_of(packed).astype(np.int32)
            suggestions = ranked(model, packed, n, prefer_in_band, recommended_only, category)
            rows = pc.list_parent_indices(tags).to_numpy()
            unknown = lists(pc.list_flatten(tags).filter(pa.array(~hit)), rows[~hit], len(tags))
            has_tags = np.diff(tags.offsets.to_numpy()) > 0
            has_known = pc.binary_length(packed).to_numpy() > 0
            empty = np.diff(suggestions.offsets.to_numpy()) == 0
            message = why_none(has_tags, has_known, category, recommended_only)
            yield pa.RecordBatch.from_arrays(
                [
                    batch.column("id").cast(pa.string()),
                    pa.array(category),
                    pa.array([names.get(int(c), MIXED_NAME) for c in category], pa.string()),
                    suggestions,
                    unknown,
                    pa.array(np.where(empty, message, None), pa.string()),
                ],
                schema=out,
            )

    return posts.select("id", "tags").mapInArrow(run, from_arrow_schema(out))


class TagCategories(Estimator):
    """The fit as a pyspark.ml Estimator. ``fit(df)`` takes a DataFrame with a tags column
    (``tagsCol``, an array of strings: raw tags, normalised as the job does; rows with none
    are left out) and returns a :class:`TagCategoriesModel`.

    Parameters
    ----------
    k, seed, method : the config's ``kmeans.k``, ``kmeans.seed``, ``features.method``
    tagsCol : str
    config : Config, optional
        Every other setting (default: the documented defaults).
    """

    def __init__(
        self,
        k: int = KMeansConfig.k,
        seed: int = KMeansConfig.seed,
        method: str = "spectral",
        tagsCol: str = "tags",  # noqa: N803 (pyspark.ml's spelling)
        config: Config | None = None,
    ) -> None:
        super().__init__()
        raw = (config or Config()).to_dict()
        raw["kmeans"].update(k=k, seed=seed)
        raw["features"]["method"] = method
        self.config = build_config(raw)  # validated
        self.tagsCol = tagsCol

    def _fit(self, dataset: DataFrame) -> TagCategoriesModel:
        max_tags = self.config.tags.max_tags_per_post
        tags = F.coalesce(normalise_tags(F.col(self.tagsCol)), F.array().cast("array<string>"))
        posts = (
            dataset.select(cap_tags(tags, max_tags).alias("tags"))
            .filter(F.size("tags") > 0)
            .withColumn("_pos", F.monotonically_increasing_id())
        )
        with CacheScope() as cache:
            posts = cache(posts)
            fitted = fit_categories(posts, posts.count(), self.config, cache)
            summary = {
                "counts": fitted.counts,
                "generic_tags": fitted.generic,
                "empty_categories": fitted.empty,
                "features": fitted.fit.info,
                "kmeans": {"cost": fitted.fit.cost, "iterations": fitted.fit.iterations},
            }
        return TagCategoriesModel(fitted.model, fitted.pipeline, self.tagsCol, summary)


class TagCategoriesModel(Model):
    """Fitted categories as a pyspark.ml Model: ``transform(df)`` adds ``category_id`` and
    ``distance`` for the tags in ``tagsCol``; ``categories`` lists them, largest first;
    ``save``/``load`` write and read the model folder (:mod:`tagspark.model`), on any
    filesystem the session's Hadoop can reach."""

    def __init__(
        self,
        model: TagModel,
        pipeline: PipelineModel | None = None,
        tagsCol: str = "tags",  # noqa: N803
        summary: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.pipeline = pipeline
        self.tagsCol = tagsCol
        self.summary = summary or {}

    @property
    def categories(self) -> list[naming.Category]:
        return self.model.categories

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return transform(dataset, self.model, self.pipeline, self.tagsCol)

    def suggest(
        self,
        tags: list[str] | str,
        n: int = 15,
        prefer_in_band: bool = False,
        recommended_only: bool = False,
    ) -> dict[str, Any]:
        """Tags for one post (a list of tags, or text such as ``"#espresso #grinder"``),
        normalised as the job does: :func:`tagspark.suggest.suggest`, the ranking that
        ``tagspark suggest`` and ``suggest --input`` give. No Spark job runs."""
        from tagspark import suggest

        found = suggest.post_tags(self.model, tags if isinstance(tags, str) else list(tags))
        return suggest.suggest(self.model, found, n, prefer_in_band, recommended_only)

    def save(self, path: str) -> None:
        from pyspark.sql import SparkSession

        save_model(SparkSession.active(), self.model, self.pipeline, path)

    @classmethod
    def load(cls, path: str, tagsCol: str = "tags") -> TagCategoriesModel:  # noqa: N803
        from pyspark.sql import SparkSession

        model, pipeline = load_model(SparkSession.active(), path)
        return cls(model, pipeline, tagsCol)


def save_model(spark, model: TagModel, pipeline: PipelineModel | None, folder: str) -> None:
    """Write ``model`` (and the tfidf ``pipeline``) into ``folder`` through the Hadoop
    FileSystem API."""
    from tagspark.storage import Storage, as_uri, join

    storage = Storage(spark)
    uri = as_uri(folder)
    model.save(uri, lambda name, data: storage.write_bytes(join(uri, name), data))
    if pipeline is not None:
        pipeline.write().overwrite().save(join(uri, PIPELINE))


def load_model(spark, folder: str) -> tuple[TagModel, PipelineModel | None]:
    """The model in ``folder`` (a model folder, or a cluster output holding one) and, for
    tfidf, its Spark pipeline."""
    from tagspark.storage import Storage, as_uri, join

    storage = Storage(spark)
    uri = as_uri(folder)
    if not storage.exists(join(uri, "model.json")) and storage.exists(
        join(uri, "model", "model.json")
    ):
        uri = join(uri, "model")

    def read(name: str) -> bytes:
        path = join(uri, name)
        if not storage.exists(path):
            raise FileNotFoundError(path)
        return storage.read_bytes(path)

    model = TagModel.load(uri, read)
    pipeline = PipelineModel.load(join(uri, PIPELINE)) if model.method == "tfidf" else None
    return model, pipeline
