"""How well ``tagspark suggest`` finds a post's hidden tags, side by side with two peers on
the same split: the standard test of tag recommenders.

    python bench/suggest_quality.py --input ../shared/data/stackexchange_5sites.jsonl --k 5

The protocol: every 10th post (by line, the first line is post 0) with at least 2 tags is a
test post; its tags are shuffled (seeded) and the first half (at least one) is its input,
the rest hidden; every other post trains the model (``tagspark cluster --k K --seed 1``),
and ``tagspark suggest --input`` gives 10 tags a test post. Scored on the tags a person
should be offered: the model's generic tags (``model/metadata.json``) are left out of the
hidden tags and of every method's list; a test post left with no hidden tag is not scored.
recall@10 is the share of the hidden tags found (averaged over test posts), HR@10 the share
of test posts with at least one found, precision@10 the found ones over 10.

The peers, on the training posts: ``popular`` (the most frequent tags the post does not
have) and ``co-occurrence`` (for each candidate t, the sum over the input tags i of P(t | i)
= posts with both / posts with i; Sigurbjoernsson & van Zwol, WWW 2008), computed with
scipy over every training post, unbounded. Tags are normalised as tagspark does.

``--seeds N`` scores N shuffles (seeds ``--seed`` to ``--seed`` + N - 1) of the test posts'
tags. The test posts are every 10th post whatever the seed, so the training posts and the
model are the same: one ``cluster``, then one ``suggest --input`` a seed. It prints each
seed's recall@10 and the mean with its standard error over the seeds, of each method and of
tagspark's ratio to co-occurrence: one split's ratio moves by a few hundredths with the
shuffle on stackexchange_5sites's 542 test posts.

``--ceiling`` adds a reference row on a corpus whose posts carry a ``label``: each test
post's label's most frequent training tags (:func:`label_ceiling`). On a generated corpus,
whose label is the planted theme, that is about the best any method can score.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow.parquet as pq
from scipy import sparse

from tagspark.tagrules import extract_hashtags, normalise_tags

TOP = 10
CLI = [sys.executable, "-m", "tagspark.cli"]


def post_tags(record: dict) -> list[str]:
    tags = record.get("tags")
    if tags is None:
        tags = extract_hashtags(record.get("caption") or record.get("text") or "")
    return normalise_tags(tags if isinstance(tags, list) else str(tags).split(), 30)


class Split(NamedTuple):
    train: list[list[str]]  # the training posts' tags
    test: list[tuple[list[str], list[str]]]  # each test post's (input, hidden) tags
    train_labels: list[str | None]
    test_labels: list[str | None]


class Corpus(NamedTuple):
    train: list[list[str]]  # the training posts' tags
    test: list[list[str]]  # the test posts' tags, before any shuffle
    train_labels: list[str | None]
    test_labels: list[str | None]


def read_corpus(path: Path) -> Corpus:
    """The protocol's training and test posts, with each post's ``label`` (None where it has
    none). The test posts are every 10th post whatever the seed, so this is read once."""
    out = Corpus([], [], [], [])
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines):
            record = json.loads(line)
            tags = post_tags(record)
            if number % 10 == 0 and len(tags) >= 2:
                out.test.append(tags)
                out.test_labels.append(record.get("label"))
            elif tags:
                out.train.append(tags)
                out.train_labels.append(record.get("label"))
    return out


def halves(corpus: Corpus, seed: int) -> Split:
    """The split for ``seed``: each test post's tags shuffled, the first half (at least one)
    its input, the rest hidden; the training posts are ``corpus``'s own lists, not copies."""
    rng = random.Random(seed)
    test = []
    for tags in corpus.test:
        shuffled = tags[:]
        rng.shuffle(shuffled)
        half = max(1, len(shuffled) // 2)
        test.append((shuffled[:half], shuffled[half:]))
    return Split(corpus.train, test, corpus.train_labels, corpus.test_labels)


def label_ceiling(data: Split, generic: set[str]) -> list[list[str]]:
    """A reference, not a method: told each test post's label (a generated corpus's planted
    theme), offer the label's 10 most frequent training tags, once the input holds a tag
    that is not generic (no method can tell a theme from generic tags alone; those posts get
    the most popular tags). Tags are drawn independently given the theme in
    ``bench/generate.py``, so there this is about the best any method can score."""
    by_label: dict = {}
    overall: Counter = Counter()
    for tags, label in zip(data.train, data.train_labels, strict=True):
        kept = [t for t in tags if t not in generic]
        by_label.setdefault(label, Counter()).update(kept)
        overall.update(kept)

    def ranked(counts: Counter) -> list[str]:
        return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:200]]

    popular = ranked(overall)
    firsts = {label: ranked(counts) for label, counts in by_label.items()}
    out = []
    for (given, _), label in zip(data.test, data.test_labels, strict=True):
        known = any(t not in generic for t in given) and label in firsts
        have = set(given)
        out.append([t for t in (firsts[label] if known else popular) if t not in have][:TOP])
    return out


