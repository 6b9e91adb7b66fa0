"""Tags for a post, and the catalogue searched by tag, from a saved model with numpy and
pyarrow alone: no Spark starts, so one post answers in well under a second.

``suggest``: the post's tags are normalised as the job does; the post is placed as the job
places one (:meth:`tagspark.model.TagModel.category_of`), and its next best categories
follow (by the distance of its embedding to their k-means centres for ``spectral``/``svd``,
else by how much their centres weigh its tags), up to :data:`PLACES` and only those whose
centres weigh its tags nearly as much (:data:`NEAR`). Candidates are the
tags of those categories the post does not carry, generic tags left out; recommended ones
(:mod:`tagspark.popularity`) first, then by category and weight (:func:`candidates`).

``search``: categories holding a tag equal to the query or starting with it, ranked by that
tag's weight in them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa

from tagspark import popularity
from tagspark.centres import MIXED_ID, remoteness
from tagspark.codec import tag_values, unpack_sets
from tagspark.model import EMBEDDING_METHODS, TagModel
from tagspark.popularity import ESTIMATE, FILE
from tagspark.tagrules import extract_hashtags, normalise_tags, parse_tag_text

PLACES = 3
# a further category is offered only when its centre weighs the post's tags (the sum of
# x(t) * weight(c, t)) at least this share of what the post's own category's centre does
NEAR = 0.5


def post_tags(model: TagModel, tags: str | None = None, caption: str | None = None) -> list[str]:
    """The post's tags normalised as the job does: ``tags`` as a tag list written as text
    (``"#espresso #grinder"`` or ``"espresso, grinder"``), else the hashtags of ``caption``."""
    raw = parse_tag_text(tags) if tags is not None else extract_hashtags(caption or "")
    return normalise_tags(raw, model.settings.get("tags", {}).get("max_tags_per_post", 30))


def rated_with(model: TagModel, path: str) -> TagModel:
    """``model`` with its tags rated against the popularity counts in the file ``path``
    (instead of those it was fitted with), and that source in its settings."""
    from tagspark.config import PopularityConfig

    cfg = PopularityConfig(**dict(model.settings.get("popularity", {}), file=path))
    stats = popularity.tag_stats(model, cfg, popularity.read_popularity(path))
    settings = dict(model.settings, popularity_source=stats.source)
    rated = popularity.rated(model.categories, stats, model.position)
    return dataclasses.replace(model, categories=rated, settings=settings, stats=stats)


def places(model: TagModel, packed: pa.Array) -> list[tuple[int, float]]:
    """The post's categories, best first (at most :data:`PLACES`), each with its distance to
    the category's centre in tag space; empty when it goes to ``mixed``."""
    idx, rows, x = tag_values(packed, model.idf)
    first = int(model.category_of(packed)[0])
    if first == MIXED_ID:
        return []
    order: list[int] = []
    if model.method in EMBEDDING_METHODS:
        v, placed = model.embedded(packed)
        if placed[0]:
            far = remoteness(v, model.kmeans_centres, model.distance_measure)[0]
            order = [int(c) for c in np.argsort(far, kind="stable")]
    if not order:
        order = [int(c) for c in model.named_centres.scores(idx, rows, x)[1]]
    ranked = [first] + [c for c in order if c != first and c in model.by_id]
    ranked = ranked[:PLACES]
    n = len(ranked)
    distance = model.centres.distance(
        np.tile(idx, n),
        np.repeat(np.arange(n), len(idx)),
        np.tile(x, n),
        np.array(ranked),
        n,
        model.distance_measure,
    )
    _, category, score = model.centres.scores(idx, rows, x)
    weighs = dict(zip(category.tolist(), score.tolist(), strict=True))
    own = weighs.get(first, 0.0)
    return [
        (c, float(d))
        for i, (c, d) in enumerate(zip(ranked, distance, strict=True))
        if i == 0 or weighs.get(c, 0.0) >= NEAR * own > 0
    ]


