"""The saved model: round trip per method, assign, the Estimator API, the popularity band,
suggest and search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.ml import Pipeline
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import functions as F

from tagspark import suggest as sg
from tagspark.centres import TagCentres
from tagspark.cli import main
from tagspark.config import PopularityConfig
from tagspark.errors import InputError
from tagspark.estimator import TagCategories, TagCategoriesModel
from tagspark.model import TagModel
from tagspark.naming import Category, RankedTag
from tagspark.popularity import read_popularity, tag_stats
from tests.conftest import TOY_POSTS, write_jsonl
from tests.test_quality import themed_posts

METHODS = ["spectral", "svd", "tfidf"]


def _run(*args: str) -> int:
    return main([*args, "-q"])


def _assignments(path: Path) -> dict[str, tuple[int, float]]:
    rows = pq.read_table(path).to_pylist()
    return {r["id"]: (r["category_id"], r["distance"]) for r in rows}


def _corpus() -> list[dict]:
    """Four themes, generic tags, posts with only generic tags, and posts whose tags are
    all past features.max_tags (placed by their tags) or unknown (mixed)."""
    posts = themed_posts(per_theme=30)
    posts += [{"id": f"r{i}", "tags": ["ridge", "metro"][i % 2 : i % 2 + 1]} for i in range(4)]
    return posts


@pytest.fixture(scope="module")
def runs(spark, tmp_path_factory):
    """One cluster output per method, on the same corpus."""
    tmp = tmp_path_factory.mktemp("model")
    inp = write_jsonl(tmp / "posts.jsonl", _corpus())
    outs = {}
    for method in METHODS:
        out = tmp / method
        extra = ["--set", "features.max_tags=16"] if method != "tfidf" else []
        code = _run(
            "cluster", "--input", str(inp), "--output", str(out), "--k", "4", "--seed", "3",
            "--set", f'features.method="{method}"', *extra,
        )  # fmt: skip
        assert code == 0
        outs[method] = out
    return inp, outs


@pytest.mark.parametrize("method", METHODS)
def test_a_reloaded_model_places_the_corpus_as_the_job_did(spark, runs, method):
    inp, outs = runs
    out = outs[method]
    model = TagCategoriesModel.load(str(out / "model"))
    posts = spark.read.json(str(inp)).select("id", "tags")
    placed = {
        r["id"]: (r["category_id"], r["distance"])
        for r in model.transform(posts).select("id", "category_id", "distance").collect()
    }
    expected = _assignments(out / "assignments")
    assert len(placed) == len(expected) == 130
    assert {p: c for p, (c, _) in placed.items()} == {p: c for p, (c, _) in expected.items()}
    for p, (_, d) in expected.items():
        assert placed[p][1] == pytest.approx(d, abs=1e-9)
    # the categories come back whole, read with pyarrow alone
    local = TagModel.load(str(out / "model"))
    saved = json.loads((out / "categories.json").read_text())
    assert [c.to_dict() for c in local.categories] == saved
    assert local.method == method


def test_the_spectral_model_holds_every_part_it_needs(runs):
    _, outs = runs
    folder = outs["spectral"] / "model"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "categories.parquet",
        "category_tags.parquet",
        "centres.parquet",
        "metadata.json",
        "model.json",
        "names.parquet",
        "neighbours.parquet",
        "placing.parquet",
        "rare.parquet",
        "tags.parquet",
        "vocabulary.parquet",
    ]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["counts"]["placed_by_tags"] > 0  # so placing.parquet is exercised
    vocabulary = pq.read_table(folder / "vocabulary.parquet")
    assert vocabulary.column("feature").to_pylist().count(-1) == len(vocabulary) - 16
    about = json.loads((folder / "model.json").read_text())
    assert set(about["generic_tags"]) == {"love", "instagood"}
    assert about["tags"] == {"max_tags_per_post": 30}
    assert about["rare_tags"] == pq.read_metadata(folder / "rare.parquet").num_rows


def test_tfidf_keeps_its_spark_pipeline(runs):
    _, outs = runs
    assert (outs["tfidf"] / "model" / "pipeline" / "metadata").is_dir()
    assert not (outs["tfidf"] / "model" / "centres.parquet").exists()


def test_assign_places_new_posts_and_rejects_bad_records(spark, runs, tmp_path, caplog):
    inp, outs = runs
    new = tmp_path / "new.jsonl"
    lines = inp.read_text().splitlines()[:10]
    lines += ['{"id": "bad", "tags": ', '{"id": "u1", "tags": ["zzz", "yyy", "pasta"]}']
    new.write_text("\n".join(lines) + "\n")
    out = tmp_path / "assigned"
    assert _run("assign", "--model", str(outs["spectral"]), "--input", str(new),
                "--output", str(out)) == 0  # fmt: skip
    placed = _assignments(out / "assignments")
    job = _assignments(outs["spectral"] / "assignments")
    assert set(placed) == {r["id"] for r in _corpus()[:10]} | {"u1"}
    for p in placed:
        if p != "u1":
            assert placed[p][0] == job[p][0]
    pasta = job[_corpus()[0]["id"]][0]  # food0 is a food post
    assert placed["u1"][0] == pasta
    rejected = spark.read.json(str(out / "rejected")).collect()
    assert [(r["record"], r["reason"]) for r in rejected] == [(11, "malformed JSON")]
    result = json.loads((out / "assign.json").read_text())
    assert result["counts"]["kept"] == 11 and result["counts"]["rejected"] == 1
    assert sum(c["posts"] for c in result["categories"]) == 11
    tags = sum(len(set(p["tags"])) for p in _corpus()[:10]) + 3
    assert result["unknown_tags"] == {"tags": tags, "unknown": 2, "share": round(2 / tags, 4)}
    assert (out / "_COMPLETE").is_file()


def test_assign_warns_when_most_tags_are_unknown(runs, tmp_path, caplog):
    _, outs = runs
    new = write_jsonl(tmp_path / "drift.jsonl", [{"id": "1", "tags": ["new", "other", "pasta"]}])
    with caplog.at_level("WARNING"):
        assert _run("assign", "--model", str(outs["spectral"] / "model"), "--input", str(new),
                    "--output", str(tmp_path / "out")) == 0  # fmt: skip
    assert "67% of the new posts' tags are unknown to the model" in caplog.text


def test_the_estimator_sits_in_a_pipeline_after_hashtag_extraction(spark, tmp_path):
    captions = [(p["id"], " ".join(f"#{t}" for t in p["tags"]) + " ok") for p in TOY_POSTS]
    df = spark.createDataFrame(captions, "id string, caption string")
    extract = SQLTransformer(
        statement="SELECT *, regexp_extract_all(caption, '#(\\\\w+)', 1) AS hashtags FROM __THIS__"
    )
    pipeline = Pipeline(stages=[extract, TagCategories(k=2, seed=42, tagsCol="hashtags")])
    fitted = pipeline.fit(df)
    model = fitted.stages[-1]
    assert sorted(c.name for c in model.categories) == ["architecture_italy", "food_italy"]
    rows = fitted.transform(df).select("id", "category_id").collect()
    by_name = {c.id: c.leading_tags[0] for c in model.categories}
    assert {r["id"]: by_name[r["category_id"]] for r in rows} == {
        "0": "food", "1": "food", "2": "food",
        "3": "architecture", "4": "architecture", "5": "architecture",
    }  # fmt: skip
    model.save(str(tmp_path / "m"))
    again = TagCategoriesModel.load(str(tmp_path / "m"))
    assert again.getTagsCol() == "hashtags"  # the Params saved beside the model
    rows2 = extract.transform(df).transform(again.transform).select("id", "category_id")
    assert sorted(map(tuple, rows2.collect())) == sorted(map(tuple, rows))
    assert model.summary["counts"]["distinct_tag_sets"] == 4


def _hand_model() -> TagModel:
    """Tags a, b, c, g in 20 posts; category 0 holds a (8 posts), b (4), g (4); category 1
    holds a (2), c (6), g (4)."""
    cells = TagCentres(
        category=np.array([0, 0, 0, 1, 1, 1]),
        idx=np.array([0, 1, 3, 0, 2, 3]),
        weight=np.array([0.5, 0.3, 0.1, 0.1, 0.6, 0.2]),
    )
    listed = lambda *ts: tuple(RankedTag(t, 0.1, 1) for t in ts)  # noqa: E731
    return TagModel(
        method="svd",
        distance_measure="euclidean",
        n_posts=20,
        tags=("a", "b", "c", "g"),
        df=np.array([10, 4, 6, 8]),
        idf=np.ones(4),
        column=np.arange(4),
        centres=cells,
        cell_posts=np.array([8, 4, 4, 2, 6, 4]),
        generic=np.array([3]),
        categories=[
            Category(0, "a_b", ("a", "b"), 12, listed("a", "b")),
            Category(1, "c_a", ("c", "a"), 8, listed("c", "a")),
        ],
    )


def test_specificity_band_and_recommended_on_a_hand_built_model(tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text("tag,posts\n#A,5000000\nb,50\ng,900000000\n")
    cfg = PopularityConfig(network_posts=1_000_000, min_specificity=0.6)
    stats = tag_stats(_hand_model(), cfg, read_popularity(str(counts)))
    assert stats.specificity.tolist() == pytest.approx([0.8, 1.0, 1.0, 0.5])
    # g: 4 posts in each category, the higher weight (category 1's 0.2) decides
    assert stats.top_category.tolist() == [0, 0, 1, 1]
    # c is not in the file: 6 / 20 of 1M network posts
    assert stats.popularity.tolist() == [5_000_000, 50, 300_000, 900_000_000]
    assert stats.from_file.tolist() == [True, True, False, True]
    assert stats.band.tolist() == ["in_band", "too_rare", "in_band", "too_popular"]
    assert stats.recommended.tolist() == [True, False, True, False]
    table = stats.table(_hand_model().categories)
    assert table.column("top_category_name").to_pylist() == ["a_b", "a_b", "c_a", "c_a"]
    assert table.column("popularity_source").to_pylist() == ["file", "file", "estimate", "file"]


def test_a_popularity_file_with_a_bad_line_is_refused(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tag": "a", "posts": 3}\n{"tag": "b", "posts": "many"}\n')
    with pytest.raises(InputError, match="line 2"):
        read_popularity(str(bad))
    headless = tmp_path / "bad.csv"
    headless.write_text("a,3\n")
    with pytest.raises(InputError, match="must name the columns tag and posts"):
        read_popularity(str(headless))
    # told before Spark starts, in one line
    posts = write_jsonl(tmp_path / "p.jsonl", TOY_POSTS)
    args = ["cluster", "--input", str(posts), "--output", str(tmp_path / "o"), "-q"]
    assert main([*args, "--popularity", str(bad)]) == 1
    assert not (tmp_path / "o").exists()


def test_the_cluster_job_rates_listed_tags_with_a_popularity_file(runs, tmp_path):
    inp, _ = runs
    pasta, pizza = {"tag": "pasta", "posts": 2_000_000}, {"tag": "pizza", "posts": 90_000_000}
    counts = write_jsonl(tmp_path / "counts.jsonl", [pasta, pizza])
    out = tmp_path / "out"
    assert _run("cluster", "--input", str(inp), "--output", str(out), "--k", "4", "--seed", "3",
                "--popularity", str(counts)) == 0  # fmt: skip
    listed = {
        t["tag"]: t for c in json.loads((out / "categories.json").read_text()) for t in c["tags"]
    }
    assert (listed["pasta"]["popularity"], listed["pasta"]["band"]) == (2_000_000, "in_band")
    assert listed["pasta"]["recommended"] is True
    assert (listed["pizza"]["band"], listed["pizza"]["recommended"]) == ("too_popular", False)
    # gelato: 1 post in 7 of the 130 carry it -> estimated far above 10m, too popular
    assert listed["gelato"]["popularity_source"] == "estimate"
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["popularity"].startswith(str(counts))


@pytest.fixture(scope="module")
def rated_model(runs, tmp_path_factory):
    """The spectral model with every theme tag in the band."""
    _, outs = runs
    counts = tmp_path_factory.mktemp("pop") / "counts.csv"
    tags = [t for p in _corpus() for t in p["tags"]]
    counts.write_text("tag,posts\n" + "".join(f"{t},1000000\n" for t in sorted(set(tags))))
    return sg.rated_with(TagModel.load(str(outs["spectral"] / "model")), str(counts)), counts


def test_suggest_leaves_out_the_posts_and_generic_tags_and_ranks_by_fit(rated_model):
    model, _ = rated_model
    result = sg.suggest(model, sg.post_tags(model, "#Pasta #pizza #mycafe"), n=10)
    assert result["known_tags"] == ["pasta", "pizza"]
    assert result["unknown_tags"] == ["mycafe"]
    assert result["categories"][0]["name"] == model.by_id[result["categories"][0]["id"]].name
    first = model.by_id[result["categories"][0]["id"]]
    assert "pasta" in first.leading_tags or "pizza" in first.leading_tags
    tags = [s["tag"] for s in result["suggestions"]]
    assert "pasta" not in tags and "pizza" not in tags
    assert not {"love", "instagood"} & set(tags)  # generic tags are never suggested
    # the food theme's other tags go with pasta and pizza: they come first, by score
    assert set(tags[:3]) == {"risotto", "gelato", "espresso"}
    scores = [s["score"] for s in result["suggestions"][:3]]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0
    assert all(s["recommended"] for s in result["suggestions"][:3])  # in the file's band
    assert result["popularity_note"] is None  # real counts: nothing assumed
    assert set(result["suggestions"][0]) == set(sg.SUGGESTION_FIELDS.names)


@pytest.mark.parametrize("method", METHODS)
def test_suggest_places_a_post_with_every_method(runs, method):
    _, outs = runs
    model = TagModel.load(str(outs[method] / "model"))
    result = sg.suggest(model, ["pasta", "pizza"], n=3)
    (first, *_) = result["categories"]
    assert {"pasta", "pizza"} & set(model.by_id[first["id"]].leading_tags)
    assert {s["tag"] for s in result["suggestions"]} <= {"risotto", "gelato", "espresso"}


def test_suggest_on_the_command_line(rated_model, runs, capsys):
    _, counts = rated_model
    _, outs = runs
    model = str(outs["spectral"])
    assert main(["suggest", "--model", model, "--caption", "Dinner #risotto!", "--json",
                 "--n", "3", "--popularity", str(counts)]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["input_tags"] == ["risotto"] and len(result["suggestions"]) == 3
    assert result["popularity"].startswith(str(counts))
    # no known tag: a message and exit code 0
    assert main(["suggest", "--model", model, "--tags", "#unheard #of"]) == 0
    out = capsys.readouterr().out
    assert "Unknown to the model: #unheard #of" in out and "No suggestions" in out
    # bad arguments: one Error line, exit code 1
    assert main(["suggest", "--model", str(outs["spectral"].parent), "--tags", "x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: ") and "no tagspark model" in err[0]


def test_search_ranks_categories_by_the_tags_weight(runs, capsys):
    _, outs = runs
    model = TagModel.load(str(outs["spectral"] / "model"))
    found = sg.search(model, "#s")  # sailing, summit, skyline
    leading = {f["tag"] for f in found}
    assert leading <= {"sailing", "summit", "skyline"} and len(found) == 3
    assert [f["weight"] for f in found] == sorted((f["weight"] for f in found), reverse=True)
    for f in found:
        cells = model.centres
        at = (cells.category == f["id"]) & (cells.idx == model.position[f["tag"]])
        assert cells.weight[at][0] == pytest.approx(f["weight"])
    assert sg.search(model, "zzz") == []
    assert main(["search", "--model", str(outs["spectral"]), "pasta", "--json"]) == 0
    (hit,) = json.loads(capsys.readouterr().out)
    assert hit["tag"] == "pasta" and hit["rank"] >= 1


def test_batch_suggest_writes_one_row_a_post(spark, runs, tmp_path):
    inp, outs = runs
    out = tmp_path / "suggested"
    assert _run("suggest", "--model", str(outs["spectral"]), "--input", str(inp),
                "--output", str(out), "--n", "2") == 0  # fmt: skip
    rows = {r["id"]: r for r in spark.read.parquet(str(out / "suggestions")).collect()}
    assert len(rows) == 130
    model = TagModel.load(str(outs["spectral"] / "model"))
    for post in _corpus()[:5]:
        single = sg.suggest(model, post["tags"], 2)
        got = rows[post["id"]]
        assert [s["tag"] for s in got["suggestions"]] == [s["tag"] for s in single["suggestions"]]
        assert got["category"] == single["categories"][0]["name"]
    only_generic = rows["g0"]
    assert only_generic["suggestions"] == [] and "generic" in only_generic["message"]


STRINGS = [
    "  #Food ", "＃Ramen", "Café", "#", "ÉTÉ", "# spaced", "\u3000#wide", "",
    "C# and ##pasta at #Roma#food, &#39; #x_1 #日本 #", "a,b;c {d} [e] 'f'",
    "{espresso, Grinder}", "#a#b#c", "abc#def #ok",
]  # fmt: skip


def test_the_python_tag_rules_equal_the_spark_ones(spark):
    from tagspark import tagrules, tags

    df = spark.createDataFrame([(s,) for s in STRINGS], "s string")
    rows = df.select(
        tags.normalise_tag(F.col("s")).alias("tag"),
        tags.extract_hashtags(F.col("s")).alias("hashtags"),
        tags.parse_tag_text(F.col("s")).alias("parsed"),
    ).collect()
    for s, row in zip(STRINGS, rows, strict=True):
        assert tagrules.normalise_tag(s) == row["tag"], s
        assert tagrules.extract_hashtags(s) == row["hashtags"], s
        assert tagrules.parse_tag_text(s) == row["parsed"], s
