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
import difflib
import json
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark import keyword_only
from pyspark.ml import Estimator, Model, PipelineModel
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Params
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StructField, StructType

from tagspark import categories as cat
from tagspark import generic, naming, popularity
from tagspark.centres import MIXED_ID, TagCentres, tag_weights
from tagspark.clustering import Fit, fit
from tagspark.codec import lists
from tagspark.config import Config
from tagspark.errors import ConfigError, OutputError
from tagspark.model import GENERIC_LED, PIPELINE, TagModel, find_model
from tagspark.naming import MIXED_NAME, category_names
from tagspark.neighbours import anchors, tag_neighbours
from tagspark.params import TagCategoriesParams
from tagspark.session import note_user_session
from tagspark.stages import CacheScope, Shipped
from tagspark.tags import cap_tags, normalise_tags
from tagspark.vocabulary import (
    LOOKUP_VALUES_PER_TAG,
    TagSets,
    Vocabulary,
    gathered_batches,
    packed_tags,
    tag_sets,
    with_tag_sets,
)

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
        if generic_idx and _generic_led_possible(fitted, generic_idx):
            groups, cells, placing = _placed_past_generic(
                groups, sets, fitted, generic_idx, counts, cache
            )
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
        # the suggest.max_tags most frequent tags, generic ones left out: a walk through
        # #love goes anywhere
        left_out = [*fitted.excluded, *generic_names]
        given = sets.vocabulary.mask(left_out, cfg.suggest.max_tags)
        model.neighbours = tag_neighbours(
            sets.sets, sets.vocabulary.df, given, cfg.suggest.neighbours, cfg.suggest.walk
        )
        log.info(
            "neighbours: %d companions of %d tags (at most %d a tag)",
            len(model.neighbours),
            int(given.sum()),
            model.neighbours.most_per_tag(),
        )
        # every other tag of the posts (seen once, or past max_tags) goes with its anchor
        rare = sets.vocabulary.mask(left_out) & ~given
        model.rare = anchors(sets.unknown, given, rare, sets.vocabulary)
        log.info("rare tags: %d, each with an anchor", len(model.rare))
    counts.pop("left_unplaced", None)  # part of mixed
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
    counts["placed_by_tags"] = counts["left_unplaced"] = 0
    if not unplaced:
        return groups, cells, None
    placing = TagCentres.of(cells, tag_weights(cells, cells.sizes), placed_only=True)
    if fitted.embedding is not None:
        # a set placed by its tags has no feature tag: only the others' cells can score
        placing = _restricted(placing, fitted.embedding.column < 0)
    groups = cache(cat.with_sets_placed_by_tags(groups, placing, idf))
    cells = cat.category_cells(groups, idf)
    counts["placed_by_tags"] = unplaced - cells.sizes.get(MIXED_ID, 0)
    counts["left_unplaced"] = cells.sizes.get(MIXED_ID, 0)
    log.info(
        "%d posts with no feature tag placed by their rarer tags, %d left for mixed",
        counts["placed_by_tags"],
        unplaced - counts["placed_by_tags"],
    )
    return groups, cells, placing


def _generic_led_possible(fitted: Fit, generic_idx: list[int]) -> bool:
    """Whether a set can have a tag that is neither generic nor a feature (embedding methods
    only): only then can its feature tags be generic alone."""
    if fitted.embedding is None:
        return False
    other = fitted.embedding.column < 0
    other[generic_idx] = False
    return bool(other.any())


def _placed_past_generic(
    groups: DataFrame,
    sets: TagSets,
    fitted: Fit,
    generic_idx: list[int],
    counts: dict[str, int],
    cache: CacheScope,
) -> tuple[DataFrame, cat.Cells, TagCentres | None]:
    """:func:`place_by_tags` once more, now that the generic tags are known, for every set
    whose feature tags are all generic (:func:`tagspark.centres.generic_led`): its
    embedding is its generic tags' alone, the same point for all of them, and k-means gathers
    them into one catch-all category that looks like a topic. They are placed by their other
    tags, as sets without a feature tag are (those are placed again too, by centres that no
    longer hold the catch-all's posts); a set none of whose tags any category holds goes to
    mixed. ``counts["generic_led"]``: the posts whose feature tags were all generic."""
    before = counts["placed_by_tags"] + counts["left_unplaced"]
    generic = np.asarray(generic_idx, dtype=np.int64)
    unplaced = cat.with_generic_led_sets_unplaced(groups, fitted.embedding.column, generic)
    groups, cells, placing = place_by_tags(cache(unplaced), sets, fitted, counts, cache)
    counts["generic_led"] = counts["placed_by_tags"] + counts["left_unplaced"] - before
    log.info(
        "%d posts whose feature tags are all generic placed by their other tags",
        counts["generic_led"],
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
            GENERIC_LED: embedding is not None,
        },
    )


