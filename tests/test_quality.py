"""The spectral features, generic tags, the mixed bucket and choosing k (issue #4)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import sparse

from tagspark import choose_k
from tagspark.categories import category_cells, with_mixed_cells
from tagspark.centres import Cells, TagCentres, only_generic, tag_weights
from tagspark.cli import main
from tagspark.clustering import GROUP_KEYS, fit, nearest_centres
from tagspark.codec import pack_sets, set_tags, sorted_unique, tag_values, unpack_sets
from tagspark.config import FeaturesConfig, GenericConfig, KMeansConfig, load_config
from tagspark.embedding import auto_dims
from tagspark.errors import ConfigError, ParameterError
from tagspark.generic import chance_spread, generic_tags, tag_spread
from tagspark.matrix import power_basis
from tagspark.naming import top_tags
from tagspark.stages import CacheScope
from tagspark.vocabulary import Vocabulary, tag_sets, tag_vocabulary
from tests.conftest import write_jsonl

THEMES = {
    "food": ["pasta", "pizza", "risotto", "gelato", "espresso"],
    "boat": ["sailing", "yacht", "harbour", "regatta", "anchor"],
    "hike": ["trail", "summit", "alps", "backpack", "ridge"],
    "city": ["skyline", "tower", "facade", "bridge", "metro"],
}
GENERIC = ["love", "instagood"]


def themed_posts(per_theme: int = 30, seed: int = 3, sizes: tuple[int, int] = (1, 4)) -> list[dict]:
    """Four themes with disjoint tags; every third post also carries a generic tag, and
    six posts carry only generic tags."""
    rng = np.random.default_rng(seed)
    posts = []
    for theme, tags in THEMES.items():
        for i in range(per_theme):
            chosen = list(rng.choice(tags, size=int(rng.integers(*sizes)), replace=False))
            if i % 3 == 0:
                chosen.append(GENERIC[i % 2])
            posts.append({"id": f"{theme}{i}", "tags": chosen, "label": theme})
    posts += [{"id": f"g{i}", "tags": [GENERIC[i % 2]], "label": "none"} for i in range(6)]
    return posts


def as_posts(spark, posts: list[dict]):
    rows = [(i, sorted(set(p["tags"]))) for i, p in enumerate(posts)]
    return spark.createDataFrame(rows, "_pos long, tags array<string>")


def post_categories(fitted) -> dict[int, int]:
    """``{_pos: category}`` of a :func:`fit`, for every post with a tag set."""
    joined = fitted.posts.join(fitted.groups, GROUP_KEYS).select("_pos", "category")
    return {r["_pos"]: r["category"] for r in joined.collect()}


def fit_posts(df, n, features, kmeans, cache, excluded=()):
    return fit(
        df, tag_sets(df, n, features.min_doc_freq, cache), features, kmeans, list(excluded), cache
    )


@pytest.fixture
def keep():
    """A ``cache`` for :func:`fit`: caches, and unpersists after the test."""
    with CacheScope() as cache:
        yield cache


def test_auto_dims_is_k_within_8_and_24():
    assert [auto_dims(k) for k in (2, 5, 8, 20, 24, 25, 200)] == [8, 8, 8, 20, 24, 24, 24]


def test_power_basis_is_orthonormal_seeded_and_spans_the_leading_eigenvectors():
    blocks = sparse.block_diag([np.full((3, 3), 1.0), np.full((3, 3), 0.9), np.eye(4) * 0.1])
    gram = sparse.csr_matrix(blocks)
    b1 = power_basis(gram, 2, 50, seed=7)
    assert np.allclose(b1.T @ b1, np.eye(2), atol=1e-6)
    assert np.array_equal(b1, power_basis(gram, 2, 50, seed=7))
    # the two leading eigenvectors are the block indicators: the basis spans them
    leading = np.zeros((10, 2))
    leading[:3, 0] = leading[3:6, 1] = 1 / np.sqrt(3)
    assert np.allclose(b1 @ (b1.T @ leading), leading, atol=1e-6)


def test_vocabulary_drops_rare_tags_and_indexes_by_frequency(spark):
    posts = as_posts(spark, [{"tags": ["a", "b"]}, {"tags": ["a", "c"]}, {"tags": ["a", "b"]}])
    vocab = tag_vocabulary(posts, 3, min_doc_freq=2)
    # a is in every post: idf = log(4/4) = 0 -> no signal, left out; c is below min_doc_freq
    assert vocab.tags == ("b",) and vocab.df.tolist() == [2]
    assert np.allclose(vocab.idf, [np.log(4 / 3)])
    posts = as_posts(spark, [{"tags": t} for t in (["a", "b"], ["c", "b"], ["c"], ["d"])])
    vocab = tag_vocabulary(posts, 4, min_doc_freq=1)
    assert vocab.tags == ("b", "c", "a", "d")  # by posts, ties by tag
    assert vocab.indices(["d", "zzz", "b"]) == [0, 3]


def test_packed_sets_unpack_and_give_normalised_values():
    packed = pack_sets(np.array([0, 1, 2, 0, 3]), np.array([0, 0, 1, 2, 2]), 4)
    assert [set_tags(b) for b in packed.to_pylist()] == [[0, 1], [2], [0, 3], []]
    idf = np.array([1.0, 1.0, 2.0, 3.0])
    idx, rows, x = tag_values(packed, idf)
    assert idx.tolist() == [0, 1, 2, 0, 3] and rows.tolist() == [0, 0, 1, 2, 2]
    # x = idf / ||idf|| over the row's tags
    assert np.allclose(x, [2**-0.5, 2**-0.5, 1.0, 1 / 10**0.5, 3 / 10**0.5])
    # left-out tags count as absent: row 1 keeps nothing, row 2 only tag 0
    kept = np.array([True, True, False, False])
    assert np.allclose(tag_values(packed, idf, kept)[2], [2**-0.5, 2**-0.5, 0.0, 1.0, 0.0])
    # a slice of a batch (Arrow keeps the parent's buffers and an offset)
    idx, rows, _ = tag_values(packed.slice(1, 2), idf)
    assert idx.tolist() == [2, 0, 3] and rows.tolist() == [0, 1, 1]


def test_sorted_unique_matches_numpy_unique():
    rng = np.random.default_rng(3)
    keys = np.repeat(np.arange(50), 7) * 100 + rng.integers(0, 20, 350)  # runs, repeats
    assert np.array_equal(sorted_unique(keys), np.unique(keys))
    assert sorted_unique(np.array([], dtype=np.int64)).tolist() == []


@pytest.mark.parametrize("measure", ["euclidean", "cosine"])
def test_nearest_centres_agree_with_mllib(spark, measure):
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.linalg import Vectors

    rng = np.random.default_rng(5)
    points = rng.standard_normal((300, 3)) + np.repeat(rng.standard_normal((6, 3)) * 3, 50, 0)
    points /= np.linalg.norm(points, axis=1)[:, None]  # unit rows, as embeddings are
    frame = spark.createDataFrame([(Vectors.dense(p),) for p in points.tolist()], ["features"])
    model = KMeans(k=6, seed=1, distanceMeasure=measure).fit(frame)
    expected = [r["prediction"] for r in model.transform(frame).collect()]
    centres = np.array(model.clusterCenters())
    assert nearest_centres(points, centres, measure).tolist() == expected
    # the first of two equally near centres wins, as in MLlib
    twins = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert nearest_centres(np.array([[1.0, 0.0, 0.0]]), twins, measure).tolist() == [0]


def test_identical_tag_sets_collapse_into_one_weighted_row(spark, keep):
    posts = as_posts(
        spark,
        [{"tags": ["x", "y"]}, {"tags": ["y", "x"]}, {"tags": ["x"]}, {"tags": ["z", "w"]}]
        + [{"tags": ["w"]}, {"tags": ["y", "z"]}],
    )
    sets = tag_sets(posts, 6, 1, keep)
    vocab = sets.vocabulary.tags
    rows = {tuple(vocab[i] for i in set_tags(r["idx"])): r["weight"] for r in sets.sets.collect()}
    assert sets.count == 5
    assert rows == {
        ("x", "y"): 2,
        ("x",): 1,
        ("w", "z"): 1,
        ("w",): 1,
        ("y", "z"): 1,
    }
    # every post keeps its set: the two x-y posts share one id
    ids = [r["set_id"] for r in sets.posts.orderBy("_pos").collect()]
    assert ids[0] == ids[1] and len(set(ids)) == 5


def test_weighted_rows_give_the_same_categories_as_one_row_per_post(spark, keep):
    """Collapsing identical tag sets changes nothing: compare with every post made unique
    by a private tag that is too rare to enter the vocabulary."""
    posts = themed_posts()
    unique = [{**p, "tags": p["tags"] + [f"only{i}"]} for i, p in enumerate(posts)]
    kmeans = KMeansConfig(k=4, seed=5)
    runs = []
    for corpus in (posts, unique):
        df = as_posts(spark, corpus)
        fitted = fit_posts(df, len(corpus), FeaturesConfig(), kmeans, keep)
        runs.append(post_categories(fitted))
    collapsed, one_per_post = runs
    assert len(one_per_post) == len(posts)
    pairs = {(collapsed[i], one_per_post[i]) for i in collapsed}
    # the same partition: four categories each, matched one to one (a merge of two
    # categories in either run leaves fewer distinct ids on that side)
    assert len(pairs) == len(set(collapsed.values())) == len(set(one_per_post.values())) == 4


def test_the_fit_lets_go_of_mllibs_model_once_it_has_the_centres(spark, keep, monkeypatch):
    """On Spark Connect a fitted KMeansModel is a server-side object that its ``__del__``
    frees; the fit drops and collects it itself, so that no garbage collection inside a
    later gRPC call has to (:func:`tagspark.stages.release_ml_objects`)."""
    import weakref

    from pyspark.ml.clustering import KMeans

    made = []
    fit_kmeans = KMeans.fit

    def fit_and_watch(self, *args, **kwargs):
        model = fit_kmeans(self, *args, **kwargs)
        made.append(weakref.ref(model))
        return model

    monkeypatch.setattr(KMeans, "fit", fit_and_watch)
    posts = themed_posts()
    fitted = fit_posts(as_posts(spark, posts), len(posts), FeaturesConfig(dims=4),
                       KMeansConfig(k=4, seed=1), keep)  # fmt: skip
    assert len(made) == 1 and made[0]() is None
    assert fitted.model is None and fitted.centres.shape == (4, 4) and fitted.iterations >= 1


def test_spectral_keeps_each_theme_whole_whatever_the_seed(spark, keep):
    """With k dimensions for k themes (on this 20-tag corpus the default floor of 8 would
    give 8 of its 20 directions, and k-means splits a theme on some seeds)."""
    posts = [p for p in themed_posts() if p["label"] != "none"]
    posts = [{**p, "tags": [t for t in p["tags"] if t not in GENERIC]} for p in posts]
    df = as_posts(spark, posts).cache()
    for seed in range(3):
        features = FeaturesConfig(dims=4)
        fitted = fit_posts(df, len(posts), features, KMeansConfig(k=4, seed=seed), keep)
        by_theme: dict[str, set[int]] = {}
        for pos, category in post_categories(fitted).items():
            by_theme.setdefault(posts[pos]["label"], set()).add(category)
        assert all(len(c) == 1 for c in by_theme.values()), seed
        assert len(set.union(*by_theme.values())) == 4, seed


def test_generic_tags_are_detected_by_their_spread(spark, keep):
    posts = themed_posts()
    df = as_posts(spark, posts)
    sets = tag_sets(df, len(posts), 2, keep)
    fitted = fit(df, sets, FeaturesConfig(), KMeansConfig(k=4, seed=0), [], keep)
    groups = keep(fitted.groups)
    spread = tag_spread(category_cells(groups, sets.vocabulary.idf))
    found = generic_tags(spread, GenericConfig(), sets.vocabulary)
    assert [g["tag"] for g in found] == ["instagood", "love"]
    assert all(g["source"] == "detected" and g["spread"] > 0.9 for g in found)
    # love: every 6th post of each 30-post theme (5 a theme) and 3 of the 6 generic-only
    # posts, which sit in some category here (the job moves them to mixed afterwards)
    assert found[1]["posts"] == 23 and found[1]["share"] == round(23 / 126, 6)
    listed = GenericConfig(detect=False, tags=("#Pasta", "nosuchtag"))
    assert [
        (g["tag"], g["source"], g["posts"] > 0)
        for g in generic_tags(spread, listed, sets.vocabulary)
    ] == [
        ("pasta", "listed", True),
        ("nosuchtag", "listed", False),
    ]


def test_generic_tags_are_found_by_evidence_at_any_frequency():
    """Four categories of 1,000 posts. A tag spread over them as the posts are is generic
    at 10% of the posts and at 0.4% (under the old 0.5% share floor), but not with 3 posts
    (too few to tell: random tags of 3 posts rarely look spread); a tag of one category or
    of two, or one that lives mostly in one, is not generic, however many posts it has."""
    per_category = {
        "common": [100, 100, 100, 100],
        "small": [4, 4, 4, 4],
        "tiny": [1, 1, 1, 0],
        "topical": [16, 0, 0, 0],
        "two_topics": [60, 60, 0, 0],
        "mostly_one": [70, 5, 3, 2],
    }
    names = list(per_category)
    category, idx, posts = [], [], []
    for t, counts in enumerate(per_category.values()):
        for c, n in enumerate(counts):
            if n:
                category.append(c)
                idx.append(t)
                posts.append(n)
    cells = Cells(
        np.array(category), np.array(idx), np.array(posts, dtype=float),
        np.array(posts, dtype=float), {c: 1000 for c in range(4)},
    )  # fmt: skip
    vocabulary = Vocabulary(tuple(names), np.zeros(len(names)), np.ones(len(names)))
    spread = tag_spread(cells)
    found = {g["tag"]: g for g in generic_tags(spread, GenericConfig(), vocabulary)}
    assert sorted(found) == ["common", "small"]
    assert found["small"]["share"] == 0.004 and found["small"]["evidence"] > 0.9
    # the raw spread of 16 random posts over 4 categories is below 1 on average; the evidence
    # compares the tag with that, not with 1
    assert found["small"]["evidence"] > found["small"]["spread"]
    # chance: 3 posts cannot tell, 16 can
    mean, low = chance_spread(spread.sizes, np.array([3, 16, 400]))
    assert low[0] < 0.5 <= low[1] <= low[2] and mean[0] < mean[1] < mean[2] <= 1.0
    # min_share is an extra floor, off by default: the old 0.5% leaves the small tag out
    floored = GenericConfig(min_share=0.005)
    assert [g["tag"] for g in generic_tags(spread, floored, vocabulary)] == ["common"]


def _generic_led_corpus() -> list[dict]:
    """Three themes; each has three common tags and six rare ones (too rare for the
    features at ``features.max_tags = 11``), and 6 posts that carry one rare tag of
    their theme beside the generic #love and #instagood: posts whose feature tags are all
    generic."""
    posts = []
    for theme in "abc":
        common = [f"{theme}{i}" for i in range(3)]
        for i in range(60):
            tags = [common[i % 3], common[(i + 1) % 3]]
            if i < 18:  # each rare tag beside a common one in 3 posts
                tags.append(f"{theme}rare{i % 6}")
            tags += ["love"] * (i % 4 == 0) + ["instagood"] * (i % 4 == 2)
            posts.append({"id": f"{theme}{i}", "tags": tags, "label": theme})
        for i in range(6):
            tags = ["love", "instagood", f"{theme}rare{i % 6}"]
            posts.append({"id": f"{theme}led{i}", "tags": tags, "label": theme})
    return posts


def test_posts_led_by_generic_tags_are_placed_by_their_other_tags(tmp_path):
    """Their embedding is #love's and #instagood's alone: the same point for all 18, which
    k-means made a catch-all category of its own, named after their rare tags. They go to
    their rare tags' theme instead, and ``assign`` places them as ``cluster`` did."""
    posts = _generic_led_corpus()
    inp = write_jsonl(tmp_path / "posts.jsonl", posts)
    out = tmp_path / "out"
    args = ["cluster", "--input", str(inp), "--output", str(out), "--k", "4", "--seed", "1"]
    assert main([*args, "--set", "features.max_tags=11", "--label-field", "label", "-q"]) == 0
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert sorted(g["tag"] for g in meta["generic_tags"]) == ["instagood", "love"]
    assert meta["counts"]["generic_led"] == 18
    table = pq.read_table(out / "assignments").to_pylist()
    category = {r["id"]: r["category_id"] for r in table}
    of_theme = {t: {category[f"{t}{i}"] for i in range(60)} for t in "abc"}
    assert all(len(c) == 1 for c in of_theme.values())
    for t in "abc":  # every generic-led post in its theme's category
        assert {category[f"{t}led{i}"] for i in range(6)} == of_theme[t]
    names = {c["id"]: c["name"] for c in json.loads((out / "categories.json").read_text())}
    assert all("rare" not in names[c] for t in "abc" for c in of_theme[t])
    assert json.loads((out / "evaluation.json").read_text())["nmi"] == pytest.approx(1.0)
    # the saved model places them the same way
    again = tmp_path / "again"
    assert main(["assign", "--model", str(out), "--input", str(inp), "--output", str(again),
                 "-q"]) == 0  # fmt: skip
    assigned = pq.read_table(again / "assignments").to_pylist()
    assert {r["id"]: r["category_id"] for r in assigned} == category


