"""Resolving inputs (no JVM) and reading every format into posts and rejected records."""

from __future__ import annotations

import bz2
import gzip
import json

import pytest
from pyspark.testing import assertDataFrameEqual

from tagspark.config import InputConfig
from tagspark.errors import InputError
from tagspark.posts import filter_kept_posts, filter_rejected, with_post_ids, with_post_tags
from tagspark.read import format_of, read_records, resolve_inputs, with_record_numbers


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.JSON.gz", "jsonl"),
        ("a.ndjson.bz2", "jsonl"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("part-0.parquet", "parquet"),
        ("a.txt", "text"),
        ("a.dat", None),
    ],
)
def test_format_from_file_name(name, fmt):
    assert format_of(name) == fmt


def test_resolve_directories_globs_and_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ["d/a.jsonl", "d/sub/b.jsonl.gz", "d/_SUCCESS", "d/.hidden", "c.jsonl"]:
        (tmp_path / name).write_text("")
    spec = resolve_inputs([str(tmp_path / "d"), str(tmp_path / "c*.jsonl")])
    assert spec.format == "jsonl"
    assert spec.paths == (
        str(tmp_path / "c.jsonl"),
        str(tmp_path / "d/a.jsonl"),
        str(tmp_path / "d/sub/b.jsonl.gz"),
    )


def test_resolve_errors(tmp_path):
    (tmp_path / "a.jsonl").write_text("")
    (tmp_path / "b.csv").write_text("")
    (tmp_path / "c.dat").write_text("")
    (tmp_path / "empty").mkdir()
    cases = [
        (
            [str(tmp_path / "missing.jsonl")],
            "auto",
            f"input path '{tmp_path}/missing.jsonl' does not exist",
        ),
        (
            [str(tmp_path / "*.xml")],
            "auto",
            f"no file matches the input pattern '{tmp_path}/*.xml'",
        ),
        ([str(tmp_path / "empty")], "auto", f"input directory '{tmp_path}/empty' holds no files"),
        (
            [str(tmp_path / "c.dat")],
            "auto",
            f"cannot tell the format of '{tmp_path}/c.dat' from its name; name it with --format "
            "jsonl|csv|parquet|text",
        ),
        (
            [str(tmp_path / "a.jsonl"), str(tmp_path / "b.csv")],
            "auto",
            "the inputs mix formats (csv: 1 file(s), jsonl: 1 file(s)); read one format at a time "
            "or choose one with --format",
        ),
    ]
    for paths, fmt, message in cases:
        with pytest.raises(InputError) as err:
            resolve_inputs(paths, fmt)
        assert str(err.value) == message


def test_explicit_format_reads_unknown_names_and_skips_other_formats(tmp_path):
    for name in ["a.dat", "b.jsonl", "c.csv"]:
        (tmp_path / name).write_text("")
    spec = resolve_inputs([str(tmp_path)], "jsonl")
    assert spec.paths == (str(tmp_path / "a.dat"), str(tmp_path / "b.jsonl"))
    assert resolve_inputs([str(tmp_path / "c.csv")], "text").paths == (str(tmp_path / "c.csv"),)


def _read(spark, paths, fmt, cfg=None, max_tags=30):
    spec = resolve_inputs([str(p) for p in paths], fmt)
    records = read_records(spark, spec, cfg or InputConfig())
    records = records.transform(with_post_tags, max_tags).cache()
    numbered = with_post_ids(with_record_numbers(records))
    return numbered


def _posts(numbered):
    return filter_kept_posts(numbered).select("id", "tags")


