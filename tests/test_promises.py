"""What the README promises and no other test held: cosine distances, init_mode random, the
fit_sets sample, posts with no vocabulary tag, the tag cap's count, CSV delimiters, invalid
UTF-8 in CSV and text, a Parquet tags column of the wrong type, and choose-k without
matplotlib."""

from __future__ import annotations

import builtins
import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyspark.testing import assertDataFrameEqual

from tagspark import choose_k
from tagspark.cli import main
from tagspark.config import InputConfig
from tagspark.errors import InputError
from tagspark.posts import filter_rejected
from tests.conftest import TOY_POSTS, write_jsonl
from tests.test_read import _posts, _read


def _cluster(inp: Path, out: Path, *extra: str) -> int:
    return main(["cluster", "--input", str(inp), "--output", str(out), "-q", *extra])


def _assignments(out: Path) -> dict[str, tuple[int, float]]:
    return {
        r["id"]: (r["category_id"], r["distance"])
        for r in pq.read_table(out / "assignments").to_pylist()
    }


def _leading(out: Path) -> dict[int, str]:
    return {
        c["id"]: c["leading_tags"][0] for c in json.loads((out / "categories.json").read_text())
    }


def test_cosine_distances_by_hand(spark, tmp_path):
    inp = write_jsonl(tmp_path / "toy.jsonl", TOY_POSTS)
    out = tmp_path / "out"
    assert _cluster(inp, out, "--k", "2", "--set", 'kmeans.distance_measure="cosine"') == 0
    # by hand: idf = log(7 / (df + 1)); x = a post's idf over its norm; a category's centre
    # is the mean x of its posts; distance = 1 - cos(x, centre)
    idf = {"food": math.log(7 / 4), "italy": math.log(7 / 5), "architecture": math.log(7 / 4)}

    def x(tags):
        v = np.array([idf[t] if t in tags else 0.0 for t in idf])
        return v / np.linalg.norm(v)

    posts = {p["id"]: x(p["tags"]) for p in TOY_POSTS}
    food = np.mean([posts[i] for i in "012"], axis=0)
    arch = np.mean([posts[i] for i in "345"], axis=0)
    expected = {
        i: 1 - posts[i] @ c / np.linalg.norm(c)
        for ids, c in (("012", food), ("345", arch))
        for i in ids
    }
    got = _assignments(out)
    names = _leading(out)
    assert {i: names[c] for i, (c, _) in got.items()} == {
        "0": "food", "1": "food", "2": "food",
        "3": "architecture", "4": "architecture", "5": "architecture",
    }  # fmt: skip
    assert {i: d for i, (_, d) in got.items()} == pytest.approx(expected, abs=1e-9)
    # {food} = (1, 0, 0) against its centre mean((.857, .515, 0) x 2, (1, 0, 0)): 1 - 0.9349
    assert expected["2"] == pytest.approx(0.0651, abs=1e-4)
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["config"]["kmeans"]["distance_measure"] == "cosine"


def test_init_mode_random_finds_the_articles_two_categories(spark, tmp_path):
    inp = write_jsonl(tmp_path / "toy.jsonl", TOY_POSTS)
    out = tmp_path / "out"
    assert _cluster(inp, out, "--k", "2", "--set", 'kmeans.init_mode="random"') == 0
    names = _leading(out)
    assert {i: names[c] for i, (c, _) in _assignments(out).items()} == {
        "0": "food", "1": "food", "2": "food",
        "3": "architecture", "4": "architecture", "5": "architecture",
    }  # fmt: skip


def _many_sets(seed: int = 0) -> list[dict]:
    """Four themes of 40 tags, 3-6 tags a post: about 2,000 distinct sets in 2,400 posts;
    plus 12 posts whose every tag occurs once (no vocabulary tag)."""
    rng = np.random.default_rng(seed)
    posts = []
    for theme in "abcd":
        tags = [f"{theme}{i}" for i in range(40)]
        for n in range(600):
            chosen = rng.choice(tags, size=int(rng.integers(3, 7)), replace=False)
            posts.append({"id": f"{theme}-{n}", "tags": list(chosen), "label": theme})
    posts += [{"id": f"lone-{i}", "tags": [f"lone{i}", f"alone{i}"]} for i in range(12)]
    return posts


