"""Large vocabularies (issue #12): the tag matrix off the driver, the feature cap with the
rarer tags' placement rule, and set identity that cannot clash."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from tagspark import codec, matrix
from tagspark import vocabulary as voc
from tagspark.categories import with_sets_placed_by_tags
from tagspark.centres import Cells, TagCentres
from tagspark.clustering import GROUP_KEYS, MIXED_ID, fit
from tagspark.codec import pack_sets
from tagspark.config import FeaturesConfig, KMeansConfig
from tagspark.stages import CacheScope
from tagspark.vocabulary import tag_sets
from tests.test_quality import THEMES, as_posts, post_categories, themed_posts


@pytest.fixture
def keep():
    with CacheScope() as cache:
        yield cache


@pytest.fixture
def small_blocks(monkeypatch):
    """Row blocks of 4 tags, so a 20-tag corpus spreads over several blocks."""
    monkeypatch.setattr(matrix, "BLOCK_ROWS", 4)


@pytest.mark.parametrize("method", ["spectral", "svd"])
def test_distributed_products_equal_the_driver_matrix(spark, keep, small_blocks, method):
    posts = as_posts(spark, themed_posts())
    sets = tag_sets(posts, 126, 2, keep)
    n = len(sets.vocabulary)
    column = np.arange(n)
    column[3] = -1  # one tag left out of the features: its row and column are empty
    column[4:] -= 1
    idf = sets.vocabulary.idf
    local = matrix.tag_matrix(sets.sets, idf, column, method, "driver")
    spread = matrix.tag_matrix(sets.sets, idf, column, method, "distributed")
    try:
        assert (local.where, spread.where) == ("driver", "distributed")
        assert local.nnz == spread.nnz > 0
        assert np.allclose(local.scale, spread.scale)
        # G built by hand from the rows of x: every set counts weight times
        table = sets.sets.toArrow()
        x = codec.feature_rows(table.column("idx").combine_chunks(), idf, column).toarray()
        weight = table.column("weight").to_numpy().astype(float)
        w = weight.copy()
        if method == "spectral":  # a set with none of the features' tags weighs nothing
            row_sum = x.sum(axis=1)
            w = np.where(row_sum > 0, weight / np.where(row_sum > 0, row_sum, 1), 0)
        c = x.T @ weight
        scale = 1 / np.sqrt(c) if method == "spectral" else np.ones(n - 1)
        expected = scale[:, None] * (x.T @ (w[:, None] * x)) * scale[None, :]
        assert np.allclose(local.local.toarray(), expected, rtol=1e-5, atol=1e-7)
        basis = np.random.default_rng(0).standard_normal((n - 1, 3))
        assert np.allclose(spread @ basis, expected @ basis, rtol=1e-4, atol=1e-6)
    finally:
        spread.release()


def test_distributed_power_method_gives_the_driver_paths_categories(spark, keep, small_blocks):
    posts = as_posts(spark, themed_posts())
    sets = tag_sets(posts, 126, 2, keep)
    runs = {}
    for where in ("driver", "distributed"):
        features = FeaturesConfig(dims=4, matrix=where)
        fitted = fit(posts, sets, features, KMeansConfig(k=4, seed=1), [], keep)
        assert fitted.info["tag_matrix"] == where
        runs[where] = (post_categories(fitted), fitted.cost)
    assert runs["driver"][0] == runs["distributed"][0]
    assert runs["driver"][1] == pytest.approx(runs["distributed"][1], rel=1e-4)


def test_auto_keeps_a_small_matrix_on_the_driver_and_a_large_one_distributed(
    spark, keep, monkeypatch
):
    posts = as_posts(spark, themed_posts())
    sets = tag_sets(posts, 126, 2, keep)
    column = np.arange(len(sets.vocabulary))
    idf = sets.vocabulary.idf
    small = matrix.tag_matrix(sets.sets, idf, column, "spectral", "auto")
    assert small.where == "driver"
    monkeypatch.setattr(matrix, "DRIVER_MATRIX_ENTRIES", small.nnz - 1)
    large = matrix.tag_matrix(sets.sets, idf, column, "spectral", "auto")
    assert large.where == "distributed" and large.cached.is_cached
    large.release()
    assert not large.cached.is_cached  # the executors' blocks are freed


def test_rarer_tags_than_the_cap_still_name_and_place_posts(spark, tmp_path):
    """With the features capped to the 8 most frequent tags, posts whose tags are all rarer
    are placed by the categories their tags occur in, and rarer tags still name them."""
    import json

    from tagspark.cli import main
    from tests.conftest import write_jsonl

    rng = np.random.default_rng(4)
    posts = []
    for theme, tags in THEMES.items():
        for i in range(40):
            # the theme's first two tags on most posts: they make the 8 feature tags
            chosen = [tags[0], tags[1]] if i % 4 else []
            chosen.append(str(rng.choice(tags[2:])))
            posts.append({"id": f"{theme}{i}", "tags": chosen, "label": theme})
    inp = write_jsonl(tmp_path / "posts.jsonl", posts)
    out = tmp_path / "out"
    args = ["cluster", "--input", str(inp), "--output", str(out), "--k", "4", "-q"]
    args += ["--set", "features.max_tags=8", "--set", "features.dims=4", "--seed", "3"]
    args += ["--set", "generic.detect=false", "--label-field", "label"]
    assert main(args) == 0
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["features"]["vocabulary"] == 20 and meta["features"]["feature_tags"] == 8
    # 10 posts a theme carry none of the 8 feature tags; all 40 are placed by the rule
    assert meta["counts"]["placed_by_tags"] == 40 and meta["counts"]["mixed"] == 0
    assert meta["evaluation"]["nmi"] == pytest.approx(1.0)
    names = json.loads((out / "categories.json").read_text())
    ranked = {frozenset(t["tag"] for t in c["tags"]) for c in names}
    assert ranked == {frozenset(tags) for tags in THEMES.values()}


def test_a_set_goes_to_the_category_whose_centre_weighs_its_tags_most(spark):
    # category 1 holds tag 0 (weight 0.9) and tag 2 (0.1); category 3 tag 0 (0.05), 3 (0.2)
    cells = Cells(
        category=np.array([1, 1, 3, 3]),
        idx=np.array([0, 2, 0, 3]),
        posts=np.array([5, 1, 2, 1]),
        sx=np.zeros(4),
        sizes={1: 5, 3: 2},
    )
    weights = np.array([0.9, 0.1, 0.05, 0.2])
    idf = np.ones(5)
    packed = pack_sets(np.array([0, 2, 3, 2, 4, 1]), np.array([0, 1, 1, 2, 3, 4]), 5)
    rows = [
        (10, 0, packed[0].as_py(), 1),  # placed already: left alone
        (11, MIXED_ID, packed[1].as_py(), 1),  # {2, 3}: 0.1 x for 1, 0.2 x for 3 -> 3
        (12, MIXED_ID, packed[2].as_py(), 1),  # {2}: only category 1 holds it -> 1
        (13, MIXED_ID, packed[3].as_py(), 1),  # {4}: in no category -> stays mixed
        (14, MIXED_ID, packed[4].as_py(), 1),  # {1}: in no category -> stays mixed
    ]
    schema = "group_id long, category int, idx binary, weight long"
    groups = spark.createDataFrame(rows, schema)
    placing = TagCentres.of(cells, weights, placed_only=True)
    placed = with_sets_placed_by_tags(groups, placing, idf)
    expected = spark.createDataFrame(
        [(r[0], c, r[2], r[3]) for r, c in zip(rows, [0, 3, 1, MIXED_ID, MIXED_ID], strict=True)],
        schema,
    )
    assertDataFrameEqual(placed, expected)


def test_tag_sets_whose_hashes_clash_stay_apart(spark, keep, monkeypatch):
    posts = as_posts(spark, themed_posts())
    honest = tag_sets(posts, 126, 2, keep)
    expected = post_categories(
        fit(posts, honest, FeaturesConfig(dims=4), KMeansConfig(k=4, seed=1), [], keep)
    )
    # every set gets the same 64-bit hash: the worst clash there can be
    monkeypatch.setattr(voc, "set_hash", lambda idx: F.lit(7).cast("long"))
    clashing = tag_sets(posts, 126, 2, keep)
    assert clashing.count == honest.count > 50
    assert clashing.sets.select("set_id").distinct().count() == 1
    fitted = fit(posts, clashing, FeaturesConfig(dims=4), KMeansConfig(k=4, seed=1), [], keep)
    joined = fitted.posts.join(fitted.groups, GROUP_KEYS)
    # one row a post with a tag set, none doubled
    assert joined.count() == fitted.posts.filter("group_id IS NOT NULL").count() == 126
    # each theme's posts share a category in both runs (ids may differ: k-means saw the sets
    # in another order; the six generic-only posts may go anywhere)
    found = post_categories(fitted)
    pairs = {(expected[p], found[p]) for p in range(120)}
    assert len(pairs) == len({expected[p] for p in range(120)}) == 4


def lonely_posts(themes: int = 3, per_theme: int = 30, lonely: int = 5) -> list[dict]:
    """``themes`` themes of four tags each, joined by a few posts that carry two themes'
    first tags, and ``lonely`` tags each only ever alone on three posts of their own."""
    rng = np.random.default_rng(5)
    posts = []
    for theme in range(themes):
        tags = [f"t{theme}_{i}" for i in range(4)]
        for i in range(per_theme):
            chosen = rng.choice(tags, size=int(rng.integers(2, 4)), replace=False)
            posts.append({"id": f"t{theme}_{i}", "tags": list(chosen), "label": f"t{theme}"})
        nxt = (theme + 1) % themes
        posts.append({"id": f"b{theme}", "tags": [f"t{theme}_0", f"t{nxt}_0"], "label": "bridge"})
    for j in range(lonely):
        posts += [{"id": f"l{j}_{i}", "tags": [f"lonely{j}"], "label": "lonely"} for i in range(3)]
    return posts


@pytest.mark.parametrize("where", ["driver", "distributed"])
def test_tag_graph_components_on_the_driver_and_distributed(spark, keep, small_blocks, where):
    # a chain a0-a1-...-a9 (one post per link, so labels travel nine steps), a pair b0-b1
    # and two tags seen only alone, over several 4-row blocks
    posts = [{"tags": [f"a{i}", f"a{i + 1}"]} for i in range(9)] * 2
    posts += [{"tags": ["b0", "b1"]}] * 2 + [{"tags": ["c"]}] * 2 + [{"tags": ["d"]}] * 3
    df = as_posts(spark, posts)
    sets = tag_sets(df, len(posts), 2, keep)
    names = sets.vocabulary.tags
    column = np.arange(len(names))
    built = matrix.tag_matrix(sets.sets, sets.vocabulary.idf, column, "spectral", where)
    try:
        assert built.where == where
        found = built.components()
    finally:
        built.release()
    group = {t: t[0] if t[0] in "ab" else t for t in names}
    # each tag's label is the lowest index in its group, and tags share a label iff a group
    lowest = {g: min(i for i, t in enumerate(names) if group[t] == g) for g in group.values()}
    assert found.tolist() == [lowest[group[t]] for t in names]


def test_components_not_settled_cut_nothing_off(spark, keep, small_blocks, monkeypatch):
    # one step cannot carry a label down a chain of ten tags: nothing is known, nothing cut
    from tagspark.embedding import spanned_tags

    monkeypatch.setattr(matrix, "MAX_COMPONENT_STEPS", 1)
    posts = [{"tags": [f"a{i}", f"a{i + 1}"]} for i in range(9)] * 2 + [{"tags": ["c"]}] * 2
    sets = tag_sets(as_posts(spark, posts), len(posts), 2, keep)
    column = np.arange(len(sets.vocabulary.tags))
    built = matrix.tag_matrix(sets.sets, sets.vocabulary.idf, column, "spectral", "distributed")
    try:
        assert built.components() is None
        assert spanned_tags(built, 0.5).all()
    finally:
        built.release()


def test_tags_cut_off_from_the_rest_take_no_direction_and_no_centre(spark, keep):
    """Five tags seen only alone are five components of the tag graph, each with an
    eigenvalue of 1, the highest. Left without a direction, their posts go to ``mixed``
    (given directions, they were spread over the themes' categories), and each of the
    three themes is one category."""
    posts = lonely_posts()
    df = as_posts(spark, posts)
    sets = tag_sets(df, len(posts), 2, keep)
    features = FeaturesConfig(dims=3)
    fitted = fit(df, sets, features, KMeansConfig(k=3, seed=1), [], keep)
    assert fitted.info["tags_cut_off"] == 5 and fitted.info["dims"] == 3
    placed = post_categories(fitted)
    by_label: dict[str, set[int]] = {}
    for pos, category in placed.items():
        by_label.setdefault(posts[pos]["label"], set()).add(category)
    assert by_label["lonely"] == {MIXED_ID}
    themes = [by_label[f"t{t}"] for t in range(3)]
    assert all(len(c) == 1 for c in themes) and len(set.union(*themes)) == 3
    assert MIXED_ID not in set.union(*themes)