# -- on Spark -------------------------------------------------------------------------------


def categorised(
    posts: DataFrame,
    model: TagModel,
    kmeans_col: str | None = None,
    embedding_col: str = "",
) -> DataFrame:
    """``posts`` (with a packed ``idx`` column; for tfidf, the pipeline's category in
    ``kmeans_col``) with ``category_id`` and ``distance`` (:meth:`TagModel.place`), and with
    ``embedding_col`` their embedding (:meth:`TagModel.embedded`; null when the embedding
    cannot place a set) as an array. A narrow map: the model, without its tag strings, travels
    with it (:class:`~tagspark.stages.Shipped`)."""
    slim = dataclasses.replace(model, tags=(), categories=[])
    shared = Shipped(slim)
    added = [("category_id", IntegerType()), ("distance", DoubleType())]
    if embedding_col:
        added.append((embedding_col, ArrayType(DoubleType())))
    schema = StructType([*posts.schema.fields, *(StructField(n, t) for n, t in added)])

    def place(batches):
        model = shared.value
        for batch in batches:
            kmeans = None
            if kmeans_col is not None:
                kmeans = batch.column(kmeans_col).fill_null(MIXED_ID).to_numpy()
            category, distance = model.place(batch.column("idx"), kmeans)
            columns = [pa.array(category.astype(np.int32)), pa.array(distance)]
            if embedding_col:
                columns.append(_rows_or_null(*model.embedded(batch.column("idx"))))
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, *columns], [*batch.schema.names, *(n for n, _ in added)]
            )

    return posts.mapInArrow(place, schema)


