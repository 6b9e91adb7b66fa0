"""Scoring categories against known labels: NMI, ARI, purity, largest-category share, and
each category's top labels.

The expensive part, counting posts per (category, label), is a Spark aggregation; its result
has at most k x labels rows, so the scores are computed from it on the driver.
"""

from __future__ import annotations

import math
from collections import defaultdict

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from tagspark.naming import Category


def contingency(
    predictions: DataFrame, label_col: str = "label", category_col: str = "category_id"
) -> list[tuple[int, str, int]]:
    """``(category, label, posts)`` for every pair that occurs; posts without a label are
    left out."""
    rows = (
        predictions.filter(F.col(label_col).isNotNull())
        .groupBy(category_col, label_col)
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()  # k x labels rows
    )
    return sorted((int(r[category_col]), r[label_col], int(r["n"])) for r in rows)


def _entropy(counts: list[int], n: int) -> float:
    return -sum(c / n * math.log(c / n) for c in counts if c)


def _pairs(x: int) -> float:
    return x * (x - 1) / 2


def scores(table: list[tuple[int, str, int]]) -> dict[str, float]:
    """NMI (arithmetic-mean normalisation, as scikit-learn's default), ARI, purity and the
    largest category's share, from a contingency table.

    Examples
    --------
    >>> s = scores([(0, "a", 2), (1, "b", 1), (2, "b", 1)])
    >>> round(s["nmi"], 6), round(s["ari"], 6), s["purity"]
    (0.8, 0.571429, 1.0)
    """
    n = sum(c for _, _, c in table)
    if n == 0:
        return {"posts": 0, "nmi": 0.0, "ari": 0.0, "purity": 0.0, "largest_share": 0.0}
    by_cat: dict[int, int] = defaultdict(int)
    by_label: dict[str, int] = defaultdict(int)
    best: dict[int, int] = defaultdict(int)
    for cat, label, c in table:
        by_cat[cat] += c
        by_label[label] += c
        best[cat] = max(best[cat], c)
    h_cat = _entropy(list(by_cat.values()), n)
    h_label = _entropy(list(by_label.values()), n)
    mi = sum(
        c / n * math.log(c * n / (by_cat[cat] * by_label[label])) for cat, label, c in table if c
    )
    mean_h = (h_cat + h_label) / 2
    nmi = 1.0 if mean_h == 0 else max(0.0, mi / mean_h)
    index = sum(_pairs(c) for _, _, c in table)
    sum_a = sum(_pairs(c) for c in by_cat.values())
    sum_b = sum(_pairs(c) for c in by_label.values())
    expected = sum_a * sum_b / _pairs(n) if n > 1 else 0.0
    top = (sum_a + sum_b) / 2
    ari = 1.0 if top == expected else (index - expected) / (top - expected)
    return {
        "posts": n,
        "nmi": nmi,
        "ari": ari,
        "purity": sum(best.values()) / n,
        "largest_share": max(by_cat.values()) / n,
    }


def describe(scored: dict) -> str:
    """The scores in one line: ``NMI 0.195, ARI 0.030, purity 0.426, largest category 86.4%``."""
    return (
        f"NMI {scored['nmi']:.3f}, ARI {scored['ari']:.3f}, purity {scored['purity']:.3f}, "
        f"largest category {scored['largest_share']:.1%}"
    )


def evaluation(table: list[tuple[int, str, int]], categories: list[Category], top: int = 3) -> dict:
    """Scores plus, per category, its ``top`` labels by posts."""
    labels: dict[int, list[tuple[str, int]]] = defaultdict(list)
    for cat, label, c in table:
        labels[cat].append((label, c))
    return {
        **scores(table),
        "categories": [
            {
                "id": c.id,
                "name": c.name,
                "size": c.size,
                "top_labels": [
                    {"label": label, "posts": n}
                    for label, n in sorted(labels[c.id], key=lambda x: (-x[1], x[0]))[:top]
                ],
            }
            for c in categories
        ],
    }
