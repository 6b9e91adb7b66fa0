"""Suggestions that fit the post: the tags that go with its own tags (co-occurrence counted
by Spark, smoothed by a two-step walk), bounded per tag, with their reasons, and one ranking
for one post, a corpus (``suggest --input``) and the Python API."""

from __future__ import annotations

import bisect
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagspark import neighbours as nb
from tagspark import suggest as sg
from tagspark.cli import main
from tagspark.codec import ranks_within
from tagspark.estimator import TagCategoriesModel
from tagspark.model import TagModel
from tagspark.naming import Category, category_names
from tagspark.neighbours import Neighbours, cooccurrence, walked
from tagspark.vocabulary import Vocabulary
from tests.conftest import write_jsonl


def _cafe_corpus() -> list[dict]:
    """A bakery corpus where #espresso is a minor tag: at k=2 it sits in the category led by
    #bread, but it goes with #coffee and #grinder."""
    posts = []
    for i in range(40):
        posts.append({"id": f"b{i}", "tags": ["bread", "sourdough", "baking"][: 1 + i % 3]})
    for i in range(12):
        posts.append({"id": f"e{i}", "tags": ["bread", "espresso"] if i < 4 else ["bread"]})
    for i in range(6):
        posts.append({"id": f"c{i}", "tags": ["espresso", "coffee", "grinder"][: 2 + i % 2]})
    for i in range(30):
        posts.append({"id": f"s{i}", "tags": ["sailing", "yacht", "harbour"][: 1 + i % 3]})
    # #ristretto is seen once, too rare for the vocabulary: it goes with #grinder
    posts.append({"id": "r0", "tags": ["grinder", "ristretto"]})
    return posts


