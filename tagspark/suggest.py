"""Tags for a post, and the catalogue searched by tag, from a saved model with numpy and
pyarrow alone: no Spark starts, so one post answers in well under a second.

``suggest``: the post's tags are normalised as the job does; the post is placed as the job
places one (:meth:`tagspark.model.TagModel.category_of`), and its next best categories
follow (by the distance of its embedding to their k-means centres for ``spectral``/``svd``,
else by how much their centres weigh its tags), up to :data:`PLACES` and only those whose
centres weigh its tags nearly as much (:data:`NEAR`) (:func:`places`). The suggestions are
ranked by how well they go with the post's own tags (:func:`ranked`: each tag's companions
of :mod:`tagspark.neighbours`, added up over the post's tags), each with why and with its
popularity band (:mod:`tagspark.popularity`); the same function ranks a whole batch of
posts for ``suggest --input``.

``search``: categories holding a tag equal to the query or starting with it, ranked by that
tag's weight in them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tagspark import popularity
from tagspark.centres import MIXED_ID, remoteness
from tagspark.codec import ranks_within, tag_values, unique_inverse, unpack_sets
from tagspark.model import EMBEDDING_METHODS, RATING_FIELDS, TagModel
from tagspark.naming import category_names
from tagspark.tagrules import extract_hashtags, normalise_tags, parse_tag_text

PLACES = 3
# a further category is offered only when its centre weighs the post's tags (the sum of
# x(t) * weight(c, t)) at least this share of what the post's own category's centre does
NEAR = 0.5


def post_tags(
    model: TagModel | None, tags: str | list[str] | None = None, caption: str | None = None
) -> list[str]:
    """The post's tags normalised as the job does: ``tags`` as a list (as a ``tags`` field
    holding one), or written as text (``"#espresso #grinder"`` or ``"espresso, grinder"``),
    else the hashtags of ``caption``; at most the model's ``max_tags_per_post`` (every one
    of them without a model)."""
    if isinstance(tags, list):
        raw = tags
    else:
        raw = parse_tag_text(tags) if tags is not None else extract_hashtags(caption or "")
    if model is None:
        return normalise_tags(raw, max(len(raw), 1))
    return normalise_tags(raw, model.settings.get("tags", {}).get("max_tags_per_post", 30))


def rated_with(model: TagModel, path: str) -> TagModel:
    """``model`` with its tags rated against the popularity counts in the file ``path``
    (instead of those it was fitted with), and that source in its settings."""
    from tagspark.config import PopularityConfig

    cfg = PopularityConfig(**dict(model.settings.get("popularity", {}), file=path))
    stats = popularity.rerated(model.stats, cfg, popularity.read_popularity(path))
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


def suggest(
    model: TagModel,
    tags: list[str],
    n: int = 15,
    prefer_in_band: bool = False,
    recommended_only: bool = False,
) -> dict[str, Any]:
    """Suggestions for a post with the (normalised) ``tags``, as a JSON-able dict:
    ``input_tags``, ``known_tags``, ``unknown_tags``, ``categories`` (``id, name, size,
    distance``: :func:`places`), ``suggestions`` (:func:`ranked`), ``popularity`` (its
    source), ``popularity_note`` (what an estimate assumes, when it rates most tags out of
    the band) and ``message`` (why there are none, or null)."""
    packed, unknown = model.pack([tags])
    as_list = pa.array([tags], pa.list_(pa.string()))
    if model.rare is not None and unknown[0]:  # a rare tag is known by its anchor
        rare = model.rare.find(pa.array(unknown[0], pa.string())) >= 0
        unknown = [[t for t, r in zip(unknown[0], rare, strict=True) if not r]]
    known = [t for t in tags if t not in set(unknown[0])]
    result: dict[str, Any] = {
        "input_tags": tags,
        "known_tags": known,
        "unknown_tags": unknown[0],
        "popularity": model.settings.get("popularity_source"),
        "popularity_note": popularity_note(model),
        "categories": [],
        "suggestions": [],
        "message": None,
    }
    if not known:
        result["message"] = str(why_none(np.array([bool(tags)]), np.array([False]))[0])
        return result
    for cid, distance in places(model, packed):
        category = model.by_id[cid]
        result["categories"].append(
            {"id": cid, "name": category.name, "size": category.size, "distance": distance}
        )
    found = ranked(model, packed, n, prefer_in_band, recommended_only, tags=as_list)
    result["suggestions"] = found.to_pylist()[0]
    if not result["suggestions"]:
        category = np.array([result["categories"][0]["id"] if result["categories"] else MIXED_ID])
        yes = np.array([True])
        result["message"] = str(why_none(yes, yes, category, recommended_only)[0])
    return result


def why_none(
    has_tags: np.ndarray,
    has_known: np.ndarray,
    category: np.ndarray | None = None,
    recommended_only: bool = False,
) -> np.ndarray:
    """Why each post (without suggestions) has none: no tags, none known, only generic
    ones (its ``category`` is mixed), or no tag of the corpus goes with them."""
    none_fit = "no tag of the corpus goes with the post's tags" + (
        " and is recommended" if recommended_only else ""
    )
    if category is None:
        category = np.zeros(len(has_tags), dtype=np.int64)
    return np.select(
        [~has_tags, ~has_known, category == MIXED_ID],
        [
            "the post has no tags",
            "none of the post's tags is known to the model: nothing to place it by",
            "the post has only generic tags: it belongs to no category (mixed)",
        ],
        default=none_fit,
    )


SUGGESTION_FIELDS = pa.struct(
    [
        ("tag", pa.string()),
        ("score", pa.float64()),
        ("goes_with", pa.list_(pa.struct([("tag", pa.string()), ("posts", pa.int64())]))),
        ("source", pa.string()),
        ("category_id", pa.int32()),
        ("category", pa.string()),
        ("posts", pa.int64()),
        *RATING_FIELDS,
    ]
)
# where a suggestion comes from: the tags that go with the post's tags, or (for a post
# whose tags have no companions, e.g. all rare) its category's listed tags
NEIGHBOURS, CATEGORY = "neighbours", "category"


def ranked(
    model: TagModel,
    packed: pa.Array,
    n: int,
    prefer_in_band: bool = False,
    recommended_only: bool = False,
    category: np.ndarray | None = None,
    tags: pa.ListArray | None = None,
    rare_at: np.ndarray | None = None,
) -> pa.ListArray:
    """The ``n`` best tags for each post of a packed ``idx`` column, best first, as a list
    of :data:`SUGGESTION_FIELDS` a post: the one ranking of ``suggest``, ``suggest
    --input`` and the Python API, vectorised over the batch.

    A candidate ``t`` scores ``sum over the post's tags i of w(i, t)``
    (:mod:`tagspark.neighbours`); it ``goes_with`` the post's tags it co-occurs with, each
    with the posts that carry both. ``tags`` (the posts' normalised tags, a list column)
    adds the post's rare tags, each walked through its anchor
    (:class:`tagspark.neighbours.RareTags`): the anchor ``goes_with`` the rare tag. Left
    out: the post's own tags and generic tags; with ``recommended_only``, every tag not
    recommended. ``prefer_in_band`` puts tags in the popularity band first. A post with
    fewer than ``n`` such tags (its tags have no companions and no anchor) gets its
    category's listed tags after them, by their weight there (``source`` says which).
    ``category``: each post's (:meth:`TagModel.category_of`), and ``rare_at``, each of the
    flattened ``tags``' place in the rare tags (:meth:`RareTags.find`), when the caller has
    them already.
    """
    n_tags = len(model.tags)
    idx, rows = unpack_sets(packed)
    e_row, e_tag, e_score, e_posts, e_via, via_names = _evidence(model, idx, rows, tags, rare_at)
    # the category fallback: each post's category's listed tags, scored below any companion
    if category is None:
        category = model.category_of(packed)
    fallback_row, fallback_tag, fallback_weight = _category_tags(model, category)
    row = np.concatenate([e_row, fallback_row])
    tag = np.concatenate([e_tag, fallback_tag])
    # one pair a (post, candidate), in (post, tag) order
    keys, pair = unique_inverse(row * n_tags + tag)
    companion_pair = pair[: len(e_row)]
    total = np.bincount(companion_pair, e_score, minlength=len(keys))
    category_only = np.bincount(companion_pair, minlength=len(keys)) == 0
    weight = np.zeros(len(keys))  # a post's category lists a tag once
    weight[pair[len(e_row) :]] = fallback_weight
    out_row, out_tag = keys // n_tags, keys % n_tags
    # left out: the post's own tags (both key lists are sorted), generic tags and, with
    # recommended_only, every tag not recommended
    own = rows * n_tags + idx
    slot = np.minimum(np.searchsorted(own, keys), max(len(own) - 1, 0))
    allowed = ~model.stats.generic[out_tag]
    if len(own):
        allowed &= own[slot] != keys
    if recommended_only:
        allowed &= model.stats.recommended[out_tag]
    candidates = np.flatnonzero(allowed)
    # within a post: companions before category-only tags (in-band ones first with
    # prefer_in_band), by score, else by weight; ties keep the (post, tag) order
    group = category_only[candidates].astype(np.int8)
    if prefer_in_band:
        group += 2 * (model.stats.band[out_tag[candidates]] != popularity.IN_BAND)
    value = np.where(category_only, weight, total)[candidates]
    order = candidates[np.lexsort((-value, group, out_row[candidates]))]
    chosen = order[ranks_within(out_row[order]) < n]
    # why: the evidence behind each chosen pair that co-occurs with the post's tags
    place = np.full(len(keys), -1, dtype=np.int64)
    place[chosen] = np.arange(len(chosen))
    entry = place[companion_pair]
    hit = (entry >= 0) & (e_posts > 0)
    reasons = _goes_with(entry[hit], e_via[hit], e_posts[hit], len(chosen), via_names)
    return _suggestions(model, out_row[chosen], out_tag[chosen], total[chosen],
                        category_only[chosen], reasons, len(packed))  # fmt: skip


def _evidence(
    model: TagModel,
    idx: np.ndarray,
    rows: np.ndarray,
    tags: pa.ListArray | None,
    rare_at: np.ndarray | None = None,
) -> tuple:
    """``row, tag, score, posts, via, via_names``: every ``w(i, t)`` behind the posts'
    candidates. From each vocabulary tag ``i`` of a post (``idx, rows``), its companions;
    from each rare tag of ``tags``, its anchor (at ``(1 - walk) P``) and the anchor's
    companions (at ``walk P``, ``P = P(anchor | rare tag)``). ``posts`` are the posts behind
    an entry that names a post's tag (0: none, as for a walk's), ``via`` that tag:
    ``via_names[via]``, the vocabulary then the rare tags met."""
    nb = model.neighbours
    lo, count = nb.offsets[idx], nb.offsets[idx + 1] - nb.offsets[idx]
    occurrence = np.repeat(np.arange(len(idx)), count)
    at = np.arange(count.sum()) + np.repeat(lo - np.cumsum(count) + count, count)
    parts = [(rows[occurrence], nb.neighbour[at], nb.score[at], nb.posts[at], idx[occurrence])]
    rare_names = pa.array([], pa.string())
    if model.rare is not None and tags is not None and len(model.rare):
        flat = pc.list_flatten(tags)
        found = model.rare.find(flat) if rare_at is None else rare_at
        hit = found >= 0
        if hit.any():
            row = pc.list_parent_indices(tags).to_numpy()[hit]
            found = found[hit]
            rare_names = flat.filter(pa.array(hit))
            anchor = model.rare.anchor[found]
            p = model.rare.posts[found] / model.rare.df[found]
            walk = float(model.settings.get("suggest", {}).get("walk", 0.5))
            lo, count = nb.offsets[anchor], nb.offsets[anchor + 1] - nb.offsets[anchor]
            step = np.repeat(np.arange(len(anchor)), count)
            at = np.arange(count.sum()) + np.repeat(lo - np.cumsum(count) + count, count)
            n_tags = len(model.tags)
            parts.append(
                (
                    row,
                    anchor,
                    (1 - walk) * p,
                    model.rare.posts[found],
                    n_tags + np.arange(len(anchor)),
                )
            )
            no_reason = np.zeros(len(at), dtype=np.int64)
            parts.append(
                (row[step], nb.neighbour[at], walk * p[step] * nb.score[at], no_reason, no_reason)
            )
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]
    e_row, e_tag, e_score, e_posts, e_via = columns
    return (
        e_row.astype(np.int64),
        e_tag.astype(np.int64),
        e_score.astype(float),
        e_posts.astype(np.int64),
        e_via.astype(np.int64),
        (model.tag_array, rare_names),
    )


def _category_tags(model: TagModel, category: np.ndarray) -> tuple[np.ndarray, ...]:
    """``row, tag, weight``: every listed tag of each post's ``category`` (none for
    mixed)."""
    listed = _listed(model)
    rows, tags, weights = [], [], []
    for c in np.unique(category[category != MIXED_ID]):
        members = np.flatnonzero(category == c)
        tag, weight = listed.get(int(c), (np.zeros(0, np.int64), np.zeros(0)))
        rows.append(np.repeat(members, len(tag)))
        tags.append(np.tile(tag, len(members)))
        weights.append(np.tile(weight, len(members)))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate(rows), np.concatenate(tags), np.concatenate(weights)


def _listed(model: TagModel) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each category's listed tags (vocabulary indices) and their weights; a model read in
    part holds those of the post's category only."""
    cached = model.__dict__.get("_listed_tags")
    if cached is None:
        cached = {}
        for c in model.categories:
            held = [t for t in c.tags if t.tag in model.position]
            if c.id != MIXED_ID and held:
                cached[c.id] = (
                    np.array([model.position[t.tag] for t in held], dtype=np.int64),
                    np.array([t.weight for t in held], dtype=float),
                )
        model.__dict__["_listed_tags"] = cached
    return cached


