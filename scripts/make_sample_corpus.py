"""Generate the sample corpus bundled with tagspark (``tagspark/data/sample_posts.jsonl.gz``).

Five clear themes (food, architecture, travel, pets, fitness), tag popularity Zipf-like
inside each theme, generic tags that every theme shares (#love, #instagood, ...) on about a
third of the posts, post lengths from 1 to 30 tags (most posts short, some long), and one
post in ten written as a caption with hashtags instead of a tag list. Deterministic: the
same seed gives the same bytes.

    python scripts/make_sample_corpus.py [--posts 3000] [--seed 7] [--output PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

THEMES = {
    "food": "food foodie pasta pizza sushi italianfood homecooking dessert brunch vegan "
    "foodphotography delicious yummy ramen bakery recipe streetfood chocolate cheese",
    "architecture": "architecture building design cathedral skyscraper archilovers "
    "modernarchitecture facade interiordesign bridge brutalism gothic urban concrete "
    "archdaily staircase skyline tower",
    "travel": "travel wanderlust beach mountains roadtrip backpacking travelgram sunset "
    "island adventure hiking explore vacation nature lake passport travelphotography",
    "pets": "dog cat puppy kitten dogsofinstagram catsofinstagram pets petstagram "
    "doglover catlover goldenretriever adoptdontshop puppylove meow woof rescuedog",
    "fitness": "fitness gym workout fitfam bodybuilding running yoga crossfit training "
    "fitnessmotivation health cardio legday squats protein marathon personaltrainer",
}
GENERIC = ["love", "instagood", "photooftheday", "picoftheday", "instadaily", "happy", "beautiful"]
CAPTIONS = ["Look at this {}!", "Today: {}", "{} … what a day 😍", "So good {}."]


def generate(posts: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = list(THEMES)
    vocab = {t: THEMES[t].split() for t in names}
    themes = rng.choice(len(names), size=posts, p=[0.24, 0.18, 0.22, 0.2, 0.16])
    # bimodal lengths: mostly 1-4 tags, a quarter of the posts 15-30
    long = rng.random(posts) < 0.25
    lengths = np.where(long, rng.integers(15, 31, posts), rng.integers(1, 5, posts))
    generic = rng.random(posts) < 0.33
    rows = []
    for i in range(posts):
        words = vocab[names[themes[i]]]
        zipf = 1.0 / np.arange(1, len(words) + 1)
        n = min(int(lengths[i]), len(words))
        tags = list(rng.choice(words, size=n, replace=False, p=zipf / zipf.sum()))
        if generic[i]:
            tags += list(rng.choice(GENERIC, size=int(rng.integers(1, 4)), replace=False))
        tags = tags[:30]
        row = {"id": f"p{i}", "label": names[themes[i]]}
        if i % 10 == 9:
            text = " ".join("#" + t for t in tags)
            row["caption"] = CAPTIONS[i % len(CAPTIONS)].format(text)
        else:
            row["tags"] = tags
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(__file__).parent.parent / "tagspark/data/sample_posts.jsonl.gz",
    )
    args = parser.parse_args()
    lines = "".join(
        json.dumps(r, ensure_ascii=False) + "\n" for r in generate(args.posts, args.seed)
    )
    with gzip.GzipFile(args.output, "wb", mtime=0) as fh:
        fh.write(lines.encode("utf-8"))
    print(f"wrote {args.posts} posts to {args.output}")


if __name__ == "__main__":
    main()