@pytest.fixture(scope="module")
def cafe(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cafe")
    inp = write_jsonl(tmp / "cafe.jsonl", _cafe_corpus())
    out = tmp / "out"
    assert main(["cluster", "--input", str(inp), "--output", str(out), "--k", "2",
                 "--seed", "1", "-q", "--set", "suggest.neighbours=3"]) == 0  # fmt: skip
    return inp, out


def test_espresso_gets_coffee_and_grinder_before_its_categorys_bread(cafe):
    _, out = cafe
    model = TagModel.load(str(out / "model"))
    espresso = model.categories[[c.id for c in model.categories].index(
        model.stats.top_category[model.position["espresso"]])]  # fmt: skip
    assert espresso.leading_tags[0] == "bread"  # its category is the bakery
    result = sg.suggest(model, ["espresso"], n=5)
    tags = [s["tag"] for s in result["suggestions"]]
    assert tags[:2] == ["coffee", "grinder"] or tags[:2] == ["grinder", "coffee"]
    assert tags.index("coffee") < tags.index("bread") if "bread" in tags else True
    coffee = result["suggestions"][tags.index("coffee")]
    # #coffee is on all 6 cafe posts, #espresso on those 6 and 4 bakery ones
    assert coffee["goes_with"] == [{"tag": "espresso", "posts": 6}]
    assert coffee["source"] == "neighbours"
    assert set(coffee) == set(sg.SUGGESTION_FIELDS.names)


def test_no_tag_keeps_more_than_suggest_neighbours_companions(cafe):
    _, out = cafe
    model = TagModel.load(str(out / "model"))
    counts = np.diff(model.neighbours.offsets)
    assert counts.max() == 3  # suggest.neighbours=3, and #bread has more companions
    table = pq.read_table(out / "model" / "neighbours.parquet")
    per_tag = table.group_by("tag_index").aggregate([("neighbour_index", "count")])
    assert max(per_tag.column("neighbour_index_count").to_pylist()) == 3
    index = table.column("tag_index").to_pylist()
    assert index == sorted(index)  # a reader of a few tags reads their row groups only


def test_suggest_max_tags_gives_companions_to_the_most_frequent_tags_only(cafe, tmp_path):
    inp, out = cafe
    everyone = TagModel.load(str(out / "model"))
    assert set(everyone.neighbours.tag) == set(range(len(everyone.tags)))  # 9 < 100,000
    capped = tmp_path / "capped"
    assert main(["cluster", "--input", str(inp), "--output", str(capped), "--k", "2", "--seed",
                 "1", "-q", "--set", "suggest.max_tags=3"]) == 0  # fmt: skip
    model = TagModel.load(str(capped / "model"))
    given = sorted(set(pq.read_table(capped / "model" / "neighbours.parquet")
                       .column("tag_index").to_pylist()))  # fmt: skip
    # the 3 most frequent are #bread, #sailing and #sourdough; companions are among them
    # only, and #sailing goes with neither
    assert [model.tags[i] for i in given] == ["bread", "sourdough"]
    assert [model.tags[i] for i in model.neighbours.neighbour] == ["sourdough", "bread"]
    # #espresso has no companions now: it is a rare tag, and #bread, the only
    # companion-bearing tag of its posts (on 4 of its 10: its cafe posts have none),
    # anchors it
    at = model.rare.find(pa.array(["espresso"]))[0]
    assert model.tags[model.rare.anchor[at]] == "bread"
    assert (model.rare.posts[at], model.rare.df[at]) == (4, 10)
    first = sg.suggest(model, ["espresso"], n=3)["suggestions"][0]
    assert first["tag"] == "bread" and first["goes_with"] == [{"tag": "espresso", "posts": 4}]
    assert first["score"] == pytest.approx(0.5 * 0.4)  # (1 - walk) * P(bread | espresso)


def test_cooccurrence_counts_posts_with_both_tags_by_hand(spark):
    from tagspark.codec import pack_sets

    # sets {0,1} x3 posts, {0,2} x1, {1,2,3} x2; tag 3 is left out of the features
    sets = [([0, 1], 3), ([0, 2], 1), ([1, 2, 3], 2)]
    packed = [
        pack_sets(np.array(s), np.zeros(len(s), dtype=np.int64), 1)[0].as_py() for s, _ in sets
    ]
    df = spark.createDataFrame(
        [(p, w) for p, (_, w) in zip(packed, sets, strict=True)], "idx binary, weight long"
    )
    column = np.array([0, 1, 2, -1])
    tag, neighbour, posts = cooccurrence(df, column, keep=5)
    found = sorted(zip(tag.tolist(), neighbour.tolist(), posts.tolist(), strict=True))
    assert found == [(0, 1, 3), (0, 2, 1), (1, 0, 3), (1, 2, 2), (2, 0, 1), (2, 1, 2)]
    tag, _, posts = cooccurrence(df, column, keep=1)
    assert sorted(zip(tag.tolist(), posts.tolist(), strict=True)) == [(0, 3), (1, 3), (2, 2)]


def test_a_rare_tags_anchor_is_the_head_of_most_of_its_posts_by_hand(spark):
    # vocabulary 0 #a, 1 #b (companions), 2 #c (rare: past suggest.max_tags), 3 #g (generic)
    packed = [[0, 2], [1, 2], [1, 2, 3], [], [1], [3]]
    unknown = [["x"], [], [], ["y"], ["x"], ["z"]]
    rows = [(np.array(p, "<i4").tobytes(), u) for p, u in zip(packed, unknown, strict=True)]
    looked_up = spark.createDataFrame(rows, "idx binary, unknown array<string>").repartition(2)
    given = np.array([True, True, False, False])
    rare = np.array([False, False, True, False])
    vocabulary = Vocabulary(("a", "b", "c", "g"), np.array([9, 5, 3, 2]), np.ones(4), (), 3)
    found = nb.anchors(looked_up, given, rare, vocabulary).table()
    # #c is on posts with #a once and #b twice (its df, 3, from the vocabulary); #x is
    # outside it, on posts led by #a and by #b: a tie to the more frequent #a; #y's and #z's
    # posts have no companion-bearing tag
    assert found.to_pylist() == [
        {"tag": "c", "anchor_index": 1, "posts": 2, "df": 3},
        {"tag": "x", "anchor_index": 0, "posts": 1, "df": 2},
    ]
    # with features.min_doc_freq=2 a tag outside the vocabulary is on one post, or on every
    # post (#e, idf 0: not rare but everywhere), and its row needs no counting
    unknown = [["u1", "e"], ["e"], ["u2", "e"], ["u3", "e"], ["e"], ["e"]]
    rows = [(np.array(p, "<i4").tobytes(), u) for p, u in zip(packed, unknown, strict=True)]
    looked_up = spark.createDataFrame(rows, "idx binary, unknown array<string>")
    vocabulary = Vocabulary(("a", "b", "c", "g"), np.array([9, 5, 3, 2]), np.ones(4), ("e",), 2)
    found = nb.anchors(looked_up, given, rare, vocabulary).table()
    assert found.to_pylist() == [
        {"tag": "c", "anchor_index": 1, "posts": 2, "df": 3},
        {"tag": "u1", "anchor_index": 0, "posts": 1, "df": 1},
        {"tag": "u2", "anchor_index": 1, "posts": 1, "df": 1},
    ]
    # no rare vocabulary tag: only the posts with tags outside the vocabulary are passed on
    found = nb.anchors(looked_up, given, np.zeros(4, dtype=bool), vocabulary).table()
    assert [r["tag"] for r in found.to_pylist()] == ["u1", "u2"]


def test_the_walk_adds_what_a_tags_companions_go_with():
    # a goes with b (2 of a's 4 posts); b with a (2 of 5) and c (3 of 5)
    tag, neighbour, posts = np.array([0, 1, 1]), np.array([1, 0, 2]), np.array([2, 2, 3])
    df = np.array([4.0, 5.0, 3.0])
    row, col, score, c = walked(tag, neighbour, posts, df, walk=0.5, keep=5)
    got = {(r, k): (s, n) for r, k, s, n in zip(row, col, score, c, strict=True)}
    # w(a, b) = 0.5 x 2/4; w(a, c) = 0.5 x P(b|a) P(c|b) = 0.5 x 0.5 x 0.6, never seen together
    assert got[(0, 1)] == (pytest.approx(0.25), 2)
    assert got[(0, 2)] == (pytest.approx(0.15), 0)
    # w(b, a) = 0.5 x 2/5 (b's walk back through a to b itself does not count)
    assert got[(1, 0)] == (pytest.approx(0.2), 2)
    assert (0, 0) not in got and (1, 1) not in got


@pytest.mark.parametrize("wide", [False, True])
def test_the_reasons_order_is_the_three_key_sort(wide):
    # goes_with: by suggestion, most posts first, ties to the lower tag; one integer key,
    # or lexsort itself when the three would not fit in 64 bits
    rng = np.random.default_rng(3)
    slot, posts, via = (
        rng.integers(0, 50, 4000),
        rng.integers(1, 6, 4000),
        rng.integers(0, 30, 4000),
    )
    if wide:
        posts[0] = 2**40
        via[0] = 2**30
    got = sg._by_slot_most_posts_first(slot, posts, via)
    assert (got == np.lexsort((via, -posts, slot))).all()


def test_category_names_are_taken_by_id_with_a_name_for_the_rest():
    categories = [Category(4, "b_c", ("b", "c"), 3), Category(0, "a_b", ("a", "b"), 5)]
    names = category_names(categories, np.array([0, 4, -1, 7, 4]), "mixed")
    assert names.to_pylist() == ["a_b", "b_c", "mixed", "mixed", "b_c"]
    assert category_names(categories, np.array([9]), None).to_pylist() == [None]


@pytest.mark.parametrize("presorted", [False, True])
def test_each_rows_best_first_is_the_three_key_sort(presorted):
    # the walk's and the companions' order: by row, largest value first, ties to the lower
    # column; a faster sort than np.lexsort's three keys, which must give the same order
    rng = np.random.default_rng(7)
    row, col = rng.integers(0, 40, 5000), rng.integers(0, 60, 5000)
    value = rng.integers(0, 4, 5000).astype(float)  # many ties
    if presorted:
        first = np.lexsort((col, -value, row))
        row, col, value = row[first], col[first], value[first]
    expected = np.lexsort((col, -value, row))
    got = nb._by_row_best_first(row, col, value)
    assert (row[got] == row[expected]).all() and (col[got] == col[expected]).all()
    assert (value[got] == value[expected]).all()
    assert sorted(nb._first_per_row(row, col, value, 3)) == sorted(
        expected[ranks_within(row[expected]) < 3]
    )


def test_options_keep_recommended_or_put_the_band_first(cafe, tmp_path):
    _, out = cafe
    model = TagModel.load(str(out / "model"))
    counts = tmp_path / "counts.csv"
    counts.write_text("tag,posts\ncoffee,50000000\ngrinder,500000\nbread,2000000\n")
    rated = sg.rated_with(model, str(counts))
    default = [s["tag"] for s in sg.suggest(rated, ["espresso"], 5)["suggestions"]]
    band = sg.suggest(rated, ["espresso"], 5, prefer_in_band=True)["suggestions"]
    assert [s["band"] for s in band][:2] == ["in_band", "in_band"]
    assert {s["tag"] for s in band[:2]} == {"grinder", "bread"} and default[0] != "bread"
    only = sg.suggest(rated, ["espresso"], 5, recommended_only=True)["suggestions"]
    assert only and all(s["recommended"] for s in only)
    assert {s["tag"] for s in only} <= {"grinder", "bread"}


def test_the_estimates_assumption_is_said_when_it_rates_every_tag_too_popular(cafe, capsys):
    _, out = cafe
    assert main(["suggest", "--model", str(out), "--tags", "#espresso", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "40,000,000,000 network posts" in result["popularity_note"]
    assert "--popularity FILE" in result["popularity_note"]
    assert main(["suggest", "--model", str(out), "--tags", "#espresso"]) == 0
    text = capsys.readouterr().out
    assert "Note: popularity is estimated" in text and "#coffee" in text
    assert "#espresso 6" in text  # why: it goes with the post's #espresso in 6 posts


def test_a_post_whose_tags_have_no_companions_gets_its_categorys_tags(cafe):
    _, out = cafe
    model = TagModel.load(str(out / "model"))
    # as for a tag too rare for the features: no companions at all
    empty = Neighbours.of(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), len(model.tags))
    bare = dataclasses.replace(model, neighbours=empty)
    found = sg.suggest(bare, ["yacht"], 5)["suggestions"]
    sailing = model.by_id[found[0]["category_id"]]
    listed = [t.tag for t in sailing.tags]
    assert "yacht" in listed
    assert [s["tag"] for s in found] == [t for t in listed if t != "yacht"]
    assert [s["source"] for s in found] == ["category"] * len(found)
    assert all(s["goes_with"] == [] for s in found)


def test_one_ranking_for_one_post_a_corpus_and_the_python_api(spark, cafe, tmp_path):
    inp, out = cafe
    tags = [["espresso"], ["bread", "coffee"], ["yacht", "unheard"], ["unheard"], ["ristretto"],
            ["ristretto", "unheard", "yacht"]]  # fmt: skip
    posts = [{"id": f"p{i + 1}", "tags": t} for i, t in enumerate(tags)]
    batch = write_jsonl(tmp_path / "new.jsonl", posts)
    assert main(["suggest", "--model", str(out), "--input", str(batch),
                 "--output", str(tmp_path / "s"), "--n", "4", "-q"]) == 0  # fmt: skip
    rows = {r["id"]: r for r in pq.read_table(tmp_path / "s" / "suggestions").to_pylist()}
    api = TagCategoriesModel.load(str(out))
    for post in posts:
        single = api.suggest(post["tags"], 4)
        assert rows[post["id"]]["suggestions"] == single["suggestions"], post
        assert rows[post["id"]]["unknown_tags"] == single["unknown_tags"]
        assert single == sg.suggest(TagModel.load(str(out / "model")), post["tags"], 4)
        assert rows[post["id"]]["message"] == single["message"]
    assert rows["p4"]["message"].startswith("none of the post's tags is known to the model")
    # a tag seen once is known by its anchor: #grinder, then what #grinder goes with
    assert rows["p5"]["unknown_tags"] == [] and rows["p6"]["unknown_tags"] == ["unheard"]
    first = rows["p5"]["suggestions"][0]
    assert first["tag"] == "grinder" and first["goes_with"] == [{"tag": "ristretto", "posts": 1}]
    assert {"espresso", "coffee"} <= {s["tag"] for s in rows["p5"]["suggestions"]}
    summary = json.loads((tmp_path / "s" / "suggest.json").read_text())
    assert "network posts" in summary["popularity_note"]


def _damaged_copies(out, tmp_path) -> dict[str, tuple]:
    """Copies of the cafe model, each spoilt one way, with what its error must name."""
    cases = {}

    def copy(name):
        target = tmp_path / name
        shutil.copytree(out / "model", target)
        return target

    gone = copy("partial")
    (gone / "neighbours.parquet").unlink()
    cases["partial"] = (gone, "has no neighbours.parquet: the folder is incomplete")
    cut = copy("damaged")
    data = (cut / "tags.parquet").read_bytes()
    (cut / "tags.parquet").write_bytes(data[: len(data) // 2])
    cases["damaged"] = (cut, "tags.parquet' is damaged")
    older = copy("older")
    about = json.loads((older / "model.json").read_text())
    (older / "model.json").write_text(json.dumps({**about, "version": 1}))
    cases["older"] = (older, "version 1; this tagspark reads version 2: fit the model again")
    foreign = copy("foreign")
    (foreign / "model.json").write_text('{"format": "sklearn-pickle"}')
    cases["foreign"] = (foreign, "model.json' is not a tagspark model's")
    rare = copy("rare")
    (rare / "rare.parquet").unlink()
    cases["rare"] = (rare, "has no rare.parquet: the folder is incomplete")
    strange = copy("strange")
    pq.write_table(pa.table({"x": [1]}), strange / "vocabulary.parquet")
    cases["strange"] = (strange, "vocabulary.parquet' is damaged or not of this")
    return cases


def test_a_damaged_partial_foreign_or_older_model_gets_one_error_line(cafe, tmp_path, capsys):
    inp, out = cafe
    for kind, (folder, said) in _damaged_copies(out, tmp_path).items():
        for args in (["suggest", "--tags", "#espresso"], ["search", "esp"], ["report"]):
            assert main([args[0], "--model", str(folder), *args[1:]]) == 1, (kind, args)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("Error: "), (kind, args, err)
            assert said in err[0], (kind, args, err[0])
    # the Spark jobs read it through Hadoop: the same line
    folder, said = _damaged_copies(out, tmp_path / "spark")["partial"]
    assert main(["assign", "--model", str(folder), "--input", str(inp),
                 "--output", str(tmp_path / "placed"), "-q"]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("Error: ") and said in err[-1]
    assert not (tmp_path / "placed").exists()


def test_a_model_fitted_before_rare_tags_still_suggests(cafe, tmp_path):
    _, out = cafe
    older = tmp_path / "older"
    shutil.copytree(out / "model", older)
    (older / "rare.parquet").unlink()
    about = json.loads((older / "model.json").read_text())
    del about["rare_tags"]
    (older / "model.json").write_text(json.dumps(about))
    current = TagModel.load(str(out / "model"))
    for whole in (True, False):
        for tags in (["ristretto"], ["espresso"]):
            model = TagModel.load(str(older)) if whole else TagModel.load_for(str(older), tags)
            assert model.rare is None
            if tags == ["ristretto"]:  # unknown to an older model, as before
                result = sg.suggest(model, tags, 4)
                assert result["unknown_tags"] == tags and result["suggestions"] == []
            else:
                assert sg.suggest(model, tags, 2) == sg.suggest(current, tags, 2)


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """120 themes of 40 tags (4,800 tags), row groups of 64 rows: a vocabulary many row
    groups long, as a large model's is."""
    from tagspark import model as model_module

    rng = np.random.default_rng(5)
    posts = []
    for i in range(9000):
        theme = rng.integers(120)
        picked = sorted(set(rng.zipf(1.6, size=int(rng.integers(2, 7))) % 40))
        tags = [f"t{theme:03d}w{w:02d}" for w in picked]
        posts.append({"id": f"w{i}", "tags": tags + ([f"once{i:04d}"] if i % 20 == 0 else [])})
    tmp = tmp_path_factory.mktemp("wide")
    inp = write_jsonl(tmp / "wide.jsonl", posts)
    patch = pytest.MonkeyPatch()
    patch.setattr(model_module, "ROWS_PER_GROUP", 64)
    patch.setattr(model_module, "CELL_ROWS_PER_GROUP", 256)
    try:
        assert main(["cluster", "--input", str(inp), "--output", str(tmp / "out"),
                     "--k", "30", "--seed", "1", "-q"]) == 0  # fmt: skip
    finally:
        patch.undo()
    return posts, tmp / "out" / "model"


def test_the_ranking_is_the_walk_written_again_in_scipy(wide, monkeypatch):
    """bench/walk_replica.py computes the companions, the walk and the anchors from the
    posts with scipy, as the docstrings say; tagspark's companions-led suggestions are its
    10 tags, in its order, for posts of well-known tags, of tags seen once and of both."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import walk_replica

    posts, folder = wide
    model = TagModel.load(str(folder))
    train = [sg.post_tags(model, p["tags"]) for p in posts]
    generic = {model.tags[i] for i in model.generic}
    given, index, w, rare, _ = walk_replica.replica(train, generic)
    assert sorted(rare) == model.rare.tag.to_pylist() and len(rare) > 450  # the once-tags too
    inputs = [tags[: max(1, len(tags) // 2)] for tags in train[::97]]
    inputs += [[t for t in tags if t.startswith("once")] for tags in train[:2000:100]]
    inputs += [[tags[0], tags[-1]] for tags in train[:3000:100]]  # a tag and a once-tag
    expected = walk_replica.suggested([(t, []) for t in inputs], w, index, given, rare, 0.5, 1.0)
    for tags, theirs in zip(inputs, expected, strict=True):
        found = sg.suggest(model, tags, 10)["suggestions"]
        ours = [s["tag"] for s in found if s["source"] == sg.NEIGHBOURS]
        assert len(ours) == len(theirs) == 10 and ours == theirs, tags


def test_a_cold_suggest_reads_only_the_rows_of_its_tags_and_answers_as_the_whole_model(wide):
    from tagspark.model import PartReader

    posts, folder = wide
    whole = TagModel.load(str(folder))
    assert len(whole.tags) > 2000  # 40 row groups and more

    def groups(rows) -> int:
        return len({r // 64 for r in rows})

    for post in posts[:400:20]:
        tags = post["tags"][:2]
        reader = PartReader(str(folder))
        part = TagModel.load_for(str(folder), tags, reader)
        assert part.partial and len(part.tags) < len(whole.tags) / 10
        assert sg.suggest(part, tags, 10) == sg.suggest(whole, tags, 10), tags
        # the rows it needs: its tags, their companions, its category's listed tags
        mine = [whole.position[t] for t in tags if t in whole.position]
        nb = whole.neighbours
        companions = {int(j) for i in mine for j in nb.neighbour[nb.offsets[i] : nb.offsets[i + 1]]}
        category = int(whole.category_of(whole.pack([tags])[0])[0])
        listed = {whole.position[t.tag] for t in whole.by_id[category].tags}
        by_name = sorted(whole.tags)
        looked_up = {*tags, *(whole.tags[i] for i in listed)}
        # where each name is, or would be (a tag the model does not know)
        at = (bisect.bisect_left(by_name, t) for t in looked_up)
        assert reader.rows["names.parquet"] <= 64 * groups(at)
        assert reader.rows["tags.parquet"] <= 64 * groups({*mine, *companions, *listed})
        assert reader.rows["vocabulary.parquet"] <= 64 * groups(mine)
        assert reader.rows["tags.parquet"] < len(whole.tags) / 2
    # a tag seen once reads its row of rare.parquet and its anchor's companions
    assert len(whole.rare) >= 450  # 7 row groups and more
    for post in posts[:9000:900]:
        tags = [post["tags"][-1]]
        reader = PartReader(str(folder))
        part = TagModel.load_for(str(folder), tags, reader)
        found = sg.suggest(part, tags, 10)
        assert found == sg.suggest(whole, tags, 10), tags
        anchor = whole.tags[whole.rare.anchor[whole.rare.find(pa.array(tags))[0]]]
        assert found["suggestions"][0]["tag"] == anchor and anchor in post["tags"]
        assert reader.rows["rare.parquet"] <= 64
        assert reader.rows["tags.parquet"] < len(whole.tags) / 2
    # an unknown tag reads nothing but the model's few whole files
    reader = PartReader(str(folder))
    nothing = TagModel.load_for(str(folder), ["unheard"], reader)
    assert sg.suggest(nothing, ["unheard"], 5)["message"].startswith("none of the post's tags")
    assert reader.rows.get("names.parquet", 0) <= 64 and reader.rows.get("rare.parquet", 0) <= 64
    assert "tags.parquet" not in reader.rows and "vocabulary.parquet" not in reader.rows


def test_rare_tags_are_found_by_search_for_a_post_and_by_hash_for_a_batch():
    names = sorted(f"n{i:04d}" for i in range(1000))
    table = pa.table({"tag": names, "anchor_index": pa.array(np.zeros(1000), pa.int32()),
                      "posts": np.ones(1000, np.int64), "df": np.ones(1000, np.int64)})  # fmt: skip
    rare = nb.RareTags.of(table)
    post = pa.array(["n0005", "zz", "n0999", "a", None, "n0005x"])  # searched: 6 x 64 < 1000
    assert rare.find(post).tolist() == [5, -1, 999, -1, -1, -1]
    batch = pa.array([*names[::3], "zz"])  # hashed
    assert rare.find(batch).tolist() == [*range(0, 1000, 3), -1]
