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
    neighbours.parquet     tag_index, neighbour_index, score, posts: each tag's companions
                           for suggest (:mod:`tagspark.neighbours`), by tag index
    rare.parquet           tag, anchor_index, posts, df: the tags with no companions (seen in
                           too few posts, or past suggest.max_tags), sorted by tag, each with
                           the companion-bearing tag it goes with most
                           (:class:`tagspark.neighbours.RareTags`; absent in older models)
    names.parquet          tag, index: the vocabulary sorted by tag, to find a post's tags
    categories.parquet     id, name, leading_tags, size, tags (ranked, with popularity)
    tags.parquet           tag, posts, share, top category, specificity, generic, popularity,
                           band, recommended (:mod:`tagspark.popularity`)
    pipeline/              the Spark PipelineModel (tfidf only: HashingTF, IDF, KMeans)
    metadata.json          the run that fitted it: counts, timings, evaluation

Placing a post (:meth:`TagModel.place`), in this order, exactly as the job placed the corpus:

1. ``spectral``/``svd``: the nearest k-means centre of the post's embedding; ``tfidf``: the
   category the Spark pipeline gives it. A post with no feature tag has none, nor has one
   whose feature tags are all generic and which has other tags (its embedding would be its
   generic tags' alone; ``generic_led_by_tags`` in ``model.json``, absent in older models).
2. A post without one goes to the category whose centre in tag space weighs its tags most
   (``placing``), else to ``mixed``.
3. A post whose every vocabulary tag is generic goes to ``mixed``.
4. Its distance is to its category's centre in tag space (``category_tags``).
"""

from __future__ import annotations

import bisect
import io
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tagspark.centres import (
    MIXED_ID,
    TagCentres,
    embed_sets,
    generic_led,
    nearest_centres,
    only_generic,
)
from tagspark.codec import pack_sets, tag_values
from tagspark.errors import InputError
from tagspark.naming import Category, RankedTag
from tagspark.neighbours import Neighbours, RareTags
from tagspark.popularity import TOO_POPULAR, TagStats

FORMAT = "tagspark-model"
# model.json's keys that TagModel reads itself; the others are its ``settings``
_MODEL_KEYS = frozenset(
    {"format", "version", "method", "distance_measure", "posts", "vocabulary", "dims"}
    | {"excluded_tags", "generic_tags", "placing", "centre_norm2", "rare_tags"}
)
VERSION = 2
# rows a row group of the files that one post's reader reads in part (TagModel.load_for):
# names.parquet (sorted by tag), vocabulary.parquet and tags.parquet (a tag a row, in
# vocabulary order), and the files of several rows a tag, by tag index
# (category_tags.parquet, placing.parquet, neighbours.parquet)
ROWS_PER_GROUP = 4096
CELL_ROWS_PER_GROUP = 8192
EMBEDDING_METHODS = ("spectral", "svd")
# model.json: a set whose feature tags are all generic is placed by its other tags, not by
# its embedding (tagspark.centres.generic_led); absent in models fitted before that rule
GENERIC_LED = "generic_led_by_tags"
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
    ``stats`` are the tags' statistics and popularity band (``tags.parquet``);
    ``neighbours`` each tag's companions (``neighbours.parquet``), ``rare`` the anchors of
    the tags without (``rare.parquet``; None for a model fitted before them).
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
    neighbours: Neighbours | None = None
    rare: RareTags | None = None
    # read in part, for one post (:meth:`load_for`): only its tags and their candidates
    partial: bool = False

    @cached_property
    def position(self) -> dict[str, int]:
        """Each vocabulary tag's index."""
        return {t: i for i, t in enumerate(self.tags)}

    @cached_property
    def tag_array(self) -> pa.StringArray:
        """The vocabulary as one Arrow array, built once a model rather than once a batch
        (1.6 million strings on a 2M-post long tail)."""
        return pa.array(self.tags, pa.string())

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
            if len(self.generic) and self.settings.get(GENERIC_LED):
                placed &= ~generic_led(idx, rows, n_rows, self.column, self.generic)
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
        tags = self.tag_array
        vocabulary = {
            "tag": tags,
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
        write("vocabulary.parquet", parquet_bytes(pa.table(vocabulary), ROWS_PER_GROUP))
        cells = _centres_table(self.centres).append_column(
            "tag", tags.take(pa.array(self.centres.idx))
        )
        cells = cells.append_column("posts", pa.array(self.cell_posts, pa.int64()))
        by_tag = [("tag_index", "ascending"), ("category_id", "ascending")]
        write("category_tags.parquet", parquet_bytes(cells.sort_by(by_tag), CELL_ROWS_PER_GROUP))
        if self.placing is not None:
            placing = _centres_table(self.placing).sort_by(by_tag)
            write("placing.parquet", parquet_bytes(placing, CELL_ROWS_PER_GROUP))
        write("categories.parquet", parquet_bytes(categories_table(self.categories)))
        if self.neighbours is not None:
            write(
                "neighbours.parquet",
                parquet_bytes(neighbours_table(self.neighbours), CELL_ROWS_PER_GROUP),
            )
        if self.rare is not None:
            write("rare.parquet", parquet_bytes(self.rare.table(), ROWS_PER_GROUP))
        if self.stats is not None:
            write("tags.parquet", parquet_bytes(self.stats.table(self.categories), ROWS_PER_GROUP))
        index = pa.table({"tag": tags, "index": pa.array(np.arange(len(tags)), pa.int32())})
        write("names.parquet", parquet_bytes(index.sort_by("tag"), ROWS_PER_GROUP))
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
            "placing": self.placing is not None,
            "rare_tags": None if self.rare is None else len(self.rare),
            "centre_norm2": {str(c): v for c, v in self.centres.norms2().items()},
            "too_popular_share": None
            if self.stats is None
            else float(np.mean(self.stats.band == TOO_POPULAR)),
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
            ``folder`` holds no tagspark model, one of another format version, or one with
            a file missing, damaged or not of this format (the message names the file).
        """
        read = read or _local_reader(folder)
        about = _about(folder, read)
        current = "model.json"

        def table_of(name: str) -> pa.Table:
            nonlocal current
            current = name
            try:
                return pq.read_table(pa.BufferReader(read(name)))
            except FileNotFoundError:
                raise InputError(
                    f"the model in '{folder}' has no {name}: the folder is incomplete; copy "
                    "the whole model/ folder again, or fit the model again (tagspark cluster)"
                ) from None
            except (pa.ArrowException, OSError) as exc:
                raise _damaged(folder, name, exc) from None

        try:
            return cls._from_files(about, table_of)
        except (KeyError, ValueError, TypeError, IndexError, pa.ArrowException) as exc:
            raise _damaged(folder, current, exc) from None

    @classmethod
    def _from_files(cls, about: dict, table_of) -> TagModel:
        """The model from its ``model.json`` and ``table_of(name)``, each file's table."""
        vocabulary = table_of("vocabulary.parquet")
        tags = tuple(vocabulary.column("tag").to_pylist())
        column = vocabulary.column("feature").to_numpy().astype(np.int64)
        cells = table_of("category_tags.parquet")
        projection = kmeans_centres = placing = None
        if about["method"] in EMBEDDING_METHODS:
            projection = np.zeros((int(column.max(initial=-1)) + 1, about["dims"]))
            rows = column >= 0
            projection[column[rows]] = _matrix(vocabulary.column("projection").filter(rows))
            kmeans_centres = _matrix(table_of("centres.parquet").column("centre"))
        if about.get("placing", True):
            placing = _centres_from(table_of("placing.parquet"))
        neighbours = table_of("neighbours.parquet")
        rare = RareTags.of(table_of("rare.parquet")) if about.get("rare_tags") is not None else None
        settings = {k: v for k, v in about.items() if k not in _MODEL_KEYS}
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
            categories=categories_from(table_of("categories.parquet")),
            projection=projection,
            kmeans_centres=kmeans_centres,
            placing=placing,
            excluded=tuple(about["excluded_tags"]),
            settings=settings,
            stats=TagStats.from_table(
                table_of("tags.parquet"),
                tags,
                settings.get("popularity_source", ""),
            ),
            neighbours=Neighbours.of(
                neighbours.column("tag_index").to_numpy(),
                neighbours.column("neighbour_index").to_numpy(),
                neighbours.column("score").to_numpy(),
                neighbours.column("posts").to_numpy(),
                len(tags),
            ),
            rare=rare,
        )

    @classmethod
    def load_for(cls, folder: str, tags: list[str], reader: PartReader | None = None) -> TagModel:
        """The part of the local model folder ``folder`` that a post with the (normalised)
        ``tags`` needs, :attr:`partial`: the rows of its tags in every file, the
        statistics of their companions, and the listed tags of its category. What one
        post reads grows with the post, not with the vocabulary: ``names.parquet`` is
        sorted by tag and the other files by tag index, in row groups of
        :data:`ROWS_PER_GROUP` or :data:`CELL_ROWS_PER_GROUP` rows, and only the row groups
        that can hold its tags are read (``reader.rows`` counts them). It places, suggests
        and rates as the whole model does.

        Raises
        ------
        InputError
            As :meth:`load`.
        """
        reader = reader or PartReader(folder)
        about = _about(folder, reader.read_bytes)
        try:
            return cls._part(about, reader, sorted(set(tags)))
        except FileNotFoundError:
            raise InputError(
                f"the model in '{folder}' has no {reader.current}: the folder is incomplete; "
                "copy the whole model/ folder again, or fit the model again (tagspark cluster)"
            ) from None
        except (KeyError, ValueError, TypeError, IndexError, pa.ArrowException, OSError) as exc:
            raise _damaged(folder, reader.current, exc) from None

    @classmethod
    def _part(cls, about: dict, reader: PartReader, post: list[str]) -> TagModel:
        mine = np.sort(reader.by_value("names.parquet", "tag", post).column("index").to_numpy())
        rare = None
        if about.get("rare_tags") is not None:
            rare = reader.by_value("rare.parquet", "tag", post)
        through = np.zeros(0, dtype=np.int64)  # the anchors of the post's rare tags
        if rare is not None:
            through = rare.column("anchor_index").to_numpy().astype(np.int64)
        walked_from = np.union1d(mine, through)
        companions = reader.by_value("neighbours.parquet", "tag_index", walked_from.tolist())
        wanted = np.union1d(walked_from, companions.column("neighbour_index").to_numpy())
        files = {
            "vocabulary": reader.by_position("vocabulary.parquet", mine),
            "cells": reader.by_value("category_tags.parquet", "tag_index", mine.tolist()),
            "placing": reader.by_value("placing.parquet", "tag_index", mine.tolist())
            if about.get("placing", True)
            else None,
            "categories": categories_from(reader.whole("categories.parquet")),
            "centres": reader.whole("centres.parquet")
            if about["method"] in EMBEDDING_METHODS
            else None,
            "companions": companions,
            "rare": rare,
        }
        model = cls._assembled(about, reader.rated(wanted), mine, **files)
        # a post whose tags have no companions is offered its category's listed tags
        category = int(model.category_of(model.pack([post])[0])[0])
        listed = [t.tag for t in model.by_id[category].tags] if category in model.by_id else []
        missing = sorted(set(listed) - set(model.position))
        if not missing:
            return model
        more = reader.by_value("names.parquet", "tag", missing).column("index").to_numpy()
        return cls._assembled(about, reader.rated(np.union1d(wanted, more)), mine, **files)

    @classmethod
    def _assembled(
        cls,
        about: dict,
        rated: pa.Table,
        mine: np.ndarray,
        vocabulary: pa.Table,
        cells: pa.Table,
        placing: pa.Table | None,
        categories: list[Category],
        centres: pa.Table | None,
        companions: pa.Table,
        rare: pa.Table | None,
    ) -> TagModel:
        """A :attr:`partial` model of the tags in the ``rated`` rows of ``tags.parquet``
        (with their vocabulary ``index``, sorted), indexed in that order; ``mine`` are the
        post's tags (vocabulary indices, sorted), whose ``vocabulary`` rows, ``cells``,
        ``placing`` cells and ``companions`` these are, and ``rare`` their rows of
        ``rare.parquet`` (anchors as vocabulary indices)."""
        index = rated.column("index").to_numpy()

        def at(values) -> np.ndarray:
            return np.searchsorted(index, np.asarray(values, dtype=np.int64))

        tags = tuple(rated.column("tag").to_pylist())
        mine_at = at(mine)
        idf = np.zeros(len(index))
        idf[mine_at] = vocabulary.column("idf").to_numpy()
        feature = vocabulary.column("feature").to_numpy() >= 0
        column = np.full(len(index), -1, dtype=np.int64)
        column[mine_at[feature]] = np.arange(int(feature.sum()))
        projection = kmeans_centres = None
        if centres is not None:
            kmeans_centres = _matrix(centres.column("centre"))
            projection = np.zeros((int(feature.sum()), kmeans_centres.shape[1]))
            if feature.any():
                projection = _matrix(vocabulary.column("projection").filter(pa.array(feature)))
        norm2 = {int(c): float(v) for c, v in about["centre_norm2"].items()}
        settings = {k: v for k, v in about.items() if k not in _MODEL_KEYS}

        def centres_of(t: pa.Table, norms=None) -> TagCentres:
            return TagCentres(
                t.column("category_id").to_numpy().astype(np.int64),
                at(t.column("tag_index").to_numpy()),
                t.column("weight").to_numpy(),
                norms,
            )

        return cls(
            method=about["method"],
            distance_measure=about["distance_measure"],
            n_posts=about["posts"],
            tags=tags,
            df=rated.column("posts").to_numpy(),
            idf=idf,
            column=column,
            centres=centres_of(cells, norm2),
            cell_posts=cells.column("posts").to_numpy(),
            generic=np.flatnonzero(rated.column("generic").to_numpy(zero_copy_only=False)),
            categories=categories,
            projection=projection,
            kmeans_centres=kmeans_centres,
            placing=None if placing is None else centres_of(placing),
            excluded=tuple(about["excluded_tags"]),
            settings=settings,
            stats=TagStats.from_table(rated, tags, settings.get("popularity_source", "")),
            neighbours=Neighbours.of(
                at(companions.column("tag_index").to_numpy()),
                at(companions.column("neighbour_index").to_numpy()),
                companions.column("score").to_numpy(),
                companions.column("posts").to_numpy(),
                len(index),
            ),
            rare=None
            if rare is None
            else RareTags.of(
                rare.set_column(1, "anchor_index", pa.array(at(rare.column(1).to_numpy())))
            ),
            partial=True,
        )


class PartReader:
    """Reads a local model folder's Parquet files in part: only the row groups whose
    statistics say they can hold the wanted values of the files' sort column, each once.
    ``rows`` counts the rows it read, by file; ``current`` is the file it reads (for
    errors)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.rows: dict[str, int] = {}
        self.current = "model.json"
        self._groups: dict[tuple[str, int], pa.Table] = {}

    def _group(self, name: str, parquet: pq.ParquetFile, group: int) -> pa.Table:
        if (name, group) not in self._groups:
            self._groups[name, group] = self._counted(name, parquet.read_row_group(group))
        return self._groups[name, group]

    def read_bytes(self, name: str) -> bytes:
        self.current = name
        return (self.folder / name).read_bytes()

    def _counted(self, name: str, table: pa.Table) -> pa.Table:
        self.rows[name] = self.rows.get(name, 0) + table.num_rows
        return table

    def whole(self, name: str) -> pa.Table:
        self.current = name
        return self._counted(name, pq.read_table(self.folder / name))

    def by_value(self, name: str, column: str, values: list) -> pa.Table:
        """The rows whose ``column`` (the file's sort column) is one of ``values``."""
        self.current = name
        parquet = pq.ParquetFile(self.folder / name)
        wanted = sorted(values)
        at = parquet.schema_arrow.get_field_index(column)
        parts = []
        for group in range(parquet.num_row_groups) if wanted else ():
            stats = parquet.metadata.row_group(group).column(at).statistics
            if stats is not None and stats.has_min_max:
                first = bisect.bisect_left(wanted, stats.min)
                if first == len(wanted) or wanted[first] > stats.max:
                    continue
            part = self._group(name, parquet, group)
            keep = pc.is_in(
                part.column(column), value_set=pa.array(wanted, part.schema.field(column).type)
            )
            parts.append(part.filter(keep))
        return pa.concat_tables(parts) if parts else parquet.schema_arrow.empty_table()

    def rated(self, indices: np.ndarray) -> pa.Table:
        """The ``tags.parquet`` rows of the vocabulary ``indices`` (sorted), with their
        ``index``."""
        table = self.by_position("tags.parquet", indices)
        return table.append_column("index", pa.array(np.asarray(indices, dtype=np.int64)))

    def by_position(self, name: str, positions: np.ndarray) -> pa.Table:
        """The rows at ``positions`` (sorted row numbers), in that order."""
        self.current = name
        parquet = pq.ParquetFile(self.folder / name)
        size = parquet.metadata.row_group(0).num_rows if parquet.num_row_groups else 1
        groups = np.unique(np.asarray(positions, dtype=np.int64) // size)
        if not len(groups):
            return parquet.schema_arrow.empty_table()
        read = pa.concat_tables([self._group(name, parquet, int(g)) for g in groups])
        starts = np.searchsorted(groups, positions // size)
        return read.take(pa.array(starts * size + positions % size))


# how a tag rates against the article's criteria (tagspark.popularity), in every listed and
# every suggested tag
RATING_FIELDS = [
    ("popularity", pa.int64()),
    ("popularity_source", pa.string()),
    ("band", pa.string()),
    ("specificity", pa.float64()),
    ("recommended", pa.bool_()),
]
CATEGORY_FIELDS = pa.struct(
    [("tag", pa.string()), ("weight", pa.float64()), ("posts", pa.int64()), *RATING_FIELDS]
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


def neighbours_table(neighbours: Neighbours) -> pa.Table:
    """``tag_index, neighbour_index, score, posts``, by tag index (then heaviest first, as
    :class:`Neighbours` holds them): a reader filtering on ``tag_index`` reads only the row
    groups of its tags."""
    return pa.table(
        {
            "tag_index": pa.array(neighbours.tag, pa.int32()),
            "neighbour_index": pa.array(neighbours.neighbour, pa.int32()),
            "score": pa.array(neighbours.score, pa.float64()),
            "posts": pa.array(neighbours.posts, pa.int64()),
        }
    )


def find_model(uri: str, exists, subfolders, join=os.path.join) -> str:
    """The model folder ``uri`` names: itself when it holds ``model.json``; its ``model/``
    (a ``tagspark cluster`` output); in a saved PipelineModel (a ``stages/`` folder), the
    stage that holds one. Else ``uri`` itself, for the reader to say what is missing.
    ``exists(path)``, ``subfolders(path)`` and ``join`` reach the filesystem.

    Raises
    ------
    InputError
        A pipeline with more than one tagspark model.
    """
    if exists(join(uri, "model.json")):
        return uri
    if exists(join(uri, "model", "model.json")):
        return join(uri, "model")
    if exists(join(uri, "stages")):
        found = sorted(s for s in subfolders(join(uri, "stages")) if exists(join(s, "model.json")))
        if len(found) > 1:
            raise InputError(
                f"'{uri}' is a pipeline holding {len(found)} tagspark models; give one of "
                f"them: {', '.join(found)}"
            )
        if found:
            return found[0]
    return uri


def model_folder(path: str) -> str:
    """The local model folder ``path`` names (:func:`find_model`)."""

    def subfolders(folder: str) -> list[str]:
        return [str(p) for p in Path(folder).iterdir() if p.is_dir()]

    return find_model(path, os.path.exists, subfolders)


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


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()


def _about(folder: str, read) -> dict:
    """``model.json`` of the model in ``folder``, checked: a tagspark model of this version.

    Raises
    ------
    InputError
        No model.json, one that does not parse, of another format or of another version.
    """
    try:
        about = json.loads(read("model.json"))
    except FileNotFoundError:
        raise InputError(
            f"'{folder}' holds no tagspark model (no model.json); give the model/ folder "
            "of a tagspark cluster output, the output folder itself, or a saved PipelineModel"
        ) from None
    except (ValueError, OSError) as exc:
        raise _damaged(folder, "model.json", exc) from None
    if not isinstance(about, dict) or about.get("format") != FORMAT:
        raise InputError(
            f"'{folder}/model.json' is not a tagspark model's (format "
            f"{about.get('format') if isinstance(about, dict) else None!r}); give the "
            "model/ folder of a tagspark cluster output"
        )
    if about.get("version") != VERSION:
        raise InputError(
            f"'{folder}' holds a tagspark model of version {about.get('version')!r}; this "
            f"tagspark reads version {VERSION}: fit the model again with this version "
            "(tagspark cluster)"
        )
    return about


def _damaged(folder: str, name: str, exc: BaseException) -> InputError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"'{folder}/{name}' is damaged or not of this tagspark's model format ({reason}); "
        "copy the model folder again, or fit the model again (tagspark cluster)"
    )


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
