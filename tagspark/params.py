"""The fit's settings as pyspark.ml Params: one table, :data:`SETTINGS`, maps each config
key (``conf/tagspark.toml``, ``--set section.key=value``) onto one Param of
:class:`~tagspark.estimator.TagCategories` and its model, with the config's default, type
and check.

The Params are made from the table (as pyspark's own ``param/shared.py`` is generated from
one), each with ``getX`` and ``setX``; pyspark's shared Params (``k``... ``seed``,
``maxIter``, ``tol``, ``distanceMeasure``, ``solver``, ``predictionCol``) keep their own
class. The README's table of the mapping is :func:`settings_table`, and a test keeps the two
equal. Keys of ``[input]``, ``[output]``, ``[spark]`` and the ``--k auto`` sweep
(:data:`JOB_ONLY`) describe a run of the job, not a fit, and have no Param.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasDistanceMeasure,
    HasMaxIter,
    HasPredictionCol,
    HasSeed,
    HasSolver,
    HasTol,
)

from tagspark.config import Config, build_config
from tagspark.errors import ConfigError


@dataclass(frozen=True)
class Setting:
    """A Param (``param``) and the config key it is (``key``, ``section.name``)."""

    param: str
    key: str
    doc: str

    @property
    def default(self) -> Any:
        section, name = self.key.split(".")
        value = getattr(getattr(Config(), section), name)
        return list(value) if isinstance(value, tuple) else value


SETTINGS: tuple[Setting, ...] = (
    Setting("k", "kmeans.k", "number of categories, at least 2"),
    Setting("seed", "kmeans.seed", "random seed of the embedding and k-means"),
    Setting("method", "features.method", "features: spectral, svd or tfidf"),
    Setting("dims", "features.dims", "embedding dimensions; 0 = k within 8..24"),
    Setting("powerIterations", "features.power_iterations", "power-method iterations"),
    Setting("numFeatures", "features.num_features", "HashingTF buckets (tfidf), a power of 2"),
    Setting("minDocFreq", "features.min_doc_freq", "tags in fewer posts are not features"),
    Setting("maxTags", "features.max_tags", "the features' most frequent tags (0 = all)"),
    Setting("matrix", "features.matrix", "the tags x tags matrix: auto, driver, distributed"),
    Setting("maxTagsPerPost", "tags.max_tags_per_post", "a post keeps its first N tags"),
    Setting("maxIter", "kmeans.max_iter", "k-means iterations at most"),
    Setting("tol", "kmeans.tol", "k-means convergence tolerance"),
    Setting("initMode", "kmeans.init_mode", "k-means start: k-means|| or random"),
    Setting("initSteps", "kmeans.init_steps", "steps of k-means||"),
    Setting("fitSets", "kmeans.fit_sets", "distinct tag sets the centres are fitted on (0 = all)"),
    Setting("distanceMeasure", "kmeans.distance_measure", "euclidean or cosine"),
    Setting("solver", "kmeans.solver", "MLlib's k-means solver: auto, row or block"),
    Setting("detectGeneric", "generic.detect", "find generic tags (#love) by their spread"),
    Setting("genericMinShare", "generic.min_share", "an extra floor: generic tags' share of posts"),
    Setting("genericMinSpread", "generic.min_spread", "a generic tag's spread against chance's"),
    Setting("genericTags", "generic.tags", "tags always treated as generic"),
    Setting("excludeGeneric", "generic.exclude_from_features", "fit again without generic tags"),
    Setting("nameTags", "naming.name_tags", "leading tags in a category's name"),
    Setting("tagsPerCategory", "naming.tags_per_category", "ranked tags a category lists"),
    Setting("popularityFile", "popularity.file", "CSV or JSON Lines of tag,posts on the network"),
    Setting("networkPosts", "popularity.network_posts", "posts on the network, for estimates"),
    Setting("minPosts", "popularity.min_posts", "the popularity band's lower end"),
    Setting("maxPosts", "popularity.max_posts", "the popularity band's upper end"),
    Setting("minSpecificity", "popularity.min_specificity", "a recommended tag's specificity"),
    Setting("neighbours", "suggest.neighbours", "companions each tag keeps for suggest"),
    Setting("walk", "suggest.walk", "weight of suggest's two-step walk, 0..1"),
    Setting("maxSuggestTags", "suggest.max_tags", "top tags given companions (0 = all)"),
)  # fmt: skip

# config keys with no Param: they describe a run of the job (its input, output and Spark),
# and --k auto's sweep, which in Python is pyspark.ml.tuning over k
JOB_ONLY = ("input", "output", "spark", "kmeans.auto_k", "kmeans.k_range", "kmeans.k_points",
            "kmeans.sample_posts")  # fmt: skip

_BY_KEY = {s.key: s for s in SETTINGS}
_SHARED = (HasSeed, HasMaxIter, HasTol, HasDistanceMeasure, HasSolver, HasPredictionCol)


def _converter(default: Any):
    if isinstance(default, bool):
        return TypeConverters.toBoolean
    if isinstance(default, int):
        return TypeConverters.toInt
    if isinstance(default, float):
        return TypeConverters.toFloat
    if isinstance(default, list):
        return TypeConverters.toListString
    return TypeConverters.toString


def _cap(name: str) -> str:
    return name[0].upper() + name[1:]


class TagCategoriesParams(*_SHARED):
    """The Params of :class:`~tagspark.estimator.TagCategories` and its model: every
    :data:`SETTINGS` entry, plus the columns ``tagsCol`` (in), ``predictionCol`` and
    ``distanceCol`` (out) and ``embeddingCol`` (out, off by default)."""

    tagsCol: Param[str] = Param(
        Params._dummy(),
        "tagsCol",
        "the tags column: an array of strings, normalised as the job does",
        TypeConverters.toString,
    )
    distanceCol: Param[str] = Param(
        Params._dummy(),
        "distanceCol",
        "output column: the post's distance to its category's centre",
        TypeConverters.toString,
    )
    embeddingCol: Param[str] = Param(
        Params._dummy(),
        "embeddingCol",
        "output column of the post's embedding (a vector; tfidf: its TF-IDF vector) for "
        "a silhouette; '' for none",
        TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(
            tagsCol="tags", predictionCol="category_id", distanceCol="distance", embeddingCol=""
        )
        self._setDefault(**{s.param: s.default for s in SETTINGS})

    def getTagsCol(self) -> str:  # noqa: N802 (pyspark.ml's spelling, as every name here)
        return self.getOrDefault(self.tagsCol)

    def setTagsCol(self, value: str):  # noqa: N802
        return self._set(tagsCol=value)

    def getDistanceCol(self) -> str:  # noqa: N802
        return self.getOrDefault(self.distanceCol)

    def setDistanceCol(self, value: str):  # noqa: N802
        return self._set(distanceCol=value)

    def getEmbeddingCol(self) -> str:  # noqa: N802
        return self.getOrDefault(self.embeddingCol)

    def setEmbeddingCol(self, value: str):  # noqa: N802
        return self._set(embeddingCol=value)

    def setPredictionCol(self, value: str):  # noqa: N802
        return self._set(predictionCol=value)

    def config(self, base: Config | None = None) -> Config:
        """The validated :class:`~tagspark.config.Config` of these Params (the rest of
        ``base``, default the documented defaults).

        Raises
        ------
        ConfigError
            A Param out of range; the message names the Param and its config key.
        """
        raw = (base or Config()).to_dict()
        for s in SETTINGS:
            section, name = s.key.split(".")
            raw[section][name] = self.getOrDefault(s.param)
        try:
            return build_config(raw)
        except ConfigError as exc:
            raise ConfigError(_in_param_terms(str(exc))) from None

    def _set_config(self, cfg: Config | dict[str, dict[str, Any]]):
        """Set every Param from a config (a :class:`Config`, or its ``to_dict()``, keys it
        leaves out keep their Param)."""
        raw = cfg.to_dict() if isinstance(cfg, Config) else cfg
        values = {}
        for s in SETTINGS:
            section, name = s.key.split(".")
            if name in raw.get(section, {}):
                values[s.param] = raw[section][name]
        return self._set(**values)


def _getter(name: str):
    def get(self):
        return self.getOrDefault(name)

    get.__name__ = get.__qualname__ = f"get{_cap(name)}"
    get.__doc__ = f"The value of ``{name}`` (:data:`tagspark.params.SETTINGS`)."
    return get


def _setter(name: str):
    def set_(self, value):
        return self._set(**{name: value})

    set_.__name__ = set_.__qualname__ = f"set{_cap(name)}"
    set_.__doc__ = f"Set ``{name}`` (:data:`tagspark.params.SETTINGS`)."
    return set_


for _s in SETTINGS:
    if not hasattr(TagCategoriesParams, _s.param):
        setattr(
            TagCategoriesParams,
            _s.param,
            Param(Params._dummy(), _s.param, f"{_s.doc} ({_s.key})", _converter(_s.default)),
        )
    for _method in (_getter(_s.param), _setter(_s.param)):
        if _method.__name__ not in TagCategoriesParams.__dict__:
            setattr(TagCategoriesParams, _method.__name__, _method)
del _s, _method


def _in_param_terms(message: str) -> str:
    """A config error as the Params say it.

    >>> _in_param_terms("config key 'kmeans.k' must be at least 2, got 1")
    "Param 'k' (config key 'kmeans.k') must be at least 2, got 1"
    """

    def named(match: re.Match) -> str:
        setting = _BY_KEY.get(match[1])
        return f"Param '{setting.param}' (config key '{match[1]}')" if setting else match[0]

    return re.sub(r"config key '([\w.]+)'", named, message)


def settings_table() -> str:
    """The README's table: each config key, its Param and default (Markdown)."""
    rows = ["| config key (`--set`) | Param | default |", "|---|---|---|"]
    for s in SETTINGS:
        shown = repr(s.default) if isinstance(s.default, str) else str(s.default)
        rows.append(f"| `{s.key}` | `{s.param}` | `{shown}` |")
    return "\n".join(rows)


def config_keys() -> list[str]:
    """Every config key of :class:`Config`, as ``section.name``."""
    return [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(Config)
        for f in dataclasses.fields(section.default_factory())
    ]