def suggest(model: TagModel, tags: list[str], n: int = 15) -> dict[str, Any]:
    """Suggestions for a post with the (normalised) ``tags``, as a JSON-able dict:
    ``input_tags``, ``known_tags``, ``unknown_tags``, ``categories`` (``id, name, size,
    distance``), ``suggestions`` (:func:`candidates`: ``tag, category_id, category, weight,
    posts, popularity, popularity_source, band, specificity, recommended``),
    ``popularity`` (its source) and ``message`` (why there are none, or null)."""
    packed, unknown = model.pack([tags])
    known = [t for t in tags if t not in set(unknown[0])]
    result: dict[str, Any] = {
        "input_tags": tags,
        "known_tags": known,
        "unknown_tags": unknown[0],
        "popularity": model.settings.get("popularity_source"),
        "categories": [],
        "suggestions": [],
        "message": None,
    }
    if not known:
        result["message"] = (
            "none of the post's tags is known to the model: nothing to place it by"
            if tags
            else "the post has no tags"
        )
        return result
    placed = places(model, packed)
    if not placed:
        result["message"] = "the post has only generic tags: it belongs to no category (mixed)"
        return result
    for cid, distance in placed:
        category = model.by_id[cid]
        result["categories"].append(
            {"id": cid, "name": category.name, "size": category.size, "distance": distance}
        )
    result["suggestions"] = candidates(model, packed, [c for c, _ in placed], n)
    return result


def candidates(model: TagModel, packed: pa.Array, categories: list[int], n: int) -> list[dict]:
    """The ``n`` best tags of ``categories`` (best first) that the post (one packed set) does
    not carry and that are not generic, ranked: recommended first, then by category, then by
    weight there. A tag in several of them counts once, where it ranks best."""
    stats, cells = model.stats, model.centres
    have, _ = unpack_sets(packed)
    wanted = np.isin(cells.category, categories) & ~np.isin(cells.idx, have)
    at = np.flatnonzero(wanted & ~np.isin(cells.idx, model.generic))
    idx, category = cells.idx[at], cells.category[at]
    rank = np.searchsorted(np.sort(categories), category)
    rank = np.argsort(categories)[rank]  # the category's place in ``categories``
    recommended = stats.recommended[idx] & (stats.top_category[idx] == category)
    order = np.lexsort((-cells.weight[at], rank, ~recommended))
    _, first = np.unique(idx[order], return_index=True)  # each tag where it ranks best
    found = []
    for i in order[np.sort(first)][:n]:
        t, cid = int(idx[i]), int(category[i])
        found.append(
            {
                "tag": model.tags[t],
                "category_id": cid,
                "category": model.by_id[cid].name,
                "weight": float(cells.weight[at[i]]),
                "posts": int(model.cell_posts[at[i]]),
                "popularity": int(stats.popularity[t]),
                "popularity_source": FILE if stats.from_file[t] else ESTIMATE,
                "band": str(stats.band[t]),
                "specificity": round(float(stats.specificity[t]), 4),
                "recommended": bool(recommended[i]),
            }
        )
    return found


def search(model: TagModel, query: str, limit: int = 20) -> list[dict[str, Any]]:
    """Categories holding a tag equal to ``query`` (normalised) or starting with it, ranked
    by that tag's weight in them (the heaviest matching tag counts): ``id, name, size, tag,
    weight, rank`` (the tag's place in the category's list, 1 first, null when it is not
    listed)."""
    wanted = normalise_tags([query], 1)
    if not wanted:
        return []
    prefix = wanted[0]
    matching = np.array(
        [i for i, t in enumerate(model.tags) if t.startswith(prefix)], dtype=np.int64
    )
    cells = model.centres
    hit = np.flatnonzero(np.isin(cells.idx, matching) & (cells.category != MIXED_ID))
    order = hit[np.lexsort((cells.idx[hit], -cells.weight[hit], cells.category[hit]))]
    seen: set[int] = set()
    found = []
    for i in order:
        cid = int(cells.category[i])
        if cid in seen or cid not in model.by_id:
            continue
        seen.add(cid)
        category = model.by_id[cid]
        tag = model.tags[cells.idx[i]]
        listed = [t.tag for t in category.tags]
        found.append(
            {
                "id": cid,
                "name": category.name,
                "size": category.size,
                "tag": tag,
                "weight": float(cells.weight[i]),
                "rank": listed.index(tag) + 1 if tag in listed else None,
            }
        )
    found.sort(key=lambda f: (-f["weight"], f["id"]))
    return found[:limit]