def scores(lists: list[list[str]], test, generic: set[str]) -> dict[str, float]:
    recall = hits = precision = 0.0
    scored = 0
    for (_, hidden), found in zip(test, lists, strict=True):
        hidden = {t for t in hidden if t not in generic}
        if not hidden:
            continue
        top = [t for t in found if t not in generic][:TOP]
        right = len(hidden.intersection(top))
        recall += right / len(hidden)
        hits += right > 0
        precision += right / TOP
        scored += 1
    return {
        "recall@10": recall / scored,
        "HR@10": hits / scored,
        "precision@10": precision / scored,
        "scored": scored,
    }


def peers(train, test, generic: set[str]) -> dict[str, list[list[str]]]:
    """Each peer's ranked tags for every test post."""
    names = sorted({t for tags in train for t in tags})
    index = {t: i for i, t in enumerate(names)}
    rows = np.repeat(np.arange(len(train)), [len(t) for t in train])
    cols = np.array([index[t] for tags in train for t in tags], dtype=np.int64)
    x = sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(train), len(names)))
    df = np.asarray(x.sum(axis=0)).ravel()
    banned = np.array([t in generic for t in names])
    popular = [i for i in np.lexsort((np.arange(len(names)), -df)) if not banned[i]][:200]
    inputs = [[index[t] for t in given if t in index] for given, _ in test]
    # P(t | i) for every input tag i of the test posts: one row each
    wanted = np.unique(np.array([i for given in inputs for i in given], dtype=np.int64))
    p = sparse.diags(1.0 / df[wanted]) @ (x[:, wanted].T @ x).tocsr()
    slot = {int(i): k for k, i in enumerate(wanted)}
    out_popular, out_cooc = [], []
    for start in range(0, len(test), 5000):
        chunk = inputs[start : start + 5000]
        m_rows = np.repeat(np.arange(len(chunk)), [len(i) for i in chunk])
        m_cols = np.array([slot[i] for given in chunk for i in given], dtype=np.int64)
        m = sparse.csr_matrix(
            (np.ones(len(m_cols)), (m_rows, m_cols)), shape=(len(chunk), len(wanted))
        )
        s = (m @ p).tocsr()  # sum over inputs i of P(t | i)
        for r, given in enumerate(chunk):
            have = set(given)
            out_popular.append([names[i] for i in popular if i not in have][:TOP])
            cand = s.indices[s.indptr[r] : s.indptr[r + 1]]
            value = s.data[s.indptr[r] : s.indptr[r + 1]]
            ok = ~banned[cand] & ~np.isin(cand, given)
            cand, value = cand[ok], value[ok]
            best = np.lexsort((cand, -value))[:TOP]  # names sort as indices do
            out_cooc.append([names[c] for c in cand[best]])
    return {"popular": out_popular, "co-occurrence": out_cooc}


def write_posts(path: Path, prefix: str, posts: list[list[str]]) -> Path:
    """``posts`` as JSON Lines at ``path``, with ids ``prefix0``, ``prefix1``, ..."""
    with path.open("w", encoding="utf-8") as out:
        for i, tags in enumerate(posts):
            out.write(json.dumps({"id": f"{prefix}{i}", "tags": tags}, ensure_ascii=False) + "\n")
    return path


def tagspark_model(train, k: int, work: Path, sets: list[str]) -> tuple[Path, set, dict]:
    """The model fitted on the training posts, its generic tags and its timings."""
    train_file = write_posts(work / "train.jsonl", "train", train)
    extra = [a for s in sets for a in ("--set", s)]
    model = work / "model"
    start = time.perf_counter()
    subprocess.run([*CLI, "cluster", "--input", str(train_file), "--output", str(model),
                    "--k", str(k), "--seed", "1", "-q", *extra], check=True)  # fmt: skip
    fitted = time.perf_counter() - start
    metadata = json.loads((model / "model" / "metadata.json").read_text())
    generic = {g["tag"] for g in metadata["generic_tags"]}
    timings = {"cluster_s": round(fitted, 1), "fit_stages": metadata["timings_seconds"]}
    return model, generic, timings


def tagspark_lists(model: Path, test, work: Path, name: str = "") -> tuple[list, float]:
    """tagspark's suggestions for the test posts (``suggest --input``) and its time."""
    test_file = write_posts(work / f"test{name}.jsonl", "test", [given for given, _ in test])
    answers = work / f"suggested{name}"
    start = time.perf_counter()
    subprocess.run([*CLI, "suggest", "--model", str(model), "--input", str(test_file),
                    "--output", str(answers), "--n", str(TOP), "-q"], check=True)  # fmt: skip
    answered = time.perf_counter() - start
    table = pq.read_table(answers / "suggestions", columns=["id", "suggestions"])
    found = {row["id"]: [s["tag"] for s in row["suggestions"] or []] for row in table.to_pylist()}
    return [found.get(f"test{i}", []) for i in range(len(test))], answered


