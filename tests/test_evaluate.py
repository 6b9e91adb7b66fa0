"""Scores against labels: hand-computed contingency tables, and the Spark aggregation."""

from __future__ import annotations

import pytest

from tagspark.evaluate import contingency, evaluation, scores
from tagspark.naming import Category


def test_perfect_clustering_scores_one():
    s = scores([(0, "a", 3), (1, "b", 5)])
    assert s == {"posts": 8, "nmi": 1.0, "ari": 1.0, "purity": 1.0, "largest_share": 5 / 8}


def test_a_refinement_of_the_labels():
    # labels a a b b, categories 0 0 1 2: scikit-learn gives NMI 0.8, ARI 4/7
    s = scores([(0, "a", 2), (1, "b", 1), (2, "b", 1)])
    assert s["nmi"] == pytest.approx(0.8)
    assert s["ari"] == pytest.approx(4 / 7)
    assert s["purity"] == 1.0 and s["largest_share"] == 0.5


def test_one_category_for_everything_scores_zero():
    s = scores([(0, "a", 2), (0, "b", 2)])
    assert (s["nmi"], s["ari"], s["purity"], s["largest_share"]) == (0.0, 0.0, 0.5, 1.0)


def test_independent_categories_and_labels():
    # each category holds both labels equally: no information
    s = scores([(0, "a", 5), (0, "b", 5), (1, "a", 5), (1, "b", 5)])
    assert s["nmi"] == pytest.approx(0.0, abs=1e-12)
    # index 4*C(5,2)=40, expected 90*90/C(20,2)=42.63, max 90: ARI = -1/18
    assert s["ari"] == pytest.approx(-1 / 18)


def test_contingency_counts_in_spark_and_top_labels(spark):
    predictions = spark.createDataFrame(
        [(0, "a"), (0, "a"), (0, "b"), (1, "b"), (1, None)], "category_id int, label string"
    )
    table = contingency(predictions)
    assert table == [(0, "a", 2), (0, "b", 1), (1, "b", 1)]
    cats = [Category(0, "x", ("x",), 3), Category(1, "y", ("y",), 2)]
    ev = evaluation(table, cats)
    assert ev["posts"] == 4
    assert ev["categories"] == [
        {
            "id": 0,
            "name": "x",
            "size": 3,
            "top_labels": [{"label": "a", "posts": 2}, {"label": "b", "posts": 1}],
        },
        {"id": 1, "name": "y", "size": 2, "top_labels": [{"label": "b", "posts": 1}]},
    ]