def _goes_with(
    slot: np.ndarray, via: np.ndarray, posts: np.ndarray, n_chosen: int, names: tuple
) -> pa.ListArray:
    """For each of ``n_chosen`` suggestions, the post's tags it co-occurs with (most posts
    first) and in how many posts: ``via`` and ``posts`` of the evidence entries behind
    suggestion ``slot``; ``names`` (the vocabulary, the post's rare tags) name ``via``."""
    order = _by_slot_most_posts_first(slot, posts, via)
    slot, tag, count = slot[order], via[order], posts[order]
    offsets = np.zeros(n_chosen + 1, dtype=np.int32)
    np.cumsum(np.bincount(slot, minlength=n_chosen), out=offsets[1:])
    vocabulary, rare = names
    n_tags = len(vocabulary)
    is_rare = tag >= n_tags
    if is_rare.any():  # each part taken from its own array, then put back in order
        parts = pa.concat_arrays(
            [
                vocabulary.take(pa.array(tag[~is_rare], pa.int64())),
                rare.take(pa.array(tag[is_rare] - n_tags, pa.int64())),
            ]
        )
        where = np.empty(len(tag), dtype=np.int64)
        where[np.flatnonzero(~is_rare)] = np.arange(int((~is_rare).sum()))
        where[np.flatnonzero(is_rare)] = int((~is_rare).sum()) + np.arange(int(is_rare.sum()))
        named = parts.take(pa.array(where))
    else:
        named = vocabulary.take(pa.array(tag, pa.int64()))
    entries = pa.StructArray.from_arrays([named, pa.array(count, pa.int64())], ["tag", "posts"])
    return pa.ListArray.from_arrays(pa.array(offsets), entries)