def mean_and_error(values: list[float]) -> tuple[float, float]:
    """The mean and its standard error (0 for one value)."""
    a = np.asarray(values, float)
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else 0.0


def print_seeds(per_seed: list[dict[str, dict]], ours: str = "tagspark") -> None:
    """One line a seed, then each method's mean recall@10 and ``ours``'s ratio to
    co-occurrence, with their standard errors over the seeds (the same model, other halves
    hidden)."""
    names = list(per_seed[0]["results"])
    print(f"{'seed':<6}" + "".join(f"{n:>15}" for n in names) + f"{'x co-occ':>10}")
    ratios = []
    for run in per_seed:
        r = {n: run["results"][n]["recall@10"] for n in names}
        ratios.append(r[ours] / r["co-occurrence"])
        print(
            f"{run['seed']:<6}" + "".join(f"{r[n]:>15.4f}" for n in names) + f"{ratios[-1]:>10.3f}"
        )
    cells = [mean_and_error([run["results"][n]["recall@10"] for run in per_seed]) for n in names]
    ratio = mean_and_error(ratios)
    print(f"{'mean':<6}" + "".join(f"{m:>15.4f}" for m, _ in cells) + f"{ratio[0]:>10.3f}")
    print(f"{'+-se':<6}" + "".join(f"{e:>15.4f}" for _, e in cells) + f"{ratio[1]:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, type=Path, help="JSON Lines posts")
    parser.add_argument("--k", type=int, required=True, help="k of the model")
    parser.add_argument("--seed", type=int, default=1, help="the shuffle's seed")
    parser.add_argument("--seeds", type=int, default=1,
                        help="score N shuffles (seed, seed + 1, ...) on the one model, and "
                        "print their mean and standard error")  # fmt: skip
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="a config override for the tagspark fit (repeatable)")  # fmt: skip
    parser.add_argument("--keep", type=Path, help="keep the split, model and suggestions here")
    parser.add_argument("--json", type=Path, help="also write the scores to this file")
    parser.add_argument(
        "--ceiling", action="store_true", help="also score the label ceiling (needs labels)"
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be 1 or more")

    seeds = list(range(args.seed, args.seed + args.seeds))
    corpus = read_corpus(args.input)
    train = corpus.train
    if args.ceiling and None in corpus.train_labels + corpus.test_labels:
        parser.error(f"--ceiling needs a label on every post of {args.input}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="suggest-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    per_seed = []
    try:
        model, generic, timings = tagspark_model(train, args.k, work, args.sets)
        for seed in seeds:
            one = halves(corpus, seed)
            name = f"-seed{seed}" if len(seeds) > 1 else ""
            ours, answered = tagspark_lists(model, one.test, work, name)
            start = time.perf_counter()
            lists = {**peers(train, one.test, generic), "tagspark": ours}
            if args.ceiling:
                lists["label ceiling"] = label_ceiling(one, generic)
            peer_s = time.perf_counter() - start
            results = {n: scores(found, one.test, generic) for n, found in lists.items()}
            per_seed.append({"seed": seed, "results": results,
                             "suggest_input_s": round(answered, 1), "peers_s": peer_s})  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    results = per_seed[0]["results"]
    timings["suggest_input_s"] = per_seed[0]["suggest_input_s"]
    base = results["co-occurrence"]["recall@10"]
    print(
        f"corpus {args.input}: {len(train):,} training posts, {len(corpus.test):,} test posts, "
        f"k={args.k}, {len(generic)} generic tags left out; seed {args.seed}:"
    )
    print(f"{'method':<15}{'recall@10':>10}{'x co-occ':>10}{'HR@10':>8}{'P@10':>8}{'scored':>8}")
    for name, r in results.items():
        print(
            f"{name:<15}{r['recall@10']:>10.3f}{r['recall@10'] / base:>10.2f}"
            f"{r['HR@10']:>8.3f}{r['precision@10']:>8.3f}{r['scored']:>8,}"
        )
    print(
        f"tagspark: cluster {timings['cluster_s']} s, suggest --input {timings['suggest_input_s']}"
        f" s; peers {per_seed[0]['peers_s']:.1f} s"
    )
    if len(per_seed) > 1:
        print(f"recall@10 over {len(per_seed)} shuffles of the test posts' tags (one model):")
        print_seeds(per_seed)
    if args.json:
        out = {"results": results, "timings": timings, "seeds": per_seed}
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