def test_job_puts_generic_only_posts_in_mixed_and_keeps_generic_tags_out_of_names(tmp_path):
    posts = themed_posts()
    inp = write_jsonl(tmp_path / "posts.jsonl", posts)
    out = tmp_path / "out"
    args = ["cluster", "--input", str(inp), "--output", str(out), "--k", "4", "--seed", "0"]
    assert main([*args, "-q"]) == 0
    cats = json.loads((out / "categories.json").read_text())
    mixed = [c for c in cats if c["id"] == -1]
    assert mixed and mixed[0]["name"] == "mixed" and mixed[0]["size"] == 6
    for c in cats:
        assert not set(c["leading_tags"]) & set(GENERIC)
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["counts"]["mixed"] == 6
    assert [g["tag"] for g in meta["generic_tags"]] == ["instagood", "love"]
    assert "6 posts carry no category-specific tag" in (out / "summary.md").read_text()


def test_k_candidates_are_log_spaced_and_capped():
    assert choose_k.k_candidates(2, 10, 1000, 9) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert choose_k.k_candidates(2, 100, 6, 8) == [2, 3, 4, 5, 6]
    assert choose_k.k_candidates(10, 400, 1000, 6) == [10, 21, 44, 91, 191, 400]


def test_k_range_is_validated_before_spark():
    assert load_config(None, ['kmeans.k_range="10:400"']).kmeans.k_range == "10:400"
    for bad in ('"1:5"', '"9:3"', '"ten"', '"5"'):
        with pytest.raises(ConfigError, match="kmeans.k_range"):
            load_config(None, [f"kmeans.k_range={bad}"])


