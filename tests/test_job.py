"""The whole job through the CLI, in-process: categories, outputs, errors, determinism."""

from __future__ import annotations

import gzip
import json
import math
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pyspark.ml import PipelineModel

from tagspark import write
from tagspark.cli import main, sample_corpus
from tests.conftest import (
    OUTPUT_LAYOUT,
    SHARED_DATA,
    TOY_POSTS,
    needs_stackexchange,
    write_jsonl,
)


def _cluster(inp: Path, out: Path, *extra: str) -> int:
    return main(["cluster", "--input", str(inp), "--output", str(out), "-q", *extra])


def _categories(out: Path) -> list[dict]:
    return json.loads((out / "categories.json").read_text())


def _assignments(spark, out: Path) -> dict[str, int]:
    rows = spark.read.parquet(str(out / "assignments")).collect()
    return {r["id"]: r["category_id"] for r in rows}


@pytest.fixture(scope="module")
def toy_run(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toy")
    inp = write_jsonl(tmp / "toy.jsonl", TOY_POSTS)
    out = tmp / "out"
    assert _cluster(inp, out, "--k", "2") == 0
    return inp, out


def test_article_example_two_categories(spark, toy_run):
    _, out = toy_run
    cats = {c["leading_tags"][0]: c for c in _categories(out)}
    assert set(cats) == {"food", "architecture"}
    assigned = _assignments(spark, out)
    food, arch = cats["food"]["id"], cats["architecture"]["id"]
    assert assigned == {"0": food, "1": food, "2": food, "3": arch, "4": arch, "5": arch}
    assert cats["food"]["name"] == "food_italy"
    assert cats["architecture"]["name"] == "architecture_italy"
    assert cats["food"]["size"] == cats["architecture"]["size"] == 3
    # idf(food) = ln(7/4), idf(italy) = ln(7/5); post {italy, food} normalised
    f, i = math.log(7 / 4), math.log(7 / 5)
    n = math.hypot(f, i)
    expected = {"food": (2 * f / n + 1) / 3, "italy": 2 * i / n / 3}
    got = {t["tag"]: t["weight"] for t in cats["food"]["tags"]}
    assert got == pytest.approx(expected, rel=1e-9)
    assert [t["posts"] for t in cats["food"]["tags"]] == [3, 2]


def test_tag_weights_equal_centroid_coordinates_without_collisions(toy_run, tmp_path):
    inp, _ = toy_run
    out = tmp_path / "tfidf"
    assert _cluster(inp, out, "--k", "2", "--set", 'features.method="tfidf"') == 0
    model = PipelineModel.load(str(out / "model" / "pipeline"))
    hashing, kmeans = model.stages[0], model.stages[-1]
    centres = kmeans.clusterCenters()
    for c in _categories(out):
        for t in c["tags"]:
            assert centres[c["id"]][hashing.indexOf(t["tag"])] == pytest.approx(t["weight"])


def _reference_weights(posts: list[dict], assigned: dict[str, int], min_df: int = 2):
    """Per-category tag weights computed in plain Python from the assignments."""
    df = defaultdict(int)
    for p in posts:
        for t in set(p["tags"]):
            df[t] += 1
    n = len(posts)
    idf = {t: math.log((n + 1) / (d + 1)) if d >= min_df else 0.0 for t, d in df.items()}
    sums, sizes = defaultdict(float), defaultdict(int)
    for p in posts:
        c = assigned[p["id"]]
        sizes[c] += 1
        norm = math.sqrt(sum(idf[t] ** 2 for t in set(p["tags"])))
        for t in set(p["tags"]):
            sums[c, t] += idf[t] / norm if norm else 0.0
    return {(c, t): s / sizes[c] for (c, t), s in sums.items()}


def test_names_stay_exact_when_every_tag_shares_a_bucket(spark, tmp_path):
    posts = TOY_POSTS + [
        {"id": "6", "tags": ["sushi", "japan"]},
        {"id": "7", "tags": ["japan", "sushi"]},
        {"id": "8", "tags": ["sushi"]},
    ]
    inp = write_jsonl(tmp_path / "p.jsonl", posts)
    out = tmp_path / "out"
    flags = ["--set", 'features.method="tfidf"', "--set", "features.num_features=2"]
    assert _cluster(inp, out, "--k", "3", *flags) == 0
    assigned = _assignments(spark, out)
    reference = _reference_weights(posts, assigned)
    real = {t for p in posts for t in p["tags"]}
    for c in _categories(out):
        assert set(c["leading_tags"]) <= real
        assert c["name"] == "_".join(c["leading_tags"])
        for t in c["tags"]:
            assert t["weight"] == pytest.approx(reference[c["id"], t["tag"]])


def test_output_layout_and_schemas(spark, toy_run):
    inp, out = toy_run
    assert sorted(p.name for p in out.iterdir()) == OUTPUT_LAYOUT
    assert spark.read.parquet(str(out / "assignments")).schema.simpleString() == (
        "struct<id:string,category_id:int,distance:double>"
    )
    assert spark.read.parquet(str(out / "categories.parquet")).schema.simpleString() == (
        "struct<id:int,name:string,leading_tags:array<string>,size:bigint,"
        "tags:array<struct<tag:string,weight:double,posts:bigint,popularity:bigint,"
        "popularity_source:string,band:string,specificity:double,recommended:boolean>>>"
    )
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["counts"] == {
        "read": 6,
        "rejected": 0,
        "no_tags": 0,
        "kept": 6,
        "truncated": 0,
        "distinct_tag_sets": 4,
        "mixed": 0,
        "placed_by_tags": 0,
    }
    assert meta["features"] == {
        "method": "spectral",
        "vocabulary": 3,
        "feature_tags": 3,
        "tag_matrix": "driver",
        # the three diagonal entries, italy-food and italy-architecture both ways
        "tag_matrix_entries": 7,
        "distinct_tag_sets": 4,
        "dims": 3,
        "power_iterations": 50,
        "tags_cut_off": 0,
        "fit_sets": 4,
    }
    assert meta["generic_tags"] == [] and meta["choose_k"] is None
    assert meta["seed"] == 42 and meta["config"]["kmeans"]["k"] == 2
    assert set(meta["timings_seconds"]) == {"read", "fit", "name", "neighbours", "write", "total"}
    # the cost by hand: with 3 dimensions for 3 tags the embedding is a rotation of each
    # set's x / sqrt(column sum of x), unit-normalised; k-means' cost is the weighted squared
    # distance of the points to their centres, the same for both categories
    f, i = math.log(7 / 4), math.log(7 / 5)
    a, b = f / math.hypot(f, i), i / math.hypot(f, i)  # post {food, italy}'s x
    e = (a / math.sqrt(2 * a + 1), b / math.sqrt(4 * b))  # columns: food 2a + 1, italy 4b
    e = (e[0] / math.hypot(*e), e[1] / math.hypot(*e))
    centre = ((2 * e[0] + 1) / 3, 2 * e[1] / 3)  # two posts at e, one at (1, 0)
    one = 2 * math.dist(e, centre) ** 2 + math.dist((1, 0), centre) ** 2
    assert meta["kmeans"]["cost"] == pytest.approx(2 * one, rel=1e-5)
    assert meta["input"] == {"paths": [str(inp)], "format": "jsonl", "files": 1, "partitions": 1}
    summary = (out / "summary.md").read_text()
    # weights by hand: food (2 a + 1) / 3 = 0.905, italy 2 b / 3 = 0.344
    assert (round((2 * a + 1) / 3, 3), round(2 * b / 3, 3)) == (0.905, 0.344)
    for name, lead in (("food_italy", "#food"), ("architecture_italy", "#architecture")):
        row = rf"\| [01] \| {name} \| 3 \| 50.0% \| {lead} \(0.905\), #italy \(0.344\) \|"
        assert re.search(row, summary), summary
    assert "| kept | 6 |" in summary


def test_distances_are_to_the_category_centre(spark, toy_run):
    _, out = toy_run
    rows = {r["id"]: r["distance"] for r in spark.read.parquet(str(out / "assignments")).collect()}
    # post 2 = {food}: x = (food 1); centre = (food w_f, italy w_i)
    cats = {c["leading_tags"][0]: c for c in _categories(out)}
    w = {t["tag"]: t["weight"] for t in cats["food"]["tags"]}
    assert rows["2"] == pytest.approx(math.hypot(1 - w["food"], w["italy"]))
    assert rows["0"] == pytest.approx(rows["1"])


def test_same_seed_same_output(spark, toy_run, tmp_path):
    inp, out = toy_run
    again = tmp_path / "again"
    assert _cluster(inp, again, "--k", "2") == 0
    assert _categories(again) == _categories(out)
    assert _assignments(spark, again) == _assignments(spark, out)


def test_existing_output_is_refused_then_replaced_with_overwrite(toy_run, tmp_path, capsys):
    inp, _ = toy_run
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    assert _cluster(inp, out, "--k", "2") == 1
    assert capsys.readouterr().err == (
        f"Error: output folder '{out}' already exists; choose another or pass --overwrite\n"
    )
    assert (out / "old.txt").read_text() == "keep me"
    assert _cluster(inp, out, "--k", "2", "--overwrite") == 0
    assert not (out / "old.txt").exists() and (out / "categories.json").is_file()


def test_failed_run_leaves_previous_output_intact(toy_run, tmp_path, monkeypatch):
    inp, _ = toy_run
    out = tmp_path / "out"
    assert _cluster(inp, out, "--k", "2") == 0
    before = (out / "categories.json").read_text()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(write, "write_categories", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _cluster(inp, out, "--k", "2", "--overwrite", "--seed", "7")
    assert (out / "categories.json").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["out"]  # no staging folder left behind


def test_rejected_records_are_written_with_reasons(spark, tmp_path):
    inp = tmp_path / "p.jsonl"
    rows = "".join(json.dumps(p) + "\n" for p in TOY_POSTS)
    inp.write_text(rows + "{oops\n" + '{"tags": [1]}\n')
    out = tmp_path / "out"
    assert _cluster(inp, out, "--k", "2") == 0
    rejected = spark.read.json(str(out / "rejected")).orderBy("record").collect()
    assert [(r["source"], r["record"], r["reason"], r["raw"]) for r in rejected] == [
        ("p.jsonl", 7, "malformed JSON", "{oops"),
        ("p.jsonl", 8, "field 'tags' is not a string or a list of strings", '{"tags": [1]}'),
    ]
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["counts"]["rejected"] == 2
    assert meta["rejected_by_reason"] == {
        "field 'tags' is not a string or a list of strings": 1,
        "malformed JSON": 1,
    }
    assert "- malformed JSON: 1" in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        (None, ["--input", "{tmp}/nope.jsonl"], "input path '{tmp}/nope.jsonl' does not exist"),
        (
            "empty",
            ["--input", "{tmp}/p.jsonl"],
            "no post with tags in the input: 2 records read, 1 without tags, "
            "1 rejected (malformed JSON: 1)",
        ),
        (
            "toy",
            ["--input", "{tmp}/p.jsonl", "--format", "xml"],
            "config key 'input.format' must be one of auto, jsonl, csv, parquet, text, got 'xml'",
        ),
        (
            "toy",
            ["--input", "{tmp}/p.jsonl", "--k", "5"],
            "k=5 is more than the 4 distinct tag sets in the corpus; choose k between 2 and 4",
        ),
        (
            "toy",
            ["--input", "{tmp}/p.jsonl", "--k", "1"],
            "config key 'kmeans.k' must be at least 2, got 1",
        ),
        (
            "toy",
            ["--input", "{tmp}/p.jsonl", "--output", "/sys/tagspark-out"],
            (  # root is refused by the kernel, other users by permissions
                "output '/sys/tagspark-out' cannot be written: operation not permitted in '/sys'",
                "output '/sys/tagspark-out' cannot be written: permission denied in '/sys'",
            ),
        ),
        (
            "toy",
            ["--input", "{tmp}/p.jsonl", "--output", "{tmp}/p.jsonl/out"],
            "the parent folder of output '{tmp}/p.jsonl/out' does not exist",
        ),
        (
            "toy",
            ["--input", "{tmp}", "--output", "{tmp}/out"],
            "output '{tmp}/out' overlaps the input '{tmp}'; write the output elsewhere",
        ),
    ],
)
def test_user_errors_are_one_line(spark, tmp_path, capsys, setup, args, message):
    if setup == "toy":
        write_jsonl(tmp_path / "p.jsonl", TOY_POSTS)
    elif setup == "empty":
        (tmp_path / "p.jsonl").write_text('{"tags": []}\n{oops\n')
    argv = ["cluster", "-q"] + [a.format(tmp=tmp_path) for a in args]
    if "--output" not in argv:
        argv += ["--output", str(tmp_path.parent / f"{tmp_path.name}-out")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    allowed = message if isinstance(message, tuple) else (message,)
    assert err in [f"Error: {m.format(tmp=tmp_path)}\n" for m in allowed]


def test_label_field_scores_the_categories(tmp_path):
    labelled = [{**p, "label": "food" if int(p["id"]) < 3 else "arch"} for p in TOY_POSTS]
    inp = write_jsonl(tmp_path / "p.jsonl", labelled)
    out = tmp_path / "out"
    assert _cluster(inp, out, "--k", "2", "--label-field", "label") == 0
    ev = json.loads((out / "evaluation.json").read_text())
    assert (ev["posts"], ev["nmi"], ev["ari"], ev["purity"], ev["largest_share"]) == (
        6,
        1.0,
        1.0,
        1.0,
        0.5,
    )
    assert {c["name"]: c["top_labels"] for c in ev["categories"]} == {
        "food_italy": [{"label": "food", "posts": 3}],
        "architecture_italy": [{"label": "arch", "posts": 3}],
    }
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["evaluation"] == {k: v for k, v in ev.items() if k != "categories"}
    assert "NMI 1.000, ARI 1.000, purity 1.000" in (out / "summary.md").read_text()


@pytest.mark.slow
@needs_stackexchange
def test_stackexchange_corpus(spark, tmp_path):
    """The quality bar of the default method on real tags (issue #4)."""
    out = tmp_path / "se"
    corpus = SHARED_DATA / "stackexchange_5sites.jsonl"
    assert _cluster(corpus, out, "--k", "5", "--label-field", "label") == 0
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["counts"]["read"] == meta["counts"]["kept"] == 6888
    cats = _categories(out)
    assert sum(c["size"] for c in cats) == 6888
    assert spark.read.parquet(str(out / "assignments")).count() == 6888
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["posts"] == 6888
    assert ev["nmi"] >= 0.88
    assert ev["largest_share"] <= 0.40
    assert ev["largest_share"] == pytest.approx(max(c["size"] for c in cats) / 6888)
    sites = defaultdict(set)
    for line in corpus.read_text().splitlines():
        record = json.loads(line)
        for tag in record["tags"]:
            sites[tag.lower()].add(record["label"])
    placed = [c for c in cats if c["id"] != -1]
    assert len(placed) == 5
    # ten tags seen only alone (#untagged #inebriation #keurig #liver ...) are cut off from
    # the tag graph: no centre of their own, so coffee (225 posts) gets one; their 30 posts
    # and the 32 with no tag in 2 posts are in mixed
    assert meta["features"]["tags_cut_off"] == 10
    assert {c["id"]: c["size"] for c in cats}[-1] == 62
    assert min(c["size"] for c in placed) >= 0.03 * 6888
    for c in placed:  # every category's three leading tags share a site
        assert set.intersection(*(sites[t] for t in c["leading_tags"][:3])), c["name"]


def test_many_part_files_are_read_in_parallel_and_written_in_sized_files(spark, tmp_path):
    inp = tmp_path / "parts"
    inp.mkdir()
    themes = [["food", "pasta", "pizza"], ["architecture", "facade", "tower"]]
    for part in range(200):
        rows = [
            {"id": f"{part}-{i}", "tags": themes[(part + i) % 2][: 1 + i % 3]} for i in range(13)
        ]
        write_jsonl(inp / f"part-{part:05d}.jsonl", rows)
    out = tmp_path / "out"
    args = ["--k", "2", "--set", "output.assignment_rows_per_file=1000"]
    assert _cluster(inp, out, *args) == 0
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["counts"]["kept"] == 2600
    assert meta["input"]["files"] == 200
    assert 2 <= meta["input"]["partitions"] <= 16  # parallel, but not a task per tiny file
    parts = sorted((out / "assignments").glob("part-*.parquet"))
    assert len(parts) == 3  # ceil(2600 / 1000)
    assert spark.read.parquet(str(out / "assignments")).count() == 2600
    assert {c["leading_tags"][0] for c in _categories(out)} == {"food", "architecture"}


def test_demo_runs_on_the_bundled_corpus_and_replaces_only_its_own_output(tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    assert main(["demo", "-q", "--output", str(other)]) == 1
    assert capsys.readouterr().err == (
        f"Error: '{other}' exists and is not a tagspark output; choose another --output\n"
    )
    out = tmp_path / "demo"
    args = ["demo", "-q", "--output", str(out), "--label-field", "label"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("5 categories from 3,000 posts (0 records rejected")
    assert printed.endswith(f"Output: {out}\n")
    # the sample plants five themes (its label field): each category is one whole theme,
    # as large as the theme counted here from the file
    with gzip.open(sample_corpus(), "rt") as f:
        themes = Counter(json.loads(line)["label"] for line in f)
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["purity"] == 1.0 and evaluation["nmi"] == pytest.approx(1.0)
    assert sorted(c["size"] for c in _categories(out)) == sorted(themes.values())
    leading = {c["leading_tags"][0] for c in _categories(out)}
    assert leading == {"food", "travel", "dog", "architecture", "fitness"}
    assert main(args) == 0  # a second run replaces the first
