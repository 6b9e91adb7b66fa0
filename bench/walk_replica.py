"""tagspark's suggestion ranking written again from its docstrings, in scipy over the
training posts, to check the product against and to try variants of it fast.

    python bench/suggest_quality.py --input FILE --k K --keep DIR
    python bench/walk_replica.py --keep DIR --input FILE [--walk W] [--rare-weight X]

The replica follows ``tagspark.neighbours`` and ``tagspark.suggest``: the vocabulary is
every training tag in at least 2 posts (most frequent first, ties by name), the companions
belong to its ``suggest.max_tags`` most frequent non-generic tags (each keeps its 50 most
frequent, the walk's second step the first 10 of each), every other non-generic tag is
rare and walks through one anchor (the head, the most frequent companion-bearing tag, of
most of its posts), and a post's candidates add up ``w(i, t)`` over its tags (ties to the
more frequent tag). It leaves out the category fallback, which only fills lists shorter
than 10.

It prints its scores (the protocol of ``bench/suggest_quality.py``, on the same split),
tagspark's from the kept suggestions, and how many of the test posts' lists are the same.
It knows the default ``suggest.neighbours``, ``suggest.max_tags`` and
``features.min_doc_freq`` only, and says so for a model fitted with others.
``--seeds N`` also scores the replica and co-occurrence on N shuffles of the test posts'
tags (seeds ``--seed`` onwards), with their means and standard errors: on
stackexchange_5sites that is seconds for 20. ``--walk``, ``--rare-weight`` (a factor on
every rare tag's evidence), ``--multi-walk W`` (posts of two or more input tags weigh the
walk's term at W, their companions cut as tagspark cuts them) and
``--rare-anchors N`` (a tag seen once walks through up to N tags of its post, each at
P = 1, instead of its head) are the variants measured in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from scipy import sparse
from suggest_quality import TOP, halves, peers, print_seeds, read_corpus, scores

# the default config's suggest.neighbours, suggest.max_tags and features.min_doc_freq
NEIGHBOURS, MAX_TAGS, MIN_DOC_FREQ = 50, 100_000, 2
SECOND_STEP = 10  # tagspark.neighbours.SECOND_STEP


def first_per_row(m: sparse.spmatrix, n: int) -> sparse.csr_matrix:
    """Each row's ``n`` largest entries, ties to the lower column."""
    m = m.tocoo()
    order = np.lexsort((m.col, -m.data, m.row))
    row, col, value = m.row[order], m.col[order], m.data[order]
    start = np.r_[0, np.flatnonzero(np.diff(row)) + 1]
    rank = np.arange(len(row)) - np.repeat(start, np.diff(np.r_[start, len(row)]))
    kept = rank < n
    return sparse.csr_matrix((value[kept], (row[kept], col[kept])), shape=m.shape)


def companion_parts(train, df: Counter, given: list[str], walk: float) -> tuple:
    """``w(i, t)`` over the ``given`` tags (index order), each row's 50 heaviest, and its two
    terms at ``w``'s entries: ``P(t | i)`` and the walk's ``sum over j of P(j | i) P(t | j)``."""
    index = {t: i for i, t in enumerate(given)}
    pairs = [(r, index[t]) for r, tags in enumerate(train) for t in tags if t in index]
    rows, cols = np.array(pairs).T
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(train), len(given)))
    c = (x.T @ x).tocsr()
    c.setdiag(0)
    c.eliminate_zeros()
    p = sparse.diags(1 / np.array([df[t] for t in given], float)) @ first_per_row(c, NEIGHBOURS)
    q = p @ first_per_row(p, SECOND_STEP)
    w = ((1 - walk) * p + walk * q).tolil()
    w.setdiag(0)
    w = first_per_row(w.tocsr(), NEIGHBOURS)
    kept = (w != 0).astype(float)
    return w, p.multiply(kept).tocsr(), q.multiply(kept).tocsr()


def anchors(train, df: Counter, index: dict, generic: set, rare_anchors: int) -> dict:
    """Each rare tag's anchors, ``[(given tag, P(anchor | tag))]``."""
    heads: dict[str, Counter] = {}
    post_of: dict[str, list[str]] = {}
    for tags in train:
        bearing = sorted((t for t in tags if t in index), key=index.get)
        if not bearing:
            continue
        for t in tags:
            if t not in index and t not in generic:
                heads.setdefault(t, Counter())[bearing[0]] += 1
                if rare_anchors and df[t] == 1:
                    post_of[t] = bearing[:rare_anchors]
    out = {}
    for t, counted in heads.items():
        if t in post_of:
            out[t] = [(index[a], 1.0) for a in post_of[t]]
        else:
            head, posts = max(counted.items(), key=lambda kv: (kv[1], -index[kv[0]]))
            out[t] = [(index[head], posts / df[t])]
    return out


def add(score: dict[int, float], w: sparse.csr_matrix, row: int, factor: float) -> None:
    """``score`` plus ``factor`` x row ``row`` of ``w``."""
    lo, hi = w.indptr[row], w.indptr[row + 1]
    for t, v in zip(w.indices[lo:hi], w.data[lo:hi], strict=True):
        score[t] = score.get(t, 0.0) + factor * v


