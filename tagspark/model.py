"""The fitted categories as a model: everything needed to place a post without the corpus,
saved in open formats (Parquet and JSON, readable with pyarrow alone) and loaded without
Spark.

A model folder (``model/`` in every output of ``tagspark cluster``)::

    model.json             method, distance measure, tag rules, posts, excluded and generic
                           tags, config, versions
    vocabulary.parquet     tag, df, idf, feature (column in the features, -1: none), generic,
                           projection (the tag's row of the embedding's basis; spectral, svd)
    centres.parquet        category_id, centre (k-means centre in the embedding; spectral, svd)
    category_tags.parquet  category_id, tag_index, weight, tag, posts: every (category, tag)
                           that occurs, the categories' centres in tag space
    placing.parquet        category_id, tag_index, weight: the centres that place posts with no
                           feature tag (only when such posts existed)
    categories.parquet     id, name, leading_tags, size, tags (ranked, with popularity)
    tags.parquet           tag, posts, share, top category, specificity, generic, popularity,
                           band, recommended (:mod:`tagspark.popularity`)
    pipeline/              the Spark PipelineModel (tfidf only: HashingTF, IDF, KMeans)
    metadata.json          the run that fitted it: counts, timings, evaluation

Placing a post (:meth:`TagModel.place`), in this order, exactly as the job placed the corpus:

1. ``spectral``/``svd``: the nearest k-means centre of the post's embedding; ``tfidf``: the
   category the Spark pipeline gives it. A post with no feature tag has none.
2. A post without one goes to the category whose centre in tag space weighs its tags most
   (``placing``), else to ``mixed``.
3. A post whose every vocabulary tag is generic goes to ``mixed``.
4. Its distance is to its category's centre in tag space (``category_tags``).
"""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tagspark.centres import MIXED_ID, TagCentres, embed_sets, nearest_centres, only_generic
from tagspark.codec import pack_sets, tag_values
from tagspark.errors import InputError
from tagspark.naming import Category, RankedTag
from tagspark.popularity import TagStats

FORMAT = "tagspark-model"
VERSION = 1
EMBEDDING_METHODS = ("spectral", "svd")
PIPELINE = "pipeline"