def obvious_corpus(tmp_path):
    """Four themes whose posts share most of their theme's tags, no generic tags."""
    posts = [p for p in themed_posts(sizes=(3, 6)) if p["label"] != "none"]
    posts = [{**p, "tags": [t for t in p["tags"] if t not in GENERIC]} for p in posts]
    return write_jsonl(tmp_path / "posts.jsonl", posts)


def test_choose_k_finds_the_obvious_k(tmp_path):
    inp = obvious_corpus(tmp_path)
    out = tmp_path / "k"
    args = ["choose-k", "--input", str(inp), "--output", str(out), "--k-range", "3:6", "-q"]
    assert main([*args, "--set", "kmeans.k_points=4"]) == 0
    result = json.loads((out / "choose_k.json").read_text())
    assert [p["k"] for p in result["curve"]] == [3, 4, 5, 6]
    assert result["chosen_k"] == 4
    assert (out / "choose_k.csv").read_text().startswith("k,cost,silhouette\n3,")
    assert (out / "choose_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_k_auto_clusters_with_the_chosen_k(tmp_path):
    inp = obvious_corpus(tmp_path)
    out = tmp_path / "out"
    args = ["cluster", "--input", str(inp), "--output", str(out), "--k", "auto", "-q"]
    assert main([*args, "--set", 'kmeans.k_range="3:6"', "--set", "kmeans.k_points=4"]) == 0
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["choose_k"]["chosen_k"] == meta["config"]["kmeans"]["k"] == 4
    assert (out / "choose_k.png").is_file()
    assert "Chosen k = 4" in (out / "summary.md").read_text()


def test_embedding_needs_two_vocabulary_tags(spark, keep):
    posts = as_posts(spark, [{"tags": ["a"]}, {"tags": ["a"]}, {"tags": ["b"]}])
    with pytest.raises(ParameterError, match="at least 2"):
        tag_sets(posts, 3, 2, keep)


def test_generic_tags_can_be_left_out_of_the_features(spark, tmp_path):
    inp = write_jsonl(tmp_path / "posts.jsonl", themed_posts())
    runs = {}
    for exclude in ("false", "true"):
        out = tmp_path / exclude
        args = ["cluster", "--input", str(inp), "--output", str(out), "--k", "4", "-q"]
        args += ["--seed", "0", "--set", f"generic.exclude_from_features={exclude}"]
        args += ["--set", "features.dims=4"]  # k dims on this 20-tag corpus, as above
        assert main(args) == 0
        runs[exclude] = json.loads((out / "model" / "metadata.json").read_text())
    # detected after the first fit, then fitted again without them: 20 theme tags remain
    assert runs["false"]["features"]["feature_tags"] == 22
    assert runs["true"]["features"]["feature_tags"] == 20
    assert runs["true"]["features"]["vocabulary"] == 22
    assert [g["tag"] for g in runs["true"]["generic_tags"]] == ["instagood", "love"]
    assert runs["true"]["counts"]["mixed"] == 6
    # without the generic tags' pull, each theme is one category
    assigned = {
        r["id"]: r["category_id"]
        for r in spark.read.parquet(str(tmp_path / "true" / "assignments")).collect()
    }
    themes: dict[str, set[int]] = {}
    for p in themed_posts():
        themes.setdefault(p["label"], set()).add(assigned[p["id"]])
    assert themes.pop("none") == {-1}
    assert all(len(c) == 1 for c in themes.values()) and len(set.union(*themes.values())) == 4


def test_top_tags_rank_by_weight_then_posts_then_tag_and_leave_out_excluded():
    tags = ("c", "b", "a", "generic")
    # category 0 (4 posts): a and b tie on weight and posts, so the tag decides; c has the
    # same sum over fewer posts and ranks last; category -1 (mixed) holds the generic tag
    cells = Cells(
        category=np.array([0, 0, 0, 0, -1]),
        idx=np.array([0, 1, 2, 3, 3]),
        posts=np.array([1, 2, 2, 4, 2]),
        sx=np.array([1.0, 1.0, 1.0, 4.0, 1.0]),
        sizes={0: 4, -1: 2},
    )
    sizes = {0: 4, -1: 3}  # one more mixed post with no tag at all
    weights = tag_weights(cells, sizes)
    assert np.allclose(weights, [0.25, 0.25, 0.25, 1.0, 1 / 3])
    ranked = top_tags(cells, weights, tags, n=2, excluded=[3])
    assert {c: [(t.tag, t.posts) for t in ts] for c, ts in ranked.items()} == {
        0: [("a", 2), ("b", 2)]
    }
    assert [t.tag for t in top_tags(cells, weights, tags, n=5, excluded=[])[0]] == [
        "generic",
        "a",
        "b",
        "c",
    ]
    # a post with no vocabulary tag, in mixed: its distance is the mixed centre's norm
    centres = TagCentres.of(cells, weights)
    none = np.zeros(0, dtype=np.int64)
    for measure, expected in (("euclidean", 1 / 3), ("cosine", 1.0)):
        got = centres.distance(none, none, np.zeros(0), np.array([-1]), 1, measure)
        assert got.tolist() == pytest.approx([expected])


def test_moving_generic_only_sets_to_mixed_moves_their_cells(spark, keep):
    """The cells after generic-only sets go to mixed, derived from one pass over those sets,
    equal the cells added up anew over the moved groups."""
    posts = themed_posts()
    df = as_posts(spark, posts)
    fitted = fit_posts(df, len(posts), FeaturesConfig(), KMeansConfig(k=4, seed=5), keep)
    sets_idf = fitted.embedding.idf
    groups = keep(fitted.groups)
    vocabulary = tag_vocabulary(df, len(posts), 2)
    generic = np.array(vocabulary.indices(GENERIC), dtype=np.int64)
    cells = category_cells(groups, sets_idf)
    derived = with_mixed_cells(cells, category_cells(groups, sets_idf, generic))
    # the reference: move the sets in numpy, then add everything up again
    table = groups.toArrow()
    idx, rows = unpack_sets(table.column("idx").combine_chunks())
    moved = only_generic(idx, rows, table.num_rows, generic)
    category = np.where(moved, -1, table.column("category").to_numpy()).astype(np.int32)
    rebuilt = spark.createDataFrame(
        table.set_column(
            table.schema.get_field_index("category"), "category", pa.array(category)
        ).to_pandas()
    )
    fresh = category_cells(rebuilt, sets_idf)
    assert moved.sum() == 2  # {love} and {instagood}: the six generic-only posts
    assert derived.sizes == fresh.sizes and fresh.sizes[-1] == 6
    order_d = np.lexsort((derived.idx, derived.category))
    order_f = np.lexsort((fresh.idx, fresh.category))
    assert derived.category[order_d].tolist() == fresh.category[order_f].tolist()
    assert derived.idx[order_d].tolist() == fresh.idx[order_f].tolist()
    assert derived.posts[order_d].tolist() == fresh.posts[order_f].tolist()
    assert derived.sx[order_d] == pytest.approx(fresh.sx[order_f], abs=1e-12)
