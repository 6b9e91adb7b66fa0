"""tagspark as a pyspark.ml citizen: Params, persistence of the stages and of a Pipeline
holding them, the model folder shared with the CLI, HashtagExtractor, CategoryEvaluator and
pyspark.ml.tuning over k, and the README's notebook example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from tagspark.cli import main
from tagspark.config import load_config
from tagspark.errors import ConfigError, OutputError
from tagspark.estimator import TagCategories, TagCategoriesModel
from tagspark.ml import CategoryEvaluator, HashtagExtractor
from tagspark.params import JOB_ONLY, SETTINGS, config_keys, settings_table
from tagspark.posts import with_post_tags
from tests.conftest import SHARED_DATA, TOY_POSTS, needs_stackexchange, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CAPTIONS = [
    ("0", "Dinner in #Italy #food", "food"),
    ("1", "#food#italy at last", "food"),
    ("2", "just #FOOD", "food"),
    ("3", "#italy #architecture!", "buildings"),
    ("4", "#architecture, #italy", "buildings"),
    ("5", "#architecture", "buildings"),
]


@pytest.fixture(scope="module")
def captions(spark):
    return spark.createDataFrame(CAPTIONS, "id string, caption string, label string")


# -- Params ---------------------------------------------------------------------------------


def test_params_are_typed_documented_and_copied():
    est = TagCategories(k=5, seed=1)
    assert est.copy({est.k: 7}).getK() == 7 and est.getK() == 5
    assert est.getSeed() == 1 and est.getMaxIter() == 20 and est.getGenericTags() == []
    assert est.getPredictionCol() == "category_id" and est.getDistanceCol() == "distance"
    explained = est.explainParams()
    for s in SETTINGS:
        assert re.search(rf"^{s.param}: ", explained, re.M), s.param
    est.setMinPosts(20).setMaxPosts(2000).setGenericTags(["love"]).setWalk(1)
    assert (est.getMinPosts(), est.getMaxPosts(), est.getGenericTags()) == (20, 2000, ["love"])
    assert est.getWalk() == 1.0 and isinstance(est.getWalk(), float)


def test_params_map_one_to_one_onto_the_config_keys():
    params = {s.param for s in SETTINGS}
    keys = [s.key for s in SETTINGS]
    assert len(params) == len(keys) == len(set(keys))
    job_only = [k for k in config_keys() if k in JOB_ONLY or k.split(".")[0] in JOB_ONLY]
    assert sorted(keys + job_only) == sorted(config_keys())
    cfg = load_config(overrides=["kmeans.k=9", "popularity.min_posts=7", "generic.tags=['x']"])
    est = TagCategories.from_config(cfg, seed=3)
    assert (est.getK(), est.getMinPosts(), est.getGenericTags(), est.getSeed()) == (9, 7, ["x"], 3)
    assert est.config().kmeans.k == 9 and est.config().popularity.min_posts == 7


def test_the_documented_table_is_the_code_s():
    assert settings_table() in (ROOT / "docs" / "python.md").read_text(encoding="utf-8")


def test_bad_params_fail_with_the_param_named():
    with pytest.raises(
        ConfigError, match=r"Param 'k' \(config key 'kmeans.k'\) must be at least 2"
    ):
        TagCategories(k=1)
    with pytest.raises(ConfigError, match="no Param 'kk' \\(did you mean 'k'\\?\\)"):
        TagCategories(kk=3)
    with pytest.raises(TypeError):
        TagCategories(5)  # keyword only, as pyspark.ml's stages
    with pytest.raises(ConfigError, match="features.method"):
        TagCategories().setMethod("lda").config()


def test_fit_takes_a_param_map_and_a_list_of_them(spark):
    df = spark.createDataFrame(TOY_POSTS)
    est = TagCategories(k=2, seed=42)
    model = est.fit(df, {est.k: 3})
    assert model.getK() == 3 and len(model.categories) == 3
    assert [m.getK() for m in est.fit(df, [{est.k: 2}, {est.k: 3}])] == [2, 3]


def test_output_columns_follow_the_params(spark):
    df = spark.createDataFrame(TOY_POSTS).withColumnRenamed("tags", "hashtags")
    model = TagCategories(k=2, seed=42, tagsCol="hashtags", predictionCol="c", distanceCol="d").fit(
        df
    )
    out = model.transform(df)
    assert out.columns == ["id", "hashtags", "c", "d"]
    names = {c.id: c.leading_tags[0] for c in model.categories}
    assert {r["id"]: names[r["c"]] for r in out.collect()} == {
        "0": "food", "1": "food", "2": "food",
        "3": "architecture", "4": "architecture", "5": "architecture",
    }  # fmt: skip


# -- persistence ----------------------------------------------------------------------------


def _pipeline(**params) -> Pipeline:
    return Pipeline(stages=[HashtagExtractor(inputCol="caption"), TagCategories(**params)])


@pytest.mark.parametrize("method", ["spectral", "tfidf"])
def test_a_saved_pipeline_model_transforms_as_the_original(spark, captions, tmp_path, method):
    fitted = _pipeline(k=2, seed=42, method=method, embeddingCol="emb").fit(captions)
    before = fitted.transform(captions)
    for path in (str(tmp_path / "local"), (tmp_path / "as uri").as_uri()):
        fitted.write().overwrite().save(path)
        again = PipelineModel.load(path)
        assertDataFrameEqual(again.transform(captions), before, rtol=1e-9)
        model = again.stages[-1]
        assert isinstance(model, TagCategoriesModel) and model.uid == fitted.stages[-1].uid
        assert model.getMethod() == method and model.getEmbeddingCol() == "emb"
        assert model.summary["counts"]["distinct_tag_sets"] == 4
    assert sorted(c.name for c in model.categories) == ["architecture_italy", "food_italy"]


def test_an_unfitted_pipeline_saves_its_params(tmp_path):
    _pipeline(k=4, minPosts=20, genericTags=["love"]).write().save(str(tmp_path / "p"))
    est = Pipeline.load(str(tmp_path / "p")).getStages()[-1]
    assert (est.getK(), est.getMinPosts(), est.getGenericTags()) == (4, 20, ["love"])
    again = TagCategories.load(str(tmp_path / "p" / "stages" / f"1_{est.uid}"))
    assert again.getK() == 4 and again.uid == est.uid


def test_save_refuses_an_existing_folder_unless_overwrite(spark, tmp_path):
    model = TagCategories(k=2, seed=42).fit(spark.createDataFrame(TOY_POSTS))
    model.save(str(tmp_path / "m"))
    with pytest.raises(OutputError, match="exists already; use write\\(\\).overwrite\\(\\)"):
        model.save(str(tmp_path / "m"))
    model.setK(2).write().overwrite().save(str(tmp_path / "m"))
    assert (tmp_path / "m" / "model.json").is_file() and (tmp_path / "m" / "metadata").is_dir()


def test_the_cli_reads_a_notebook_pipeline_and_the_api_a_cli_model(
    spark, captions, tmp_path, capsys
):
    fitted = _pipeline(k=2, seed=42).fit(captions)
    fitted.save(str(tmp_path / "pm"))
    api = fitted.stages[-1].suggest(["italy"], n=5)
    assert main(["suggest", "--model", str(tmp_path / "pm"), "--tags", "italy", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert [s["tag"] for s in cli["suggestions"]] == [s["tag"] for s in api["suggestions"]]
    assert {s["tag"] for s in api["suggestions"]} == {"food", "architecture"}
    new = write_jsonl(tmp_path / "new.jsonl", [{"id": "n", "caption": "more #food"}])
    assert main(["assign", "--model", str(tmp_path / "pm"), "--input", str(new),
                 "--output", str(tmp_path / "a"), "-q"]) == 0  # fmt: skip

    corpus = write_jsonl(tmp_path / "posts.jsonl", TOY_POSTS)
    assert main(["cluster", "--input", str(corpus), "--output", str(tmp_path / "out"),
                 "--k", "2", "--set", "popularity.min_posts=3", "-q"]) == 0  # fmt: skip
    model = TagCategoriesModel.load(str(tmp_path / "out"))
    assert model.getK() == 2 and model.getMinPosts() == 3 and model.getTagsCol() == "tags"
    out = model.transform(spark.createDataFrame(TOY_POSTS)).select("id", "category_id")
    by_id = {r["id"]: r["category_id"] for r in out.collect()}
    cli_rows = spark.read.parquet(str(tmp_path / "out" / "assignments")).select("id", "category_id")
    assert by_id == {r["id"]: r["category_id"] for r in cli_rows.collect()}


# -- HashtagExtractor and CategoryEvaluator -------------------------------------------------


def test_the_extractor_follows_the_job_s_caption_rules(spark, tmp_path):
    captions = ["Sunset at the #Beach! #beach#sea", "#Café au #lait", "no tags", None,
                "＃full width #a_b #123 #x-y"]  # fmt: skip
    df = spark.createDataFrame(
        [(str(i), c) for i, c in enumerate(captions)], "id string, caption string"
    )
    extractor = HashtagExtractor(inputCol="caption", outputCol="t")
    got = {r["id"]: r["t"] for r in extractor.transform(df).collect()}
    job = df.select("id", F.lit(None).cast("array<string>").alias("tags"),
                    F.lit(None).cast("string").alias("tag_text"), "caption")  # fmt: skip
    expected = {r["id"]: r["tags"] for r in with_post_tags(job, 30).collect()}
    assert got == expected
    assert got["0"] == ["beach", "sea"] and got["2"] == [] and got["3"] == []
    extractor.save(str(tmp_path / "x"))
    again = HashtagExtractor.load(str(tmp_path / "x"))
    assert (again.getInputCol(), again.getOutputCol()) == ("caption", "t")


def test_the_evaluator_scores_labels_and_silhouette(spark, captions):
    fitted = _pipeline(k=2, seed=42, embeddingCol="embedding").fit(captions)
    out = fitted.transform(captions)
    assert CategoryEvaluator().evaluate(out) == pytest.approx(1.0)
    assert CategoryEvaluator(metricName="ari").evaluate(out) == pytest.approx(1.0)
    swapped = out.withColumn("label", F.when(F.col("id").isin("2", "5"), "x").otherwise("y"))
    assert CategoryEvaluator().evaluate(swapped) == pytest.approx(0.0, abs=1e-12)
    silhouette = CategoryEvaluator(metricName="silhouette").evaluate(out)
    assert 0.5 < silhouette <= 1.0
    with pytest.raises(ConfigError, match="metricName must be one of"):
        CategoryEvaluator(metricName="f1")


@needs_stackexchange
def test_train_validation_split_picks_k_on_stack_exchange(spark):
    posts = spark.read.json(str(SHARED_DATA / "stackexchange_5sites.jsonl")).cache()
    est = TagCategories(seed=1)
    grid = ParamGridBuilder().addGrid(est.k, [3, 5, 8]).build()
    tvs = TrainValidationSplit(
        estimator=est, estimatorParamMaps=grid, evaluator=CategoryEvaluator(), seed=1
    )
    model = tvs.fit(posts)
    scores = [round(s, 3) for s in model.validationMetrics]
    assert scores == [0.794, 0.885, 0.832]  # docs/python.md's figures: validation NMI by k
    assert model.bestModel.getK() == 5


def test_the_readme_notebook_example_runs(spark, tmp_path):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Use from Python / a notebook") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)[1]
    # Spark resolves a relative path from its JVM's folder: the example's goes to tmp_path
    code = code.replace('"models/sample"', repr(str(tmp_path / "models" / "sample")))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 (the README's own code)
    assert namespace["again"].getK() == 5
    assert namespace["tags"]["suggestions"], namespace["tags"]
