"""How fast ``tagspark suggest`` answers one post from a cold process.

Runs ``tagspark suggest --model DIR --tags ...`` as a new process for posts taken from a
corpus (every run pays Python's start, the imports and the model's load, as a user does),
with its peak memory, then times in-process the partial read of one post
(``TagModel.load_for``: only the rows of its tags and candidates), the whole model's load and
one suggestion. Example, after
``bench/compare.py --keep bench/out/model-1m`` (a k=200 model of 1M posts):

    python bench/suggest.py --model bench/out/model-1m --corpus bench/out/posts-1m.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a cluster output or its model/")
    parser.add_argument("--corpus", required=True, help="JSON Lines posts with tags")
    parser.add_argument("--posts", type=int, default=10, help="cold runs, one post each")
    args = parser.parse_args()

    with open(args.corpus, encoding="utf-8") as f:
        posts = [json.loads(line)["tags"] for line in itertools.islice(f, 1000, 1000 + args.posts)]
    cold, peak = [], []
    for tags in posts:
        start = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-m", "tagspark.cli", "suggest", "--model", args.model, "--json",
             "--tags", " ".join(f"#{t}" for t in tags)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        cold.append(time.perf_counter() - start)
        peak.append(usage.ru_maxrss / 1024)  # kB on Linux
        if status:
            raise SystemExit(f"tagspark suggest failed for {tags}")

    from tagspark import suggest
    from tagspark.model import PartReader, TagModel, model_folder

    folder = model_folder(args.model)
    start = time.perf_counter()
    readers = []
    for tags in posts:
        readers.append(PartReader(folder))
        part = TagModel.load_for(folder, tags, readers[-1])
        suggest.suggest(part, suggest.post_tags(part, " ".join(tags)), 15)
    partial = (time.perf_counter() - start) / len(posts)
    start = time.perf_counter()
    model = TagModel.load(folder)
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    for tags in posts:
        suggest.suggest(model, suggest.post_tags(model, " ".join(tags)), 15)
    each = (time.perf_counter() - start) / len(posts)
    rows = statistics.median(sum(r.rows.values()) for r in readers)
    print(
        f"model: {args.model}, {len(model.categories)} categories, {len(model.tags):,} tags, "
        f"{len(model.centres):,} category tags, {len(model.neighbours):,} companions"
    )
    print(
        f"cold process, one post: median {statistics.median(cold):.2f} s, "
        f"max {max(cold):.2f} s, peak memory median {statistics.median(peak):.0f} MB, max "
        f"{max(peak):.0f} MB over {len(cold)} posts"
    )
    print(
        f"in-process: the post's part of the model read and answered in {1000 * partial:.0f} "
        f"ms ({rows:,.0f} rows read, median); the whole model loaded in {loaded:.2f} s, then "
        f"one suggestion {1000 * each:.1f} ms"
    )


if __name__ == "__main__":
    main()
