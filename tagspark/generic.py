"""Generic tags (#love, #instagood, ...) and the ``mixed`` bucket.

A generic tag is spread over the categories the way the posts themselves are, and has
enough posts to tell. With ``n`` posts carrying tag ``t``::

    spread(t)   = exp(H(t's posts over categories)) / exp(H(all posts over categories))
    chance(n)   = the mean spread of n posts drawn at random, category by category in
                  proportion to the categories' sizes (what a tag with no topic shows)
    evidence(t) = spread(t) / chance(n)

``spread`` alone is biased against small tags: 50 posts spread over 200 categories
perfectly at random show a spread of about 0.25, because 50 draws cannot reach 200
categories. ``evidence`` compares a tag with what chance gives at its own size, so it is
about 1 for a tag with no topic whatever its frequency, and far below 1 for a tag of one or
a few categories. A tag is generic when ``evidence >= generic.min_spread``, its posts
amount to at least :data:`MIN_CATEGORIES` equal categories (``exp(H)``: a tag split between
two topics, as #turkey between cooking and travel, is not generic even where k is 5 and two
categories are "half the spread"), and it has at least ``enough`` posts: the smallest
number at which 19 of 20 random tags of that size show a spread of ``generic.min_spread``
or more (:func:`chance_spread`), so that a spread that high says something. This replaces
a fixed share floor (``generic.min_share``, now 0 by default, an optional extra floor):
a generic tag on 0.2% of a large corpus is as generic as one on 5%. ``generic.tags`` adds
the user's own. Generic tags never name a category. A post left with no tag that is
neither generic nor too rare to learn from (below ``features.min_doc_freq``) goes to the
``mixed`` bucket, category id -1.

The chance figures come from :data:`CHANCE_DRAWS` seeded multinomial draws at each of
:data:`CHANCE_SIZES` post counts (log-spaced, interpolated between): k numbers a draw, on
the driver, whatever the corpus's size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagspark.centres import Cells
from tagspark.clustering import MIXED_ID
from tagspark.config import GenericConfig
from tagspark.vocabulary import Vocabulary

MIN_CATEGORIES = 3
# the chance spread is estimated from this many random tags at each of CHANCE_SIZES sizes
CHANCE_DRAWS = 200
CHANCE_SIZES = 48
# the share of random tags of a size that must reach generic.min_spread for that size to
# be enough to tell (19 in 20)
CHANCE_POWER = 0.95


@dataclass(frozen=True)
class TagSpread:
    """Per vocabulary tag ``idx`` of the placed posts: ``posts`` carrying it, their
    ``share`` of the placed posts, its ``spread`` over the categories, and in how many
    ``categories`` it occurs (arrays, one entry a tag); ``sizes``: the categories' posts."""

    idx: np.ndarray
    posts: np.ndarray
    share: np.ndarray
    spread: np.ndarray
    categories: np.ndarray
    sizes: np.ndarray


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
        np.array(sorted(n for n in placed.values() if n), dtype=float),
    )


def chance_spread(sizes: np.ndarray, posts: np.ndarray, seed: int = 0) -> tuple[np.ndarray, ...]:
    """``mean, low`` for each count of ``posts``: the mean spread of that many posts drawn
    at random over categories of ``sizes`` posts, and the spread that
    :data:`CHANCE_POWER` of such random tags reach or exceed.

    >>> mean, low = chance_spread(np.array([50.0, 50.0]), np.array([1, 1000]))
    >>> [round(float(v), 2) for v in mean]
    [0.5, 1.0]
    """
    posts = np.asarray(posts, dtype=float)
    if not len(posts) or len(sizes) < 2:
        return np.ones(len(posts)), np.ones(len(posts))
    p = sizes / sizes.sum()
    corpus = float(np.exp(-(p * np.log(p)).sum()))
    grid = np.unique(np.geomspace(1, max(posts.max(), 2), CHANCE_SIZES).round())
    rng = np.random.default_rng(seed)
    mean, low = np.empty(len(grid)), np.empty(len(grid))
    for g, n in enumerate(grid):
        drawn = rng.multinomial(int(n), p, size=CHANCE_DRAWS) / n
        logs = np.log(drawn, out=np.zeros_like(drawn), where=drawn > 0)
        spread = np.exp(-(drawn * logs).sum(axis=1)) / corpus
        mean[g] = spread.mean()
        low[g] = np.quantile(spread, 1 - CHANCE_POWER)
    at = np.log(posts)
    return np.interp(at, np.log(grid), mean), np.interp(at, np.log(grid), low)


def generic_tags(spread: TagSpread, cfg: GenericConfig, vocabulary: Vocabulary) -> list[dict]:
    """The generic tags, most frequent first: detected ones (when ``cfg.detect``) and the
    user's ``cfg.tags``, each ``{"tag", "posts", "share", "spread", "source"}``, and the
    detected ones' ``evidence`` (their spread over what chance gives a tag of their size)."""
    found: dict[str, dict] = {}
    if cfg.detect:
        mean, low = chance_spread(spread.sizes, spread.posts)
        evidence = spread.spread / np.maximum(mean, 1e-12)
        hit = (
            (spread.share >= cfg.min_share)
            & (evidence >= cfg.min_spread)
            & (low >= cfg.min_spread)  # enough posts to tell
            & (spread.spread * _perplexity(spread.sizes) >= MIN_CATEGORIES - 1e-9)
        )
        for i in np.flatnonzero(hit):
            entry = _entry(spread, i, vocabulary, "detected")
            found[entry["tag"]] = {**entry, "evidence": round(float(evidence[i]), 4)}
    listed = listed_tags(cfg)
    if listed:
        for i in np.flatnonzero(np.isin(spread.idx, vocabulary.indices(listed))):
            found[vocabulary.tags[spread.idx[i]]] = _entry(spread, i, vocabulary, "listed")
        for tag in listed:
            found.setdefault(
                tag, {"tag": tag, "posts": 0, "share": 0.0, "spread": 0.0, "source": "listed"}
            )
    return sorted(found.values(), key=lambda g: (-g["posts"], g["tag"]))


def _perplexity(sizes: np.ndarray) -> float:
    """exp(entropy) of the categories' sizes: how many equal categories they amount to."""
    p = sizes[sizes > 0] / max(sizes.sum(), 1)
    return float(np.exp(-(p * np.log(p)).sum())) if len(p) else 0.0


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
