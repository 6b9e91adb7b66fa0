"""Choosing k: sweep k over a range on a sample of the posts, in Spark.

For each candidate k the sample's embedding (``features.method``, computed once, with
``features.dims`` or the automatic dimensions of the largest k) is
clustered with MLlib KMeans; the curve records the k-means cost (for an elbow plot) and the
silhouette (``ClusteringEvaluator``, squared Euclidean, weighted by posts per tag set). The
chosen k has the highest silhouette; a tie goes to the smaller k.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging

import numpy as np
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.sql import DataFrame

from tagspark.clustering import CATEGORY_COL, kmeans_estimator
from tagspark.config import Config, parse_k_range
from tagspark.embedding import auto_dims, embed, min_component_share
from tagspark.errors import ParameterError
from tagspark.stages import release_ml_objects
from tagspark.storage import Storage, join
from tagspark.vocabulary import tag_sets

log = logging.getLogger(__name__)


def k_candidates(lo: int, hi: int, distinct_sets: int, points: int) -> list[int]:
    """Up to ``points`` values of k from ``lo`` to ``hi`` (capped at ``distinct_sets``),
    evenly spaced on a log scale, every one distinct.

    Examples
    --------
    >>> k_candidates(2, 10, 1000, 9)
    [2, 3, 4, 5, 6, 7, 8, 9, 10]
    >>> k_candidates(10, 400, 1000, 6)
    [10, 21, 44, 91, 191, 400]
    """
    hi = min(hi, distinct_sets)
    if hi < lo:
        raise ParameterError(
            f"the k range starts at {lo}, but the sample has only {distinct_sets} distinct tag sets"
        )
    if hi - lo + 1 <= points:
        return list(range(lo, hi + 1))
    grid = np.unique(np.round(np.geomspace(lo, hi, points)).astype(int))
    return [int(k) for k in grid]


def sample_posts(posts: DataFrame, n_posts: int, limit: int, seed: int) -> DataFrame:
    """About ``limit`` posts drawn at random (all of them when there are fewer)."""
    if n_posts <= limit:
        return posts
    return posts.sample(fraction=limit / n_posts, seed=seed)


def sweep(posts: DataFrame, n_posts: int, cfg: Config, cache) -> dict:
    """The curve and the chosen k for ``cfg.kmeans.k_range`` on a sample of ``posts``.

    Returns
    -------
    dict
        ``{"k_range", "sample_posts", "dims", "curve": [{"k", "cost", "silhouette"}, ...],
        "chosen_k"}``
    """
    lo, hi = parse_k_range(cfg.kmeans.k_range)
    sample = cache(sample_posts(posts, n_posts, cfg.kmeans.sample_posts, cfg.kmeans.seed))
    n_sample = sample.count()
    dims = cfg.features.dims or auto_dims(hi)
    sets = tag_sets(sample, n_sample, cfg.features.min_doc_freq, cache)
    keep = sets.vocabulary.mask(max_tags=cfg.features.max_tags)
    embedding = embed(sets, cfg.features, dims, cfg.kmeans.seed, keep, min_component_share(hi))
    points = cache(embedding.of(sets.sets).filter("placed"))
    evaluator = ClusteringEvaluator(
        predictionCol=CATEGORY_COL, distanceMeasure="squaredEuclidean", weightCol="weight"
    )
    curve = []
    for k in k_candidates(lo, hi, sets.count, cfg.kmeans.k_points):
        estimator = kmeans_estimator(dataclasses.replace(cfg.kmeans, k=k)).setWeightCol("weight")
        model = estimator.fit(points)
        silhouette = evaluator.evaluate(model.transform(points))
        curve.append(
            {
                "k": k,
                "cost": round(model.summary.trainingCost, 6),
                "silhouette": round(silhouette, 6),
            }
        )
        del model
        release_ml_objects()
        log.info("choose k: k=%d cost %.4f silhouette %.4f", k, curve[-1]["cost"], silhouette)
    best = max(curve, key=lambda p: (p["silhouette"], -p["k"]))
    return {
        "k_range": cfg.kmeans.k_range,
        "sample_posts": n_sample,
        "dims": embedding.info["dims"],
        "curve": curve,
        "chosen_k": best["k"],
    }


def write_curve(result: dict, storage: Storage, folder: str) -> list[str]:
    """``choose_k.csv`` and, when matplotlib is installed, ``choose_k.png`` in the folder
    ``folder`` (a URI). Returns what was written."""
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=["k", "cost", "silhouette"])
    writer.writeheader()
    writer.writerows(result["curve"])
    written = [join(folder, "choose_k.csv")]
    storage.write_text(written[0], table.getvalue())
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install 'tagspark[plot]'): no choose_k.png")
        return written
    fig = curve_figure(result, plt)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    plt.close(fig)
    written.append(join(folder, "choose_k.png"))
    storage.write_bytes(written[1], image.getvalue())
    return written


def curve_figure(result: dict, plt):
    """The figure of ``choose_k.png``: cost and silhouette by k, on a log k axis labelled
    with the k values tried."""
    ks = [p["k"] for p in result["curve"]]
    fig, cost_ax = plt.subplots(figsize=(7, 4), dpi=100)
    cost_ax.plot(ks, [p["cost"] for p in result["curve"]], "o-", color="tab:blue")
    cost_ax.set_xscale("log")
    # label the k values tried (a log axis alone labels 2x10^0, 3x10^0, ... over each other)
    cost_ax.set_xticks(ks, [str(k) for k in ks])
    cost_ax.xaxis.set_minor_locator(plt.NullLocator())
    cost_ax.set_xlabel("k")
    cost_ax.set_ylabel("k-means cost", color="tab:blue")
    sil_ax = cost_ax.twinx()
    sil_ax.plot(ks, [p["silhouette"] for p in result["curve"]], "s-", color="tab:orange")
    sil_ax.set_ylabel("silhouette", color="tab:orange")
    sil_ax.axvline(result["chosen_k"], color="grey", linestyle="--")
    cost_ax.set_title(
        f"chosen k = {result['chosen_k']} (highest silhouette; {result['sample_posts']:,} posts)"
    )
    return fig
