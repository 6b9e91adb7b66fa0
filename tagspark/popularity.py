"""Tag statistics and the popularity band: which tags are worth putting on a post.

The article's good tag is specific (concentrated in one category, not spread like
#instagood), in the post's category, and used by between about 100k and 10m posts on the
network: more and the post drowns, fewer and nobody watches the tag. For every vocabulary
tag:

    posts          the corpus's posts that carry it, and ``share`` = posts / corpus posts
    top_category   the (named) category holding most of its posts (ties: higher weight, then
                   lower id), and ``top_weight``, its weight there
    specificity    the share of its posts that fall in its top category: 1 for a tag that
                   lives in one category, about 1/k for one spread over all of them
    popularity     its posts on the network: from the user's counts (``popularity.file``, a
                   CSV or JSON Lines file of ``tag,posts``) where they list it, else estimated
                   as ``share x popularity.network_posts``; ``popularity_source`` says which
    band           too_rare / in_band / too_popular against ``[min_posts, max_posts]``
    recommended    in band, not generic, and ``specificity >= popularity.min_specificity``

A category's listed tag is recommended there when it is recommended and the category is its
top category. Pure Python and numpy: ``tagspark suggest`` rates tags without Spark.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from tagspark.centres import MIXED_ID
from tagspark.config import PopularityConfig
from tagspark.errors import InputError
from tagspark.naming import Category, category_names

TOO_RARE, IN_BAND, TOO_POPULAR = "too_rare", "in_band", "too_popular"
ESTIMATE = "estimate"
FILE = "file"


@dataclass(frozen=True)
class TagStats:
    """The statistics of the module docstring, one array entry a vocabulary tag."""

    tags: tuple[str, ...]
    posts: np.ndarray
    share: np.ndarray
    top_category: np.ndarray
    top_weight: np.ndarray
    specificity: np.ndarray
    generic: np.ndarray
    popularity: np.ndarray
    from_file: np.ndarray
    band: np.ndarray
    recommended: np.ndarray
    source: str

    @classmethod
    def from_table(cls, table: pa.Table, tags: tuple[str, ...], source: str) -> TagStats:
        """The statistics saved by :meth:`table` (``tags.parquet``)."""

        def column(name: str) -> np.ndarray:
            return table.column(name).to_numpy(zero_copy_only=False)

        return cls(
            tags,
            column("posts"),
            column("share"),
            column("top_category").astype(np.int64),
            column("top_weight"),
            column("specificity"),
            column("generic"),
            column("popularity"),
            column("popularity_source") == FILE,
            column("band"),
            column("recommended"),
            source,
        )

    def table(self, categories: list[Category]) -> pa.Table:
        """As ``tags.parquet``: one row a tag, most frequent first."""
        return pa.table(
            {
                "tag": pa.array(self.tags, pa.string()),
                "posts": pa.array(self.posts, pa.int64()),
                "share": pa.array(self.share),
                "top_category": pa.array(self.top_category, pa.int32()),
                "top_category_name": category_names(categories, self.top_category),
                "top_weight": pa.array(self.top_weight),
                "specificity": pa.array(self.specificity),
                "generic": pa.array(self.generic),
                "popularity": pa.array(self.popularity, pa.int64()),
                "popularity_source": pa.array(np.where(self.from_file, FILE, ESTIMATE)),
                "band": pa.array(self.band),
                "recommended": pa.array(self.recommended),
            }
        )


def read_popularity(path: str) -> dict[str, int]:
    """``{tag: posts}`` from a CSV file with a header naming ``tag`` and ``posts`` columns,
    or a JSON Lines file of ``{"tag": ..., "posts": ...}`` (by the first character that is
    not white space). Tags are normalised as the job does (no ``#``, lower case).

    Raises
    ------
    InputError
        A missing or unreadable file, or a line without a tag and a whole number of posts.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the popularity file '{path}': {exc}") from None
    counts: dict[str, int] = {}
    if text.lstrip().startswith("{"):
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}, line {number}: not JSON ({exc.msg})") from None
    else:
        reader = csv.DictReader(io.StringIO(text))
        missing = {"tag", "posts"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(
                f"{path}: the CSV header must name the columns tag and posts "
                f"(missing: {', '.join(sorted(missing))})"
            )
        rows = [(number, row) for number, row in enumerate(reader, 2)]
    for number, row in rows:
        tag = str(row.get("tag") or "").strip().lstrip("#\uff03").lower()
        try:
            posts = int(str(row.get("posts")).strip())
        except ValueError:
            posts = -1
        if not tag or posts < 0:
            raise InputError(
                f"{path}, line {number}: expected a tag and a whole number of posts, got {row}"
            )
        counts[tag] = posts
    return counts


def tag_stats(model, cfg: PopularityConfig, counts: dict[str, int] | None = None) -> TagStats:
    """The :class:`TagStats` of ``model``'s vocabulary (a :class:`tagspark.model.TagModel`),
    with the user's network ``counts`` where given."""
    n_tags = len(model.tags)
    cells = model.centres
    named = cells.category != MIXED_ID
    category, idx = cells.category[named], cells.idx[named]
    posts, weight = model.cell_posts[named], cells.weight[named]
    # each tag's top cell: most posts, then higher weight, then lower category id
    order = np.lexsort((category, -weight, -posts, idx))
    first = order[np.r_[True, idx[order][1:] != idx[order][:-1]]] if len(order) else order
    top_category = np.full(n_tags, MIXED_ID, dtype=np.int64)
    top_weight = np.zeros(n_tags)
    top_posts = np.zeros(n_tags)
    top_category[idx[first]] = category[first]
    top_weight[idx[first]] = weight[first]
    top_posts[idx[first]] = posts[first]
    df = np.asarray(model.df, dtype=float)
    specificity = np.divide(top_posts, df, out=np.zeros(n_tags), where=df > 0)
    share = df / max(model.n_posts, 1)
    generic = np.zeros(n_tags, dtype=bool)
    generic[model.generic] = True
    unrated = np.zeros(n_tags, dtype=np.int64)
    structure = TagStats(
        model.tags,
        model.df.astype(np.int64),
        share,
        top_category,
        top_weight,
        specificity,
        generic,
        unrated,
        unrated.astype(bool),
        unrated.astype(str),
        unrated.astype(bool),
        source="",
    )
    return rerated(structure, cfg, counts or {})


def rerated(stats: TagStats, cfg: PopularityConfig, counts: dict[str, int]) -> TagStats:
    """``stats`` with each tag's popularity (from ``counts``, else estimated as ``share x
    network_posts``), band and recommended mark under ``cfg``; what the corpus says of the
    tags (posts, share, top category, specificity, generic) kept. Each tag needs only its
    own row, so a model read in part (:meth:`tagspark.model.TagModel.load_for`) is rated
    as the whole one is."""
    known = np.array([counts.get(t, -1) for t in stats.tags], dtype=np.int64)
    from_file = known >= 0
    popularity = np.where(from_file, known, np.round(stats.share * cfg.network_posts))
    popularity = popularity.astype(np.int64)
    band = np.where(
        popularity < cfg.min_posts,
        TOO_RARE,
        np.where(popularity > cfg.max_posts, TOO_POPULAR, IN_BAND),
    )
    recommended = (
        (band == IN_BAND)
        & ~stats.generic
        & (stats.top_category != MIXED_ID)
        & (stats.specificity >= cfg.min_specificity)
    )
    return dataclasses.replace(
        stats,
        popularity=popularity,
        from_file=from_file,
        band=band,
        recommended=recommended,
        source=describe_source(cfg, counts),
    )


def describe_source(cfg: PopularityConfig, counts: dict[str, int]) -> str:
    """One line saying where popularity came from, for every output."""
    estimate = f"share of the corpus x {cfg.network_posts:,} network posts"
    if not counts:
        return f"estimated: {estimate}"
    return (
        f"{cfg.file or 'the popularity file'} ({len(counts):,} tags); others estimated: {estimate}"
    )


def rated(categories: list[Category], stats: TagStats, position: dict[str, int]) -> list[Category]:
    """``categories`` with every listed tag's posts on the network, band, specificity and
    whether it is recommended in that category."""
    out = []
    for c in categories:
        tags = []
        for t in c.tags:
            i = position.get(t.tag)
            if i is None:  # a listed generic tag the vocabulary lost: nothing to rate
                tags.append(t)
                continue
            tags.append(
                dataclasses.replace(
                    t,
                    popularity=int(stats.popularity[i]),
                    popularity_source=FILE if stats.from_file[i] else ESTIMATE,
                    band=str(stats.band[i]),
                    specificity=round(float(stats.specificity[i]), 4),
                    recommended=bool(stats.recommended[i] and stats.top_category[i] == c.id),
                )
            )
        out.append(dataclasses.replace(c, tags=tuple(tags)))
    return out