def _rows_or_null(v: np.ndarray, keep: np.ndarray) -> pa.ListArray:
    """The rows of ``v`` as a list array, null where ``keep`` is False."""
    n, dims = v.shape
    offsets = pa.array(np.arange(0, (n + 1) * dims, dims, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(v.ravel()), mask=pa.array(~keep))


def transform(
    df: DataFrame,
    model: TagModel,
    pipeline: PipelineModel | None,
    tags_col: str = "tags",
    embedding_col: str = "",
    keep_idx: bool = False,
) -> DataFrame:
    """``df`` with ``category_id`` and ``distance`` for its tags (``tags_col``, an
    array of strings, normalised and capped as the job does); with ``embedding_col``, the
    post's embedding there (a vector: the spectral or svd embedding, null without a feature
    tag; for tfidf, the pipeline's TF-IDF vector); with ``keep_idx``, also the packed
    vocabulary indices of its tags (``idx``)."""
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
        with_tags = pipeline.transform(with_tags)
        if embedding_col:  # the TF-IDF vector, k-means' features
            with_tags = with_tags.withColumnRenamed(outputs[-2], embedding_col)
        with_tags = with_tags.drop(*outputs[:-1], "_ts_features")
        kmeans_col = outputs[-1]
        scratch.append(kmeans_col)
    indexed = with_tag_sets(with_tags, vocabulary, "_ts_tags")
    embedded = embedding_col if pipeline is None else ""
    out = categorised(indexed, model, kmeans_col, embedded).drop(*scratch)
    if embedded:
        out = out.withColumn(embedded, array_to_vector(embedded))
    return out


# posts ranked at once by suggest --input (bounds the evidence arrays: a post's tags x
# suggest.neighbours entries each)
RANK_ROWS = 10_000


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
    know, and why it has no suggestions (or null). The model travels with the map."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from tagspark.suggest import SUGGESTION_FIELDS, ranked, why_none

    shared = Shipped(model)
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
        known = model.tag_array
        # pyarrow hashes the vocabulary and the rare tags on every look-up: batches are
        # gathered for it as the tag sets' are (tagspark.vocabulary.with_tag_sets), then
        # ranked RANK_ROWS posts at a time
        size = len(known) + (len(model.rare) if model.rare is not None else 0)
        for gathered in gathered_batches(batches, LOOKUP_VALUES_PER_TAG * size):
            tags = gathered.column("tags")
            flat = pc.list_flatten(tags)
            packed, hit = packed_tags(tags, known)
            rare_at = None
            if model.rare is not None:  # a rare tag is known by its anchor
                rare_at = model.rare.find(flat)
                hit = hit | (rare_at >= 0)
            offsets = tags.offsets.to_numpy() - tags.offsets[0].as_py()
            for start in range(0, len(tags), RANK_ROWS):
                stop = min(len(tags), start + RANK_ROWS)
                within = slice(offsets[start], offsets[stop])
                yield ranked_batch(
                    gathered.slice(start, stop - start),
                    packed.slice(start, stop - start),
                    hit[within],
                    None if rare_at is None else rare_at[within],
                )

    def ranked_batch(batch, packed, hit, rare_at):
        model = shared.value
        tags = batch.column("tags")
        category = model.category_of(packed).astype(np.int32)
        suggestions = ranked(
            model, packed, n, prefer_in_band, recommended_only, category, tags, rare_at
        )
        rows = pc.list_parent_indices(tags).to_numpy()
        flat = pc.list_flatten(tags)
        unknown = lists(flat.filter(pa.array(~hit)), rows[~hit], len(tags))
        has_tags = np.diff(tags.offsets.to_numpy()) > 0
        has_known = np.bincount(rows[hit], minlength=len(tags)) > 0
        empty = np.diff(suggestions.offsets.to_numpy()) == 0
        message = why_none(has_tags, has_known, category, recommended_only)
        return pa.RecordBatch.from_arrays(
            [
                batch.column("id").cast(pa.string()),
                pa.array(category),
                category_names(model.categories, category, MIXED_NAME),
                suggestions,
                unknown,
                pa.array(np.where(empty, message, None), pa.string()),
            ],
            schema=out,
        )

    return posts.select("id", "tags").mapInArrow(run, from_arrow_schema(out))


class TagCategories(TagCategoriesParams, Estimator, DefaultParamsReadable, DefaultParamsWritable):
    """The fit as a pyspark.ml Estimator. ``fit(df)`` takes a DataFrame with a tags column
    (``tagsCol``, an array of strings: raw tags, normalised as the job does; rows with none
    are left out) and returns a :class:`TagCategoriesModel`.

    Every setting is a Param (:data:`tagspark.params.SETTINGS`: one per config key, e.g.
    ``k`` is ``kmeans.k``), with ``getX``/``setX``; :meth:`from_config` sets them all from
    a config file's :class:`~tagspark.config.Config`.

    Examples
    --------
    >>> est = TagCategories(k=5, seed=1)
    >>> est.copy({est.k: 7}).getK(), est.getPredictionCol()
    (7, 'category_id')
    """

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> TagCategories:  # noqa: N802 (pyspark.ml's spelling)
        """Set Params by name; an unknown name or a value out of range raises here."""
        _check_names(self, kwargs)
        self._set(**kwargs)
        self.config()  # validated now, not at fit
        return self

    @classmethod
    def from_config(cls, cfg: Config, **kwargs: Any) -> TagCategories:
        """An Estimator with every Param from ``cfg`` (e.g. ``load_config("conf/x.toml")``),
        then ``kwargs``."""
        return cls()._set_config(cfg).setParams(**kwargs)

    def _fit(self, dataset: DataFrame) -> TagCategoriesModel:
        config = self.config()
        note_user_session(dataset.sparkSession)
        tags = F.coalesce(normalise_tags(F.col(self.getTagsCol())), F.array().cast("array<string>"))
        posts = (
            dataset.select(cap_tags(tags, config.tags.max_tags_per_post).alias("tags"))
            .filter(F.size("tags") > 0)
            .withColumn("_pos", F.monotonically_increasing_id())
        )
        with CacheScope() as cache:
            posts = cache(posts)
            fitted = fit_categories(posts, posts.count(), config, cache)
            summary = {
                "counts": fitted.counts,
                "generic_tags": fitted.generic,
                "empty_categories": fitted.empty,
                "features": fitted.fit.info,
                "kmeans": {"cost": fitted.fit.cost, "iterations": fitted.fit.iterations},
            }
        model = TagCategoriesModel(fitted.model, fitted.pipeline, plain(summary))
        return self._copyValues(model)


def _check_names(stage: Params, kwargs: dict[str, Any]) -> None:
    names = [p.name for p in stage.params]
    for name in kwargs:
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{type(stage).__name__} has no Param '{name}'{hint}")


class TagCategoriesModel(TagCategoriesParams, Model, MLReadable, MLWritable):
    """Fitted categories as a pyspark.ml Model: ``transform(df)`` adds ``predictionCol``
    (``category_id``) and ``distanceCol`` (``distance``) for the tags in ``tagsCol``
    (and the post's embedding in ``embeddingCol``, when set); ``categories`` lists them,
    largest first; ``suggest`` ranks tags for one post.

    ``write().save(path)`` (``overwrite()`` to replace) writes the model folder that
    ``tagspark suggest|assign|search|report`` read (:mod:`tagspark.model`) with the Params
    beside it in ``metadata/``, on any filesystem the session's storage reaches
    (:func:`tagspark.storage.storage_for`);
    ``TagCategoriesModel.load`` reads it, or the model of a ``tagspark cluster`` output, or
    a saved PipelineModel holding one. The Params it was fitted with are its own.
    """

    def __init__(
        self,
        model: TagModel | None = None,
        pipeline: PipelineModel | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.pipeline = pipeline
        self.summary = summary or {}

    @property
    def categories(self) -> list[naming.Category]:
        return self.model.categories

    def _transform(self, dataset: DataFrame) -> DataFrame:
        out = transform(
            dataset, self.model, self.pipeline, self.getTagsCol(), self.getEmbeddingCol()
        )
        renamed = {"category_id": self.getPredictionCol(), "distance": self.getDistanceCol()}
        return out.withColumnsRenamed({k: v for k, v in renamed.items() if k != v})

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

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _ModelReader(cls)


class _ModelWriter(MLWriter):
    """The model folder (:func:`save_model`), then the Params in ``metadata/`` as
    pyspark.ml's DefaultParamsWriter writes them (with the fit's summary)."""

    def __init__(self, instance: TagCategoriesModel) -> None:
        super().__init__()
        self.instance = instance

    def save(self, path: str) -> None:
        from tagspark.storage import as_uri, storage_for

        storage, uri = storage_for(self.sparkSession), as_uri(path)
        if storage.exists(uri):
            if not self.shouldOverwrite:
                raise OutputError(
                    f"'{path}' exists already; use write().overwrite().save(path) to replace it"
                )
            storage.delete(uri)
        self.saveImpl(path)

    def saveImpl(self, path: str) -> None:  # noqa: N802
        from tagspark.storage import as_uri

        uri = as_uri(path)  # one folder for both, as Python sees a relative path
        save_model(self.sparkSession, self.instance.model, self.instance.pipeline, uri)
        extra = {"summary": self.instance.summary}
        DefaultParamsWriter.saveMetadata(self.instance, uri, self.sparkSession, extra)


class _ModelReader(MLReader):
    """A model folder (with or without ``metadata/``), a cluster output or a saved
    PipelineModel holding one: :func:`load_model`, and the Params of ``metadata/`` (else
    those of the config the model was fitted with)."""

    def __init__(self, cls: type[TagCategoriesModel]) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> TagCategoriesModel:
        from tagspark.storage import join, storage_for

        model, pipeline, folder = load_model(self.sparkSession, path, with_folder=True)
        instance = self.cls(model, pipeline)
        instance._set_config(model.settings.get("config", {}))
        if storage_for(self.sparkSession).exists(join(folder, "metadata")):  # a URI already
            metadata = DefaultParamsReader.loadMetadata(folder, self.sparkSession)
            DefaultParamsReader.getAndSetParams(instance, metadata)
            instance._resetUid(metadata["uid"])
            instance.summary = metadata.get("summary", {})
        return instance


def plain(value: Any) -> Any:
    """``value`` with numpy numbers as Python ones (JSON-able)."""

    def number(v: Any) -> Any:
        return v.item() if hasattr(v, "item") else str(v)

    return json.loads(json.dumps(value, default=number))


def save_model(spark, model: TagModel, pipeline: PipelineModel | None, folder: str) -> None:
    """Write ``model`` (and the tfidf ``pipeline``) into ``folder`` through the session's
    storage (:func:`tagspark.storage.storage_for`)."""
    from tagspark.storage import as_uri, join, storage_for

    storage = storage_for(spark)
    uri = as_uri(folder)
    model.save(uri, lambda name, data: storage.write_bytes(join(uri, name), data))
    if pipeline is not None:
        pipeline.write().overwrite().save(join(uri, PIPELINE))


def load_model(
    spark, folder: str, with_folder: bool = False
) -> tuple[TagModel, PipelineModel | None] | tuple[TagModel, PipelineModel | None, str]:
    """The model in ``folder`` (a model folder, a cluster output holding one, or a saved
    PipelineModel with a :class:`TagCategoriesModel` stage: :func:`~tagspark.model.find_model`)
    and, for tfidf, its Spark pipeline; with ``with_folder``, also the model folder's URI."""
    from tagspark.storage import as_uri, join, storage_for

    storage = storage_for(spark)

    def stages(uri: str) -> list[str]:
        return [e.uri for e in storage.list(uri) if e.is_dir]

    uri = find_model(as_uri(folder), lambda name: storage.exists(name), stages, join)

    def read(name: str) -> bytes:
        path = join(uri, name)
        if not storage.exists(path):
            raise FileNotFoundError(path)
        return storage.read_bytes(path)

    model = TagModel.load(uri, read)
    pipeline = PipelineModel.load(join(uri, PIPELINE)) if model.method == "tfidf" else None
    return (model, pipeline, uri) if with_folder else (model, pipeline)
