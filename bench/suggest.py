"""How fast ``tagspark suggest`` answers one post from a cold process.

Runs ``tagspark suggest --model DIR --tags ...`` as a new process for posts taken from a
corpus (every run pays Python's start, the imports and the model's load, as a user does),
then times the model's load and one suggestion in-process. Example, after
``bench/compare.py --keep bench/out/model-1m`` (a k=200 model of 1M posts):

    python bench/suggest.py --model bench/out/model-1m --corpus bench/out/posts-1m.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
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
    cold = []
    for tags in posts:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "tagspark.cli", "suggest", "--model", args.model, "--json",
             "--tags", " ".join(f"#{t}" for t in tags)],
            check=True,
            capture_output=True,
        )  # fmt: skip
        cold.append(time.perf_counter() - start)

    from tagspark import suggest
    from tagspark.model import TagModel, model_folder

    start = time.perf_counter()
    model = TagModel.load(model_folder(args.model))
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    for tags in posts:
        suggest.suggest(model, suggest.post_tags(model, " ".join(tags)), 15)
    each = (time.perf_counter() - start) / len(posts)
    print(
        f"model: {args.model}, {len(model.categories)} categories, {len(model.tags):,} tags, "
        f"{len(model.centres):,} category tags"
    )
    print(
        f"cold process, one post: median {statistics.median(cold):.2f} s, "
        f"max {max(cold):.2f} s over {len(cold)} posts"
    )
    print(f"in-process: model load {loaded:.2f} s, one suggestion {1000 * each:.1f} ms")


if __name__ == "__main__":
    main()
