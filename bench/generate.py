"""Synthetic hashtag corpus with planted themes, for benchmarks and quality checks.

    python bench/generate.py --posts 1000000 --output bench/out/posts-1m.jsonl

Writes JSON Lines ``{"id": "p0", "tags": [...], "label": "theme17"}``:

- ``--themes`` planted themes (default 300) of ``--tags-per-theme`` tags (default 80): 24,000
  theme tags; tag popularity inside a theme is Zipf-distributed (exponent ``--zipf``);
- generic tags shared by every theme (#love, #instagood, ...) on about a third of the posts;
- post lengths bimodal at 1 and 30, as in the article: 40% one tag, 30% 2-10 tags, 30%
  20-30 tags;
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


def generate(posts: int, themes: int, per_theme: int, zipf: float, seed: int, chunk: int = 500_000):
    """Yield blocks of JSON lines (one string per block)."""
    rng = np.random.default_rng(seed)
    names = tag_names(themes, per_theme, rng)
    quoted = np.array([[f'"{t}"' for t in row] for row in names], dtype=object)
    generic = np.array([f'"{t}"' for t in GENERIC], dtype=object)
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
        generic_idx = rng.integers(0, len(GENERIC), (n, 3))
        lines = []
        for i in range(n):
            t = theme[i]
            k = int(length[i])
            g = int(n_generic[i])
            own = quoted[t, ranks[i, : max(k - g, 1)]]
            tags = ",".join(dict.fromkeys(list(own) + list(generic[generic_idx[i, :g]])))
            lines.append(f'{{"id":"p{start + i}","tags":[{tags}],"label":"theme{t}"}}\n')
        yield "".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--themes", type=int, default=300)
    parser.add_argument("--tags-per-theme", type=int, default=80)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with args.output.open("w", encoding="utf-8") as fh:
        for block in generate(args.posts, args.themes, args.tags_per_theme, args.zipf, args.seed):
            fh.write(block)
    print(f"wrote {args.posts:,} posts to {args.output} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