def test_jsonl_with_bad_records_loses_nothing(spark, tmp_path):
    path = tmp_path / "posts.jsonl"
    lines = [
        b'{"id": "a", "tags": ["#Food", "food", "Italy"]}',
        b'{"tags": "#x #y"}',
        b'{"caption": "Sunny #beach day #sea"}',
        b"",  # blank lines are skipped, not rejected
        b'{"id": "b", "tags": [1, "x"]}',
        b"{not json",
        b"[1, 2]",
        b'{"id": "c", "tags": ["caf\xe9"]}',
        b'{"id": "d", "likes": 3}',
        b'{"id": "e", "tags": []}',
        b'{"id": 7, "tags": null, "text": "#one"}',
        b'{"id": "f", "tags": {"a": 1}}',
        # the list read from the record as it is: escapes decoded, nulls left to normalising,
        # only the exact field name, whatever else the record holds
        b'{"TAGS": ["no"], "id": "g", "x": {"y": [1, {"z": "tags"}]}, '
        b'"tags": ["\\u00c9t\\u00e9", null]}',
        b'{"id": "h", "tags": [null]}',
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    numbered = _read(spark, [path], "auto")
    expected_posts = spark.createDataFrame(
        [
            ("a", ["food", "italy"]),
            ("posts.jsonl:2", ["x", "y"]),
            ("posts.jsonl:3", ["beach", "sea"]),
            ("7", ["one"]),
            ("g", ["\u00e9t\u00e9"]),
        ],
        "id string, tags array<string>",
    )
    assertDataFrameEqual(_posts(numbered), expected_posts)
    not_list = "field 'tags' is not a string or a list of strings"
    expected_rejected = spark.createDataFrame(
        [
            ("posts.jsonl", 5, not_list, '{"id": "b", "tags": [1, "x"]}'),
            ("posts.jsonl", 6, "malformed JSON", "{not json"),
            ("posts.jsonl", 7, "not a JSON object", "[1, 2]"),
            ("posts.jsonl", 8, "invalid UTF-8", '{"id": "c", "tags": ["caf\ufffd"]}'),
            ("posts.jsonl", 9, "no 'tags' or 'caption' or 'text' field", '{"id": "d", "likes": 3}'),
            ("posts.jsonl", 12, not_list, '{"id": "f", "tags": {"a": 1}}'),
        ],
        "source string, record long, reason string, raw string",
    )
    assertDataFrameEqual(filter_rejected(numbered), expected_rejected)


def test_configurable_field_names(spark, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"post": "x1", "hash.tags": ["a"]}\n{"post": "x2", "body": "#b"}\n')
    cfg = InputConfig(tags_field="hash.tags", text_fields=("body",), id_field="post")
    expected = spark.createDataFrame(
        [("x1", ["a"]), ("x2", ["b"])], "id string, tags array<string>"
    )
    assertDataFrameEqual(_posts(_read(spark, [path], "auto", cfg)), expected)


def test_record_numbers_across_files_and_compression(spark, tmp_path):
    rows = [{"tags": [f"t{i}"]} for i in range(5)]
    text = "".join(json.dumps(r) + "\n" for r in rows)
    (tmp_path / "a.jsonl").write_text(text)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "c.jsonl.bz2").write_bytes(bz2.compress(text.encode()))
    got = _posts(_read(spark, [tmp_path], "auto"))
    expected = spark.createDataFrame(
        [
            (f"{f}:{i + 1}", [f"t{i}"])
            for f in ["a.jsonl", "b.jsonl.gz", "c.jsonl.bz2"]
            for i in range(5)
        ],
        "id string, tags array<string>",
    )
    assertDataFrameEqual(got, expected)


def test_record_numbers_survive_many_splits(spark, tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"tags": [f"t{i}"]}) + "\n" for i in range(3000)))
    spark.conf.set("spark.sql.files.maxPartitionBytes", "4096")  # ~20 splits
    try:
        numbered = _read(spark, [path], "auto")
        assert numbered.rdd.getNumPartitions() > 10
        got = _posts(numbered)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    expected = spark.createDataFrame(
        [(f"big.jsonl:{i + 1}", [f"t{i}"]) for i in range(3000)], "id string, tags array<string>"
    )
    assertDataFrameEqual(got, expected)


def test_plain_text_forms(spark, tmp_path):
    path = tmp_path / "posts.txt"
    path.write_text("#a #b\na b\na,b\n{italy,food}\n\nLovely #Day\n")
    expected = spark.createDataFrame(
        [
            ("posts.txt:1", ["a", "b"]),
            ("posts.txt:2", ["a", "b"]),
            ("posts.txt:3", ["a", "b"]),
            ("posts.txt:4", ["italy", "food"]),
            ("posts.txt:6", ["day"]),
        ],
        "id string, tags array<string>",
    )
    assertDataFrameEqual(_posts(_read(spark, [path], "auto")), expected)


