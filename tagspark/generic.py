"""Generic tags (#love, #instagood, ...) and the ``mixed`` bucket.

A generic tag is frequent and spread over the categories the way the posts themselves are:

    share(t)  = posts carrying t / posts in categories
    spread(t) = exp(H(t's posts over categories)) / exp(H(all posts over categories))

so ``spread`` is 1 for a tag that falls into categories in proportion to their sizes and
about 1/k for a tag that lives in one category. A tag is generic when ``share >=
generic.min_share``, ``spread >= generic.min_spread`` and it occurs in at least
:data:`MIN_CATEGORIES` categories; ``generic.tags`` adds the user's own. Generic tags never
name a category. A post left with no tag that is neither generic nor too rare to learn from
(below ``features.min_doc_freq``) goes to the ``mixed`` bucket, category id -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagspark.centres import Cells
from tagspark.clustering import MIXED_ID
from tagspark.config import GenericConfig
from tagspark.vocabulary import Vocabulary

MIN_CATEGORIES = 3


@dataclass(frozen=True)
class TagSpread:
    """Per vocabulary tag ``idx`` of the placed posts: ``posts`` carrying it, their
    ``share`` of the placed posts, its ``spread`` over the categories, and in how many
    ``categories`` it occurs (arrays, one entry a tag)."""

    idx: np.ndarray
    posts: np.ndarray
    share: np.ndarray
    spread: np.ndarray
    categories: np.ndarray


def tag_spread(cells: Cells) -> TagSpread:
    """The :class:`TagSpread` of every tag in ``cells``
    (:func:`tagspark.categories.category_cells`), :data:`MIXED_ID` left out."""
    placed = {c: n for c, n in cells.sizes.items() if c != MIXED_ID}
    total = sum(placed.values())
    corpus_entropy = -sum(n / total * np.log(n / total) for n in placed.values() if n)
    in_category = cells.category != MIXED_ID
    tags, at = np.unique(cells.idx[in_category], return_inverse=True)
    counts = cells.posts[in_category]
    posts = np.bincount(at, counts, minlength=len(tags))
    p = counts / posts[at]
    entropy = -np.bincount(at, p * np.log(p), minlength=len(tags))
    return TagSpread(
        tags,
        posts.round().astype(np.int64),
        posts / float(max(total, 1)),
        np.exp(entropy - corpus_entropy),
        np.bincount(at, minlength=len(tags)),
    )


def generic_tags(spread: TagSpread, cfg: GenericConfig, vocabulary: Vocabulary) -> list[dict]:
    """The generic tags, most frequent first: detected ones (when ``cfg.detect``) and the
    user's ``cfg.tags``, each ``{"tag", "posts", "share", "spread", "source"}``."""
    found: dict[str, dict] = {}
    if cfg.detect:
        hit = (
            (spread.share >= cfg.min_share)
            & (spread.spread >= cfg.min_spread)
            & (spread.categories >= MIN_CATEGORIES)
        )
        for i in np.flatnonzero(hit):
            found[vocabulary.tags[spread.idx[i]]] = _entry(spread, i, vocabulary, "detected")
    listed = listed_tags(cfg)
    if listed:
        for i in np.flatnonzero(np.isin(spread.idx, vocabulary.indices(listed))):
            found[vocabulary.tags[spread.idx[i]]] = _entry(spread, i, vocabulary, "listed")
        for tag in listed:
            found.setdefault(
                tag, {"tag": tag, "posts": 0, "share": 0.0, "spread": 0.0, "source": "listed"}
            )
    return sorted(found.values(), key=lambda g: (-g["posts"], g["tag"]))


def listed_tags(cfg: GenericConfig) -> list[str]:
    """The user's ``generic.tags``, normalised as tags are (no ``#``, lower case)."""
    return [t.strip().lstrip("#").lower() for t in cfg.tags if t.strip().lstrip("#")]


def _entry(spread: TagSpread, i: int, vocabulary: Vocabulary, source: str) -> dict:
    return {
        "tag": vocabulary.tags[spread.idx[i]],
        "posts": int(spread.posts[i]),
        "share": round(float(spread.share[i]), 6),
        "spread": round(float(spread.spread[i]), 4),
        "source": source,
    }