def _by_slot_most_posts_first(slot: np.ndarray, posts: np.ndarray, via: np.ndarray) -> np.ndarray:
    """The order of ``np.lexsort((via, -posts, slot))``, as one sort of one integer key when
    the three fit in 64 bits (slots x posts x tags under 2^63, as on every model measured:
    the 2M long tail's is about 10^17), else lexsort itself; a third of lexsort's time
    (measured 0.045 s against 0.136 s for 600,000 entries).

    >>> slot, posts, via = np.array([1, 0, 0, 0]), np.array([5, 2, 9, 2]), np.array([0, 3, 1, 2])
    >>> _by_slot_most_posts_first(slot, posts, via).tolist()
    [2, 3, 1, 0]
    """
    if not len(slot):
        return np.zeros(0, dtype=np.int64)
    n_posts, n_via = int(posts.max()) + 1, int(via.max()) + 1
    if (int(slot.max()) + 1) * n_posts * n_via >= 2**63:
        return np.lexsort((via, -posts, slot))
    slot, posts, via = slot.astype(np.int64), posts.astype(np.int64), via.astype(np.int64)
    return np.argsort((slot * n_posts + (n_posts - 1 - posts)) * n_via + via, kind="stable")


def _suggestions(
    model: TagModel,
    row: np.ndarray,
    tag: np.ndarray,
    score: np.ndarray,
    category_only: np.ndarray,
    reasons: pa.ListArray,
    n_rows: int,
) -> pa.ListArray:
    """The list column of :data:`SUGGESTION_FIELDS` of ``n_rows`` posts from entries
    ordered by ``row``, best first within it (``reasons`` in the same order)."""
    stats = model.stats
    top = stats.top_category[tag]
    fields = [
        model.tag_array.take(pa.array(tag, pa.int64())),
        pa.array(score, pa.float64()),
        reasons,
        pa.array(np.where(category_only, CATEGORY, NEIGHBOURS)),
        pa.array(top, pa.int32()),
        category_names(model.categories, top),
        pa.array(stats.posts[tag], pa.int64()),
        pa.array(stats.popularity[tag], pa.int64()),
        pa.array(np.where(stats.from_file[tag], popularity.FILE, popularity.ESTIMATE)),
        pa.array(stats.band[tag].astype(str)),
        pa.array(np.round(stats.specificity[tag], 4), pa.float64()),
        pa.array(stats.recommended[tag], pa.bool_()),
    ]
    entries = pa.StructArray.from_arrays(fields, fields=list(SUGGESTION_FIELDS))
    offsets = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(row, minlength=n_rows), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), entries)


def popularity_note(model: TagModel) -> str | None:
    """What an estimated popularity assumes, when it rates most of the model's tags out of
    the band (a small corpus times a network's posts makes almost every tag too popular);
    None for counts from a file, or a band the estimate fills."""
    stats = model.stats
    if stats.from_file.any() or not len(stats.band):
        return None
    rated = model.settings.get("popularity", {})
    network = rated.get("network_posts", 0)
    if model.partial:  # the whole vocabulary's share, saved with the model
        too_popular = float(model.settings.get("too_popular_share") or 0.0)
    else:
        too_popular = float(np.mean(stats.band == popularity.TOO_POPULAR))
    if too_popular < 0.5:
        return None
    return (
        f"popularity is estimated as a tag's share of the {model.n_posts:,} posts times "
        f"{network:,} network posts (popularity.network_posts); that rates "
        f"{too_popular:.0%} of the tags too popular, so few are recommended. Give real "
        "counts with --popularity FILE, or set popularity.network_posts for your network"
    )


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
