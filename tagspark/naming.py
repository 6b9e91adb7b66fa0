"""Naming categories: each category's real tags ranked by weight, and unique names made
of the leading ones. Pure numpy (no Spark): a saved model names and ranks without a JVM.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from tagspark.centres import MIXED_ID, Cells
from tagspark.codec import ranks_within

MIXED_NAME = "mixed"


@dataclass(frozen=True)
class RankedTag:
    """A category's tag: its ``weight`` there and the ``posts`` of the category carrying it;
    with the popularity band (:mod:`tagspark.popularity`) once the tags are rated."""

    tag: str
    weight: float
    posts: int
    popularity: int | None = None
    popularity_source: str | None = None
    band: str | None = None
    specificity: float | None = None
    recommended: bool | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    leading_tags: tuple[str, ...]
    size: int
    tags: tuple[RankedTag, ...] = field(default=())

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "leading_tags": list(self.leading_tags),
            "size": self.size,
            "tags": [t.to_dict() for t in self.tags],
        }


def top_tags(
    cells: Cells, weights: np.ndarray, tags: tuple[str, ...], n: int, excluded: list[int]
) -> dict[int, list[RankedTag]]:
    """The ``n`` heaviest tags of each category (ties by posts, then by tag), leaving out
    the ``excluded`` tag indices. ``tags`` names the indices (the vocabulary)."""
    by_name = np.empty(len(tags), dtype=np.int64)
    by_name[sorted(range(len(tags)), key=tags.__getitem__)] = np.arange(len(tags))
    kept = np.flatnonzero(~np.isin(cells.idx, excluded))
    order = kept[
        np.lexsort(
            (
                by_name[cells.idx[kept]],
                -cells.posts[kept],
                -weights[kept],
                cells.category[kept],
            )
        )
    ]
    # the cells come grouped by category: each one's rank is its place after the first
    rank = ranks_within(cells.category[order])
    ranked: dict[int, list[RankedTag]] = {}
    for i in order[rank < n]:
        ranked.setdefault(int(cells.category[i]), []).append(
            RankedTag(tags[cells.idx[i]], float(weights[i]), int(cells.posts[i]))
        )
    return ranked


def name_categories(
    ranked: list[tuple[int, int, list[RankedTag]]], name_tags: int
) -> list[Category]:
    """Name categories by their leading tags joined with ``_``, unique across categories.

    Parameters
    ----------
    ranked : list of (category id, size, tags ranked highest first)
    name_tags : int
        How many leading tags make a name.

    Returns
    -------
    list of Category, largest first. Category :data:`MIXED_ID` is named ``mixed``. On a
    clash the later (smaller) category adds its next tag until the name is unique, and its
    id when it runs out of tags.

    Examples
    --------
    >>> tags = lambda *ts: [RankedTag(t, 1.0, 1) for t in ts]
    >>> [c.name for c in name_categories([(0, 9, tags("food", "italy")),
    ...                                   (1, 5, tags("food", "pasta"))], 1)]
    ['food', 'food_pasta']
    """
    taken: set[str] = {MIXED_NAME}
    categories = []
    for cid, size, tags in sorted(ranked, key=lambda r: (-r[1], r[0])):
        names = [t.tag for t in tags]
        if cid == MIXED_ID:
            categories.append(Category(cid, MIXED_NAME, (), size, tuple(tags)))
            continue
        n = min(name_tags, len(names))
        name = "_".join(names[:n])
        while (name in taken or not name) and n < len(names):
            n += 1
            name = "_".join(names[:n])
        if name in taken or not name:
            name = f"{name}_{cid}" if name else f"category_{cid}"
        taken.add(name)
        categories.append(Category(cid, name, tuple(names[:n]), size, tuple(tags)))
    return categories


def ranked_categories(
    ranked: dict[int, list[RankedTag]], sizes: dict[int, int], name_tags: int
) -> list[Category]:
    """Name every category of ``sizes`` (``{category: posts}``) from its ranked tags
    (:func:`top_tags`; none for a category whose every tag was left out)."""
    return name_categories([(c, n, ranked.get(c, [])) for c, n in sizes.items()], name_tags)


def category_names(
    categories: list[Category], ids: np.ndarray, missing: str | None = None
) -> pa.StringArray:
    """The name of each category id of ``ids`` (``missing`` for an id none of
    ``categories`` has), by one take from the few names rather than a Python lookup a row."""
    known = sorted((c.id, c.name) for c in categories)
    keys = np.array([k for k, _ in known], dtype=np.int64)
    table = pa.array([name for _, name in known] + [missing], pa.string())
    at = np.minimum(np.searchsorted(keys, ids), max(len(keys) - 1, 0))
    found = keys[at] == ids if len(keys) else np.zeros(len(ids), dtype=bool)
    return table.take(pa.array(np.where(found, at, len(keys)), pa.int64()))