@dataclass
class TagModel:
    """A fitted model (see the module docstring), held in numpy arrays.

    ``tags``, ``df`` and ``idf`` are the vocabulary (most frequent first); ``column`` is each
    vocabulary tag's column in the features (-1: not a feature); ``centres`` are the final
    categories in tag space and ``cell_posts`` the posts of each of their cells;
    ``generic`` the generic tags' vocabulary indices; ``settings`` the tag rules, config and
    versions. ``projection`` (feature tags x dims) and ``kmeans_centres`` (k x dims) exist
    for ``spectral``/``svd``; ``excluded`` are the tags the ``tfidf`` pipeline left out;
    ``stats`` are the tags' statistics and popularity band (``tags.parquet``).
    """

    method: str
    distance_measure: str
    n_posts: int
    tags: tuple[str, ...]
    df: np.ndarray
    idf: np.ndarray
    column: np.ndarray
    centres: TagCentres
    cell_posts: np.ndarray
    generic: np.ndarray
    categories: list[Category]
    projection: np.ndarray | None = None
    kmeans_centres: np.ndarray | None = None
    placing: TagCentres | None = None
    excluded: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    stats: TagStats | None = None

    @cached_property
    def position(self) -> dict[str, int]:
        """Each vocabulary tag's index."""
        return {t: i for i, t in enumerate(self.tags)}

    @cached_property
    def by_id(self) -> dict[int, Category]:
        return {c.id: c for c in self.categories}

    @cached_property
    def named_centres(self) -> TagCentres:
        """The centres in tag space of the named categories (``mixed`` left out)."""
        named = self.centres.category != MIXED_ID
        return TagCentres(
            self.centres.category[named], self.centres.idx[named], self.centres.weight[named]
        )

    def pack(self, posts: list[list[str]]) -> tuple[pa.BinaryArray, list[list[str]]]:
        """Posts' (normalised) tags as packed vocabulary indices, and each post's tags the
        model does not know."""
        values, rows, unknown = [], [], []
        for row, tags in enumerate(posts):
            known = sorted({self.position[t] for t in tags if t in self.position})
            values += known
            rows += [row] * len(known)
            unknown.append([t for t in tags if t not in self.position])
        packed = pack_sets(
            np.array(values, dtype=np.int64), np.array(rows, dtype=np.int64), len(posts)
        )
        return packed, unknown

    def embedded(self, packed: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """The embeddings of packed sets and which have a feature tag (spectral, svd)."""
        return embed_sets(packed, self.projection, self.idf, self.column)

    def category_of(
        self, packed: pa.Array, kmeans_category: np.ndarray | None = None
    ) -> np.ndarray:
        """Steps 1-3 of the module docstring for a packed ``idx`` column; ``kmeans_category``
        is the tfidf pipeline's category of each row (without it, as in ``suggest``, a
        ``tfidf`` post goes to the category whose centre in tag space weighs its tags most)."""
        return self._category_of(packed, tag_values(packed, self.idf), kmeans_category)

    def place(
        self, packed: pa.Array, kmeans_category: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each packed set's category (:meth:`category_of`) and distance to its centre."""
        values = tag_values(packed, self.idf)  # decoded once for both
        category = self._category_of(packed, values, kmeans_category)
        distance = self.centres.distance(*values, category, len(packed), self.distance_measure)
        return category, distance

    def _category_of(
        self, packed: pa.Array, values: tuple, kmeans_category: np.ndarray | None
    ) -> np.ndarray:
        """:meth:`category_of`, given the sets' :func:`tag_values`."""
        n_rows = len(packed)
        idx, rows, x = values
        if self.method in EMBEDDING_METHODS:
            v, placed = self.embedded(packed)
            nearest = nearest_centres(v, self.kmeans_centres, self.distance_measure)
            category = np.where(placed, nearest, MIXED_ID).astype(np.int64)
        elif kmeans_category is not None:
            has_tag = np.bincount(rows, minlength=n_rows) > 0
            category = np.where(has_tag, kmeans_category, MIXED_ID).astype(np.int64)
        else:  # tfidf without Spark to hash the post: the centre that weighs its tags most
            category = self.named_centres.best(idx, rows, x, n_rows)
        if self.placing is not None and (category == MIXED_ID).any():
            best = self.placing.best(idx, rows, x, n_rows)
            category = np.where(category == MIXED_ID, best, category)
        if len(self.generic):
            category[only_generic(idx, rows, n_rows, self.generic)] = MIXED_ID
        return category

    # -- files ------------------------------------------------------------------------------

    def save(self, folder: str, write=None) -> None:
        """Write the model's files into ``folder``; ``write(name, bytes)`` writes one file
        (default: local files, the folder created)."""
        write = write or _local_writer(folder)
        feature = self.column.astype(np.int32)
        vocabulary = {
            "tag": pa.array(self.tags, pa.string()),
            "df": pa.array(self.df, pa.int64()),
            "idf": pa.array(self.idf, pa.float64()),
            "feature": pa.array(feature),
            "generic": pa.array(np.isin(np.arange(len(self.tags)), self.generic)),
        }
        if self.projection is not None:
            rows = np.where(feature >= 0, feature, 0)
            vocabulary["projection"] = _vectors(self.projection[rows], feature < 0)
            centres = pa.table(
                {
                    "category_id": pa.array(np.arange(len(self.kmeans_centres)), pa.int32()),
                    "centre": _vectors(self.kmeans_centres),
                }
            )
            write("centres.parquet", parquet_bytes(centres))
        write("vocabulary.parquet", parquet_bytes(pa.table(vocabulary)))
        tags = pa.array(self.tags, pa.string())
        cells = _centres_table(self.centres).append_column(
            "tag", tags.take(pa.array(self.centres.idx))
        )
        cells = cells.append_column("posts", pa.array(self.cell_posts, pa.int64()))
        write("category_tags.parquet", parquet_bytes(cells))
        if self.placing is not None:
            write("placing.parquet", parquet_bytes(_centres_table(self.placing)))
        write("categories.parquet", parquet_bytes(categories_table(self.categories)))
        if self.stats is not None:
            names = {c.id: c.name for c in self.categories}
            write("tags.parquet", parquet_bytes(self.stats.table(names)))
        about = {
            "format": FORMAT,
            "version": VERSION,
            "method": self.method,
            "distance_measure": self.distance_measure,
            "posts": self.n_posts,
            "vocabulary": len(self.tags),
            "dims": None if self.projection is None else int(self.projection.shape[1]),
            "excluded_tags": list(self.excluded),
            "generic_tags": [self.tags[i] for i in self.generic],
            **self.settings,
        }
        write("model.json", (json.dumps(about, indent=2, ensure_ascii=False) + "\n").encode())

    @classmethod
    def load(cls, folder: str, read=None) -> TagModel:
        """The model saved in ``folder``; ``read(name) -> bytes`` reads one file (default:
        local files).

        Raises
        ------
        InputError
            ``folder`` holds no tagspark model, or one of another format version.
        """
        read = read or _local_reader(folder)
        try:
            about = json.loads(read("model.json"))
        except FileNotFoundError:
            raise InputError(
                f"'{folder}' holds no tagspark model (no model.json); give the model/ folder "
                "of a tagspark cluster output, or the output folder itself"
            ) from None
        if about.get("format") != FORMAT or about.get("version") != VERSION:
            raise InputError(
                f"'{folder}' holds a model of format {about.get('format')!r} version "
                f"{about.get('version')!r}; this tagspark reads {FORMAT!r} version {VERSION}"
            )
        vocabulary = _table(read("vocabulary.parquet"))
        tags = tuple(vocabulary.column("tag").to_pylist())
        column = vocabulary.column("feature").to_numpy().astype(np.int64)
        cells = _table(read("category_tags.parquet"))
        projection = kmeans_centres = placing = None
        if about["method"] in EMBEDDING_METHODS:
            projection = np.zeros((int(column.max(initial=-1)) + 1, about["dims"]))
            rows = column >= 0
            projection[column[rows]] = _matrix(vocabulary.column("projection").filter(rows))
            kmeans_centres = _matrix(_table(read("centres.parquet")).column("centre"))
        with contextlib.suppress(FileNotFoundError):
            placing = _centres_from(_table(read("placing.parquet")))
        known = {"format", "version", "method", "distance_measure", "posts", "vocabulary"}
        known |= {"dims", "excluded_tags", "generic_tags"}
        settings = {k: v for k, v in about.items() if k not in known}
        return cls(
            method=about["method"],
            distance_measure=about["distance_measure"],
            n_posts=about["posts"],
            tags=tags,
            df=vocabulary.column("df").to_numpy(),
            idf=vocabulary.column("idf").to_numpy(),
            column=column,
            centres=_centres_from(cells),
            cell_posts=cells.column("posts").to_numpy(),
            generic=np.flatnonzero(vocabulary.column("generic").to_numpy(zero_copy_only=False)),
            categories=categories_from(_table(read("categories.parquet"))),
            projection=projection,
            kmeans_centres=kmeans_centres,
            placing=placing,
            excluded=tuple(about["excluded_tags"]),
            settings=settings,
            stats=TagStats.from_table(
                _table(read("tags.parquet")), tags, settings.get("popularity_source", "")
            ),
        )


CATEGORY_FIELDS = pa.struct(
    [
        ("tag", pa.string()),
        ("weight", pa.float64()),
        ("posts", pa.int64()),
        ("popularity", pa.int64()),
        ("popularity_source", pa.string()),
        ("band", pa.string()),
        ("specificity", pa.float64()),
        ("recommended", pa.bool_()),
    ]
)


def categories_table(categories: list[Category]) -> pa.Table:
    """``id, name, leading_tags, size, tags`` (the ranked tags as structs), largest first."""
    return pa.table(
        {
            "id": pa.array([c.id for c in categories], pa.int32()),
            "name": pa.array([c.name for c in categories], pa.string()),
            "leading_tags": pa.array([list(c.leading_tags) for c in categories]),
            "size": pa.array([c.size for c in categories], pa.int64()),
            "tags": pa.array(
                [[t.to_dict() for t in c.tags] for c in categories], pa.list_(CATEGORY_FIELDS)
            ),
        }
    )


def categories_from(table: pa.Table) -> list[Category]:
    return [
        Category(
            row["id"],
            row["name"],
            tuple(row["leading_tags"]),
            row["size"],
            tuple(RankedTag(**t) for t in row["tags"]),
        )
        for row in table.to_pylist()
    ]


def model_folder(path: str) -> str:
    """``path`` itself, or its ``model/`` folder when ``path`` is a whole cluster output."""
    local = Path(path)
    if not (local / "model.json").is_file() and (local / "model" / "model.json").is_file():
        return str(local / "model")
    return path


def _centres_table(centres: TagCentres) -> pa.Table:
    return pa.table(
        {
            "category_id": pa.array(centres.category, pa.int32()),
            "tag_index": pa.array(centres.idx, pa.int32()),
            "weight": pa.array(centres.weight, pa.float64()),
        }
    )


def _centres_from(table: pa.Table) -> TagCentres:
    return TagCentres(
        table.column("category_id").to_numpy().astype(np.int64),
        table.column("tag_index").to_numpy().astype(np.int64),
        table.column("weight").to_numpy(),
    )


def _vectors(matrix: np.ndarray, null: np.ndarray | None = None) -> pa.ListArray:
    """The rows of ``matrix`` as a list<double> column (null where ``null``)."""
    n, dims = matrix.shape
    offsets = pa.array(np.arange(n + 1, dtype=np.int32) * dims)
    values = pa.array(np.ascontiguousarray(matrix, dtype=np.float64).ravel())
    mask = None if null is None else pa.array(null)
    return pa.ListArray.from_arrays(offsets, values, mask=mask)


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    """A list<double> column of equal-length rows as a matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(array)
    values = array.flatten().to_numpy()
    return values.reshape(n, len(values) // n if n else 0)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _table(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def _local_writer(folder: str):
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)

    return write


def _local_reader(folder: str):
    root = Path(folder)

    def read(name: str) -> bytes:
        return (root / name).read_bytes()

    return read
