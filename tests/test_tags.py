"""Tag normalisation, hashtag extraction and text tag lists, as tables of cases."""

from __future__ import annotations

import random

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from tagspark.tags import (
    _normalise_each,
    _normalised,
    extract_hashtags,
    normalise_tags,
    parse_tag_text,
)

CAPTIONS = [
    ("#café au lait", ["café"]),
    ("#東京 #Tokyo", ["東京", "tokyo"]),
    ("#Straße", ["straße"]),
    ("#a#b", ["a", "b"]),
    ("C# is not a tag", []),
    ("### nor is this", []),
    ("##double", ["double"]),
    ("abc#def", []),
    ("it&#39;s", []),
    ("end.#tag, #two!", ["tag", "two"]),
    ("#sun😍#sea", ["sun", "sea"]),
    ("#sun😍 and #sea🌊", ["sun", "sea"]),
    ("#under_score #with-dash", ["under_score", "with"]),
    ("#2024 #top10", ["2024", "top10"]),
    ("full-width ＃タグ", ["タグ"]),
    ("(#paren) [#bracket]", ["paren", "bracket"]),
    ("#Food #food #FOOD", ["food"]),
    ("no tags here", []),
    ("", []),
    ("#", []),
    ("#नमस्ते", ["नमस्ते"]),
]


def _check(spark, cases, input_type, expression):
    """Run every case in one DataFrame and compare it whole with the expected table."""
    df = spark.createDataFrame(cases, f"given {input_type}, expected array<string>")
    actual = df.select("given", expression(F.col("given")).alias("expected"))
    assertDataFrameEqual(actual, df, checkRowOrder=False)


def test_hashtags_in_captions(spark):
    _check(spark, CAPTIONS, "string", lambda c: normalise_tags(extract_hashtags(c)))


TAG_LISTS = [
    (["#Food", "food", " Italy ", "", None, "#"], ["food", "italy"]),
    (["ÉCOLE", "école"], ["école"]),
    (["  #travel  "], ["travel"]),
    (["kitchen-safety"], ["kitchen-safety"]),
    # Unicode spaces (no-break, ideographic, line separator) trim too; inner ones stay
    (["\u00a0#Sun\u3000", "\u2028\t＃タグ\n", "new york\u202f"], ["sun", "タグ", "new york"]),
    (["a#", "#\u2003#b"], ["a#", "b"]),
    ([], []),
]


def test_normalise_tag_lists(spark):
    _check(spark, TAG_LISTS, "array<string>", normalise_tags)


def test_lists_taken_as_normalised_are_exactly_what_normalising_each_tag_gives(spark):
    # normalise_tags skips the per-tag work for lists it finds normalised already; random
    # lists near every check's edge (the join character \x01 in a tag, spaces, #, case,
    # empty and null tags, repeats) must come out the same either way
    rng = random.Random(5)
    letters = ["a", "b", "-", "B", "#", "＃", " ", "\t", "\u00a0", "\x01", "é"]
    weights = [20, 20, 10, 1, 1, 1, 1, 1, 1, 1, 1]

    def tag():
        roll = rng.random()
        return None if roll < 0.05 else "".join(rng.choices(letters, weights, k=rng.randrange(4)))

    lists = [([tag() for _ in range(rng.randrange(5))],) for _ in range(3000)]
    lists += [(["a", "b", "a"],), (["ab"],), (["a\x01b"],), (["a\x01", "b"],), (None,)]
    df = spark.createDataFrame(lists, "tags array<string>")
    assert 300 < df.filter(_normalised(F.col("tags"))).count() < 3000  # both paths run
    assertDataFrameEqual(
        df.select("tags", normalise_tags(F.col("tags")).alias("out")),
        df.select("tags", _normalise_each(F.col("tags")).alias("out")),
    )


TEXT_FORMS = [
    ("#a #b", ["a", "b"]),
    ("a b", ["a", "b"]),
    ("a,b", ["a", "b"]),
    ("a, b ; c", ["a", "b", "c"]),
    ("{a,b}", ["a", "b"]),
    ("{italy,food}", ["italy", "food"]),
    ('["a", "b"]', ["a", "b"]),
    ("Lovely day #Sun #beach", ["sun", "beach"]),
    ("c++ c#", ["c++", "c#"]),
    ("   ", []),
]


def test_tag_lists_written_as_text(spark):
    _check(spark, TEXT_FORMS, "string", lambda t: normalise_tags(parse_tag_text(t)))
