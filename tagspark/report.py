"""``report.html``: the catalogue as one self-contained page (no external script, style,
font or image; readable offline and printable).

The page embeds its data as JSON and draws everything with its own script
(``tagspark/data/report.js``, styled by ``report.css``, both copied into the page):
the run at a glance, a bar chart of category sizes and the k-selection curve (inline SVG),
category cards with weight bars and popularity marks, generic tags and the mixed bucket, the
evaluation against labels, a search box that filters the cards as you type, tags that show
every category they appear in when clicked, and a "tags for my post" box that ranks tags by
how well they go with the post's tags, as ``tagspark suggest`` does
(:func:`tagspark.suggest.ranked`), from the companions of every listed tag and of the most
frequent others, embedded in the page (:func:`suggest_data`). Pure Python: ``tagspark
report`` needs no Spark.
"""

from __future__ import annotations

import html
import itertools
import json
from importlib import resources
from typing import Any

import numpy as np

from tagspark.centres import MIXED_ID
from tagspark.naming import Category

# the companions of each listed tag that the page embeds (the model keeps up to
# suggest.neighbours): a post of one listed tag gets the same first PAGE_COMPANIONS
# suggestions as tagspark suggest; at k=200 with 20 tags a category the page stays under
# 3 MB even when every companion is another tag
PAGE_COMPANIONS = 15
# the tags whose companions the page holds: every listed tag, then the most frequent others
PAGE_TAGS = 4000
_BANDS = ("too_rare", "in_band", "too_popular")


def suggest_data(model) -> dict[str, Any] | None:
    """What the page's "tags for my post" ranks with: the first :data:`PAGE_COMPANIONS`
    companions of every listed tag and of the most frequent others, :data:`PAGE_TAGS` tags
    in all (``companions[tag] = [[name, score, posts], ...]``,
    names as indices into ``names``, which are in the vocabulary's order, so that ties
    fall as in :func:`tagspark.suggest.ranked`), and for each name its band, recommended
    mark and category (``stats``). None without a model."""
    if model is None or model.neighbours is None:
        return None
    nb, stats = model.neighbours, model.stats
    listed = {model.position[t.tag] for c in model.categories for t in c.tags}
    frequent = (i for i in range(len(model.tags)) if i not in listed)
    listed = sorted(listed | set(itertools.islice(frequent, max(0, PAGE_TAGS - len(listed)))))
    rows = {
        i: slice(nb.offsets[i], min(nb.offsets[i + 1], nb.offsets[i] + PAGE_COMPANIONS))
        for i in listed
    }
    used = np.unique(np.concatenate([[*listed], *[nb.neighbour[r] for r in rows.values()]]))
    slot = {int(i): k for k, i in enumerate(used)}
    return {
        "names": [model.tags[i] for i in used],
        "stats": [
            [
                _BANDS.index(str(stats.band[i])) if str(stats.band[i]) in _BANDS else -1,
                int(bool(stats.recommended[i])),
                int(stats.top_category[i]),
            ]
            for i in used
        ],
        "companions": {
            model.tags[i]: [
                [slot[int(j)], float(f"{w:.6g}"), int(c)]
                for j, w, c in zip(nb.neighbour[r], nb.score[r], nb.posts[r], strict=True)
            ]
            for i, r in rows.items()
        },
        "bands": list(_BANDS),
    }


