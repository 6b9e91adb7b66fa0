"""Synthetic hashtag corpus with planted themes, for benchmarks and quality checks.

    python bench/generate.py --posts 1000000 --output bench/out/posts-1m.jsonl
    python bench/generate.py --long-tail --posts 2000000 --output bench/out/longtail-2m.jsonl

Writes JSON Lines ``{"id": "p0", "tags": [...], "label": "theme17"}``:

- ``--themes`` planted themes (default 300) of ``--tags-per-theme`` tags (default 80): 24,000
  theme tags; tag popularity inside a theme is Zipf-distributed (exponent ``--zipf``);
- generic tags shared by every theme (#love, #instagood, ...) on about a third of the posts;
- post lengths bimodal at 1 and 30, as in the article: 40% one tag, 30% 2-10 tags, 30%
  20-30 tags;
- ``--long-tail``: the vocabulary of real hashtag data, which keeps growing with the corpus:
  2,000 themes of 1,500 Zipf-distributed tags each (3M theme tags, most of them seen only
  once a corpus is large enough to reach them), and 1-3 near-unique noise tags on every long
  post (drawn from twice as many names as there are posts, so a few repeat);
- ``--generic-tags N``: N generic tags #g0..#g<N-1> in place of the 20 named ones, Zipf-
  distributed (#g0 on about 13% of the posts at N=100, #g99 on 0.13%): generic tags at every
  frequency, most of them under a 0.5% share, for the generic-tag rule;
- deterministic: the same arguments give the same bytes. Vectorised with numpy; 10M posts
  take a few minutes, most of it formatting JSON.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

GENERIC = [
    "love",
    "instagood",
    "photooftheday",
    "picoftheday",
    "instadaily",
    "happy",
    "beautiful",
    "likeforlike",
    "followme",
    "tbt",
    "fashion",
    "cute",
    "photography",
    "art",
    "nature",
    "smile",
    "style",
    "instalike",
    "follow",
    "selfie",
]
SYLLABLES = [
    "ka",
    "ri",
    "to",
    "mo",
    "se",
    "lu",
    "na",
    "vi",
    "ze",
    "po",
    "da",
    "ke",
    "ha",
    "ti",
    "ro",
    "me",
    "su",
    "la",
    "ne",
    "go",
    "bu",
    "fa",
    "yo",
    "chi",
    "sha",
    "pe",
    "wa",
    "ki",
    "no",
    "ma",
]


def tag_names(themes: int, per_theme: int, rng: np.random.Generator) -> np.ndarray:
    """``themes x per_theme`` distinct pseudo-words; each theme's tags share its stem."""
    names: set[str] = set(GENERIC)
    table = []
    for _ in range(themes):
        while True:
            stem = "".join(rng.choice(SYLLABLES, 2))
            if not any(n.startswith(stem) for n in names if len(n) > 3):
                break
        row = []
        while len(row) < per_theme:
            word = stem + "".join(rng.choice(SYLLABLES, int(rng.integers(1, 3))))
            if word not in names:
                names.add(word)
                row.append(word)
        table.append(row)
    return np.array(table)


def long_tail_names(themes: int, per_theme: int) -> np.ndarray:
    """``themes x per_theme`` distinct names, fast for millions: theme ``t``'s tags share the
    stem ``t<t>x`` and end in the tag's rank in base 36, so no two themes share a tag."""
    digits = np.array(list("0123456789abcdefghijklmnopqrstuvwxyz"))
    rank = np.arange(per_theme)
    suffix = digits[rank // 1296 % 36].astype(object) + digits[rank // 36 % 36] + digits[rank % 36]
    stems = np.array([f"t{t}x" for t in range(themes)], dtype=object)
    return stems[:, None] + suffix[None, :]


def generate(
    posts: int,
    themes: int,
    per_theme: int,
    zipf: float,
    seed: int,
    chunk: int = 500_000,
    long_tail: bool = False,
    generic_tags: int = 0,
):
    """Yield blocks of JSON lines (one string per block)."""
    rng = np.random.default_rng(seed)
    names = long_tail_names(themes, per_theme) if long_tail else tag_names(themes, per_theme, rng)
    quoted = np.array([[f'"{t}"' for t in row] for row in names], dtype=object)
    names_of_generic = [f"g{i}" for i in range(generic_tags)] if generic_tags else GENERIC
    generic = np.array([f'"{t}"' for t in names_of_generic], dtype=object)
    generic_p = 1.0 / np.arange(1, len(generic) + 1)
    generic_p /= generic_p.sum()
    weights = 1.0 / np.arange(1, per_theme + 1) ** zipf
    cdf = np.cumsum(weights) / weights.sum()
    theme_p = 1.0 / np.arange(1, themes + 1) ** 0.5  # some themes are bigger than others
    theme_p /= theme_p.sum()
    for start in range(0, posts, chunk):
        n = min(chunk, posts - start)
        theme = rng.choice(themes, size=n, p=theme_p)
        kind = rng.random(n)
        length = np.where(
            kind < 0.4, 1, np.where(kind < 0.7, rng.integers(2, 11, n), rng.integers(20, 31, n))
        )
        ranks = np.searchsorted(cdf, rng.random((n, 30)))
        with_generic = rng.random(n) < 0.33
        n_generic = np.where(with_generic, rng.integers(1, 4, n), 0)
        if generic_tags:
            generic_idx = rng.choice(len(generic), size=(n, 3), p=generic_p)
        else:  # the named ones, uniform (the bytes of earlier versions)
            generic_idx = rng.integers(0, len(GENERIC), (n, 3))
        # near-unique noise: 1-3 tags on each long post, from 2 x posts names
        n_noise = np.where(long_tail & (length >= 20), rng.integers(1, 4, n), 0)
        noise = rng.integers(0, 2 * posts, (n, 3))
        lines = []
        for i in range(n):
            t = theme[i]
            k = int(length[i])
            g = int(n_generic[i])
            own = quoted[t, ranks[i, : max(k - g, 1)]]
            extra = [f'"n{v}"' for v in noise[i, : n_noise[i]]]
            tags = ",".join(dict.fromkeys([*own, *generic[generic_idx[i, :g]], *extra]))
            lines.append(f'{{"id":"p{start + i}","tags":[{tags}],"label":"theme{t}"}}\n')
        yield "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--themes", type=int, default=300)
    parser.add_argument("--tags-per-theme", type=int, default=80)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--long-tail",
        action="store_true",
        help="a growing Zipf vocabulary: 2,000 themes x 1,500 tags (unless --themes and "
        "--tags-per-theme say otherwise), exponent 1.0, noise tags on long posts",
    )
    parser.add_argument(
        "--generic-tags",
        type=int,
        default=0,
        help="N Zipf-distributed generic tags #g0.. in place of the 20 named ones",
    )
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.long_tail:
        defaults = {"themes": 300, "tags_per_theme": 80, "zipf": 1.1}
        tail = {"themes": 2000, "tags_per_theme": 1500, "zipf": 1.0}
        for key, value in tail.items():
            if getattr(args, key) == defaults[key]:
                setattr(args, key, value)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with args.output.open("w", encoding="utf-8") as fh:
        blocks = generate(
            args.posts,
            args.themes,
            args.tags_per_theme,
            args.zipf,
            args.seed,
            long_tail=args.long_tail,
            generic_tags=args.generic_tags,
        )
        for block in blocks:
            fh.write(block)
    print(f"wrote {args.posts:,} posts to {args.output} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