@pytest.fixture(scope="module")
def sampled(spark, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sampled")
    inp = write_jsonl(tmp / "posts.jsonl", _many_sets())
    out = tmp / "out"
    code = _cluster(inp, out, "--k", "4", "--set", "kmeans.fit_sets=1000", "--label-field", "label")
    assert code == 0
    return out


def test_kmeans_fits_on_a_sample_of_the_sets_and_places_them_all(sampled):
    meta = json.loads((sampled / "model" / "metadata.json").read_text())
    assert meta["counts"]["distinct_tag_sets"] > 1000  # so the sample branch ran
    assert meta["features"]["fit_sets"] == 1000
    assert meta["evaluation"]["nmi"] > 0.95  # every set placed, by its nearest centre
    assigned = _assignments(sampled)
    assert len(assigned) == 2412


def test_posts_with_no_vocabulary_tag_go_to_mixed(sampled):
    assigned = _assignments(sampled)
    lone = {i: c for i, (c, _) in assigned.items() if i.startswith("lone-")}
    assert lone == {f"lone-{i}": -1 for i in range(12)}
    meta = json.loads((sampled / "model" / "metadata.json").read_text())
    assert meta["counts"]["mixed"] == 12
    mixed = [c for c in json.loads((sampled / "categories.json").read_text()) if c["id"] == -1]
    assert [(c["name"], c["size"]) for c in mixed] == [("mixed", 12)]


def test_the_tag_cap_counts_truncated_posts(spark, tmp_path):
    long_post = {"id": "long", "tags": [f"t{i}" for i in range(35)]}
    inp = write_jsonl(tmp_path / "p.jsonl", [*TOY_POSTS, long_post])
    numbered = _read(spark, [inp], "auto", max_tags=30)
    kept = {r["id"]: r["tags"] for r in _posts(numbered).collect()}
    assert kept["long"] == [f"t{i}" for i in range(30)]
    out = tmp_path / "out"
    assert _cluster(inp, out, "--k", "2") == 0
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["counts"]["truncated"] == 1 and meta["counts"]["kept"] == 7
    assert "| over the tag cap (kept, truncated) | 1 |" in (out / "summary.md").read_text()


def test_csv_delimiter_and_invalid_utf8_in_csv_and_text(spark, tmp_path):
    csv = tmp_path / "posts.csv"
    csv.write_bytes(b'id;tags\n1;"#a #b"\n2;"caf\xe9 #x"\n3;c,d\n')
    numbered = _read(spark, [csv], "auto", cfg=InputConfig(csv_delimiter=";"))
    assertDataFrameEqual(
        _posts(numbered),
        spark.createDataFrame(
            [("1", ["a", "b"]), ("3", ["c", "d"])], "id string, tags array<string>"
        ),
    )
    assertDataFrameEqual(
        filter_rejected(numbered).select("record", "reason"),
        spark.createDataFrame([(2, "invalid UTF-8")], "record long, reason string"),
    )
    text = tmp_path / "posts.txt"
    text.write_bytes(b"#a #b\n#caf\xe9\n#c\n")
    numbered = _read(spark, [text], "auto")
    assert sorted(r["tags"] for r in _posts(numbered).collect()) == [["a", "b"], ["c"]]
    assertDataFrameEqual(
        filter_rejected(numbered).select("record", "reason"),
        spark.createDataFrame([(2, "invalid UTF-8")], "record long, reason string"),
    )


def test_a_parquet_tags_column_of_the_wrong_type_is_refused(spark, tmp_path):
    path = str(tmp_path / "posts.parquet")
    spark.createDataFrame([("1", [1, 2])], "id string, tags array<int>").write.parquet(path)
    with pytest.raises(InputError, match="'tags' is array<int>; expected a string or an array"):
        _read(spark, [path], "auto")


def test_choose_k_without_matplotlib_writes_the_table_and_says_why(tmp_path, monkeypatch, caplog):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)

    class LocalFiles:
        def write_text(self, uri, text):
            Path(uri).write_text(text)

    curve = {"curve": [{"k": 2, "cost": 3.0, "silhouette": 0.5}], "chosen_k": 2, "sample_posts": 9}
    with caplog.at_level("WARNING"):
        written = choose_k.write_curve(curve, LocalFiles(), str(tmp_path))
    assert written == [str(tmp_path / "choose_k.csv")]
    assert (tmp_path / "choose_k.csv").read_text().splitlines() == [
        "k,cost,silhouette",
        "2,3.0,0.5",
    ]
    assert not (tmp_path / "choose_k.png").exists()
    assert "matplotlib is not installed" in caplog.text