def suggested(test, w, index, given, rare, walk: float, rare_weight: float, multi=None) -> list:
    """The 10 best tags for each test post's input. ``multi``, ``(w', walk')``: a post of
    two or more input tags scores its own tags' rows of ``w'`` and its rare tags' anchors
    at ``walk'`` instead (the ``--multi-walk`` variant)."""
    out = []
    for tags, _ in test:
        score: dict[int, float] = {}
        own = [index[t] for t in tags if t in index]
        rows, step = (w, walk) if multi is None or len(tags) < 2 else multi
        for i in own:
            add(score, rows, i, 1.0)
        for t in tags:
            for anchor, p in rare.get(t, []):
                p *= rare_weight
                score[anchor] = score.get(anchor, 0.0) + (1 - step) * p
                add(score, w, anchor, step * p)
        for i in own:
            score.pop(i, None)
        best = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
        out.append([given[t] for t, _ in best])
    return out


def replica(train, generic: set, walk: float = 0.5, rare_anchors: int = 0) -> tuple:
    """``given, index, w, rare``: the tags with companions (index order), their index, their
    companions' ``w`` and the rare tags' anchors, from the training posts' tags; then
    ``w``'s two terms (:func:`companion_parts`)."""
    df = Counter(t for tags in train for t in tags)
    vocabulary = sorted((t for t in df if df[t] >= MIN_DOC_FREQ), key=lambda t: (-df[t], t))
    given = [t for t in vocabulary if t not in generic][:MAX_TAGS]
    index = {t: i for i, t in enumerate(given)}
    w, direct, second = companion_parts(train, df, given, walk)
    return given, index, w, anchors(train, df, index, generic, rare_anchors), (direct, second)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", required=True, type=Path, help="suggest_quality's --keep")
    parser.add_argument("--input", required=True, type=Path, help="the corpus it split")
    parser.add_argument("--seed", type=int, default=1, help="the split's seed")
    parser.add_argument("--walk", type=float, help="default: the kept model's suggest.walk")
    parser.add_argument("--rare-weight", type=float, default=1.0)
    parser.add_argument("--rare-anchors", type=int, default=0)
    parser.add_argument("--multi-walk", type=float,
                        help="the walk for posts of two or more input tags")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=1,
                        help="also score the replica and co-occurrence on N shuffles")  # fmt: skip
    args = parser.parse_args()

    corpus = read_corpus(args.input)
    data = halves(corpus, args.seed)
    metadata = json.loads((args.keep / "model" / "model" / "metadata.json").read_text())
    generic = {g["tag"] for g in metadata["generic_tags"]}
    config = metadata["config"]
    assumed = {("suggest", "neighbours"): NEIGHBOURS, ("suggest", "max_tags"): MAX_TAGS,
               ("features", "min_doc_freq"): MIN_DOC_FREQ}  # fmt: skip
    for (section, key), value in assumed.items():
        if config[section][key] != value:
            parser.error(f"the kept model has {section}.{key}={config[section][key]}; "
                         f"the replica knows only the default, {value}")  # fmt: skip
    walk = config["suggest"]["walk"] if args.walk is None else args.walk
    given, index, w, rare, (direct, second) = replica(data.train, generic, walk, args.rare_anchors)
    multi = None
    if args.multi_walk is not None:
        multi = (
            ((1 - args.multi_walk) * direct + args.multi_walk * second).tocsr(),
            args.multi_walk,
        )
    ours = suggested(data.test, w, index, given, rare, walk, args.rare_weight, multi)
    answers = args.keep / f"suggested-seed{args.seed}"  # a kept --seeds run's
    if not answers.exists():
        answers = args.keep / "suggested"
    table = pq.read_table(answers / "suggestions", columns=["id", "suggestions"])
    found = {r["id"]: [s["tag"] for s in r["suggestions"] or []] for r in table.to_pylist()}
    theirs = [found.get(f"test{i}", []) for i in range(len(data.test))]
    same = sum(
        a == [t for t in b if t not in generic][:TOP] for a, b in zip(ours, theirs, strict=True)
    )
    print(f"{len(given):,} tags with companions, {len(rare):,} rare tags")
    for name, lists in (("replica", ours), ("tagspark", theirs)):
        print(f"{name:<10} recall@10 {scores(lists, data.test, generic)['recall@10']:.5f}")
    print(f"the same 10 tags for {same:,} of {len(ours):,} test posts")
    if args.seeds > 1:
        per_seed = []
        for seed in range(args.seed, args.seed + args.seeds):
            test = halves(corpus, seed).test  # the same training posts, other halves
            lists = {
                "co-occurrence": peers(data.train, test, generic)["co-occurrence"],
                "replica": suggested(test, w, index, given, rare, walk, args.rare_weight, multi),
            }
            results = {n: scores(found, test, generic) for n, found in lists.items()}
            per_seed.append({"seed": seed, "results": results})
        print(f"recall@10 over {args.seeds} shuffles of the test posts' tags:")
        print_seeds(per_seed, ours="replica")


if __name__ == "__main__":
    main()