def report_data(categories: list[Category], metadata: dict[str, Any], model=None) -> dict[str, Any]:
    """What the page shows, as JSON-able data; with the ``model``, what its "tags for my
    post" box ranks with (:func:`suggest_data`)."""
    counts = metadata.get("counts", {})
    total = max(sum(c.size for c in categories), 1)
    cfg = metadata.get("config", {})
    chosen = metadata.get("choose_k")
    return {
        "title": _title(metadata),
        "run": {
            "read": counts.get("read"),
            "kept": counts.get("kept"),
            "rejected": counts.get("rejected"),
            "no_tags": counts.get("no_tags"),
            "truncated": counts.get("truncated"),
            "mixed": counts.get("mixed"),
            "placed_by_tags": counts.get("placed_by_tags"),
            "rejected_by_reason": metadata.get("rejected_by_reason", {}),
            "k": cfg.get("kmeans", {}).get("k"),
            "k_chosen_by": "choose-k (highest silhouette)" if chosen else "given (--k)",
            "method": cfg.get("features", {}).get("method"),
            "seed": metadata.get("seed"),
            "timings": metadata.get("timings_seconds", {}),
            "popularity": metadata.get("popularity"),
            "finished_at": metadata.get("finished_at"),
        },
        "categories": [
            {
                "id": c.id,
                "name": c.name,
                "size": c.size,
                "share": c.size / total,
                "mixed": c.id == MIXED_ID,
                "tags": [
                    {
                        "tag": t.tag,
                        "weight": t.weight,
                        "posts": t.posts,
                        "popularity": t.popularity,
                        "band": t.band,
                        "specificity": t.specificity,
                        "recommended": bool(t.recommended),
                    }
                    for t in c.tags
                ],
            }
            for c in categories
        ],
        "generic": metadata.get("generic_tags") or [],
        "curve": chosen,
        "evaluation": metadata.get("evaluation"),
        "suggest": suggest_data(model),
    }


def _title(metadata: dict[str, Any]) -> str:
    paths = metadata.get("input", {}).get("paths") or []
    source = paths[0].rsplit("/", 1)[-1] if len(paths) == 1 else f"{len(paths)} files"
    return f"tagspark categories: {source}" if paths else "tagspark categories"


def report_html(categories: list[Category], metadata: dict[str, Any], model=None) -> str:
    """The page for ``categories`` (largest first, rated) of the run in ``metadata``; with
    the fitted ``model`` (a :class:`tagspark.model.TagModel`), its "tags for my post" box
    ranks as ``tagspark suggest`` does."""
    data = report_data(categories, metadata, model)
    embedded = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    embedded = embedded.replace("</", "<\\/")  # never ends the script element early
    assets = resources.files("tagspark") / "data"
    return (
        _PAGE.replace("{{title}}", html.escape(data["title"]))
        .replace("{{style}}", (assets / "report.css").read_text(encoding="utf-8"))
        .replace("{{data}}", embedded)
        .replace("{{script}}", (assets / "report.js").read_text(encoding="utf-8"))
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>{{style}}</style>
</head>
<body>
<header><h1>{{title}}</h1><p id="subtitle"></p></header>
<main>
<section aria-labelledby="glance-h"><h2 id="glance-h">The run at a glance</h2>
<dl id="glance"></dl></section>
<section aria-labelledby="sizes-h"><h2 id="sizes-h">Category sizes</h2>
<div id="sizes" class="chart"></div></section>
<section id="curve-section" aria-labelledby="curve-h" hidden><h2 id="curve-h">Choosing k</h2>
<div id="curve" class="chart"></div></section>
<section aria-labelledby="post-h"><h2 id="post-h">Tags for my post</h2>
<form id="post-form" class="tools">
<label for="post-tags">My post's tags</label>
<input id="post-tags" type="text" placeholder="#espresso #grinder" autocomplete="off">
<button type="submit">Suggest</button>
</form>
<div id="post-result" aria-live="polite"></div></section>
<section aria-labelledby="cards-h"><h2 id="cards-h">Categories</h2>
<div class="tools">
<label for="search">Search by tag or name</label>
<input id="search" type="search" placeholder="tag or name prefix, e.g. sail" autocomplete="off">
<span id="shown" aria-live="polite"></span>
<button id="clear" type="button">Show all</button>
</div>
<div id="tag-info" aria-live="polite"></div>
<p class="legend"><span class="rec">&#9733; recommended</span> in the popularity band, specific
to its category, not generic. Bands: <span class="band in_band">in band</span>
<span class="band too_popular">too popular</span> <span class="band too_rare">too rare</span></p>
<div id="cards"></div></section>
<section aria-labelledby="generic-h"><h2 id="generic-h">Generic tags and the mixed bucket</h2>
<div id="generic"></div></section>
<section id="eval-section" aria-labelledby="eval-h" hidden><h2 id="eval-h">Against the labels</h2>
<dl id="evaluation"></dl></section>
</main>
<footer>Made by tagspark. This page works offline: everything it shows is in the file.</footer>
<script type="application/json" id="data">{{data}}</script>
<script>{{script}}</script>
</body>
</html>
"""