def test_csv_with_tag_strings_captions_and_bad_rows(spark, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text(
        'id,tags,caption\np1,"#a #b",\np2,"a,b",\np3,,"Hello #World"\np4,"x","y","extra"\np5,,\n'
    )
    numbered = _read(spark, [path], "auto")
    expected = spark.createDataFrame(
        [("p1", ["a", "b"]), ("p2", ["a", "b"]), ("p3", ["world"])],
        "id string, tags array<string>",
    )
    assertDataFrameEqual(_posts(numbered), expected)
    rejected = filter_rejected(numbered).select("record", "reason")
    assertDataFrameEqual(
        rejected,
        spark.createDataFrame(
            [(4, "malformed CSV row"), (5, "no 'tags' or 'caption' or 'text' field")],
            "record long, reason string",
        ),
    )


def test_parquet_with_list_and_string_tags(spark, tmp_path):
    lists = spark.createDataFrame([(1, ["#A", "b"]), (2, None)], "id int, tags array<string>")
    lists.coalesce(1).write.parquet(str(tmp_path / "lists"))
    strings = spark.createDataFrame([("#a #c",), ("d e",)], "tags string")
    strings.coalesce(1).write.parquet(str(tmp_path / "strings"))
    numbered = _read(spark, [tmp_path / "lists"], "auto")
    assertDataFrameEqual(
        _posts(numbered),
        spark.createDataFrame([("1", ["a", "b"])], "id string, tags array<string>"),
    )
    assert filter_rejected(numbered).select("reason").first()[0] == (
        "no 'tags' or 'caption' or 'text' field"
    )
    got = _posts(_read(spark, [tmp_path / "strings"], "parquet")).select("tags")
    assertDataFrameEqual(
        got, spark.createDataFrame([(["a", "c"],), (["d", "e"],)], "tags array<string>")
    )


def test_parquet_without_tag_fields_is_a_clear_error(spark, tmp_path):
    spark.createDataFrame([(1,)], "likes int").write.parquet(str(tmp_path / "p"))
    with pytest.raises(
        InputError,
        match=r"the Parquet input has no 'tags' or 'caption' or "
        r"'text' field \(columns: likes\)",
    ):
        _read(spark, [tmp_path / "p"], "auto")


def test_tag_cap_keeps_the_first_tags(spark, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "x", "tags": [f"t{i}" for i in range(40)]}) + "\n")
    numbered = _read(spark, [path], "auto", max_tags=30)
    row = filter_kept_posts(numbered).select("tags", "n_tags").first()
    assert row["tags"] == [f"t{i}" for i in range(30)]
    assert row["n_tags"] == 40


def test_common_folder_keeps_uris_intact():
    from tagspark.read import _common_folder

    assert _common_folder(["hdfs://nn/data/a/x.jsonl", "hdfs://nn/data/b/y.jsonl"]) == (
        "hdfs://nn/data"
    )
    assert _common_folder(["file:/tmp/in/x.jsonl"]) == "file:/tmp/in"
    assert _common_folder(["file:/a/x", "file:/b/y"]) == "file:"


def test_a_path_spark_cannot_read_is_an_input_error(spark, tmp_path):
    from tagspark.read import InputSpec

    spec = InputSpec((f"file://{tmp_path}/gone/*.jsonl",), "jsonl")
    with pytest.raises(InputError, match=r"^Spark cannot read the input: \[PATH_NOT_FOUND\]"):
        read_records(spark, spec, InputConfig())


def test_a_missing_label_column_is_a_clear_error(spark, tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,tags\n1,a b\n")
    with pytest.raises(
        InputError, match=r"^the CSV input has no label field 'site' \(columns: id, tags\)$"
    ):
        _read(spark, [path], "auto", InputConfig(label_field="site"))
