"""Reading a post corpus: resolving input paths and formats, and parsing records.

Every format is read into one *record* schema, one row per input record:

==============  ==============  =========================================================
column          type            meaning
==============  ==============  =========================================================
``_file``       string          the file the record came from (Spark's path)
``_block``      long            start byte of the file split that held it
``_pos``        long            Spark's monotonically increasing id (position helper)
``id``          string          the record's id field, or null
``tags``        array<string>   the tags field when it is a list, else null
``tag_text``    string          the tags field when it is a string (or a text line)
``caption``     string          the first present caption/text field
``reason``      string          why the record is rejected, or null
``raw``         string          the record as read, kept only for rejected records
``label``       string          the label field (``input.label_field``), or null
==============  ==============  =========================================================

``with_record_numbers`` then turns ``_file/_block/_pos`` into ``source`` and a 1-based
``record`` number within the file (the line number for JSON Lines and text), so generated
ids and rejected records point at the exact place in the input.
"""

from __future__ import annotations

import glob
import logging
import os
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from tagspark.config import InputConfig
from tagspark.errors import InputError
from tagspark.storage import Storage, as_uri, is_uri, literal

log = logging.getLogger(__name__)

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".deflate")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".txt": "text",
    ".text": "text",
}
_GLOB_CHARS = set("*?[")

REJECT_INVALID_UTF8 = "invalid UTF-8"
REJECT_MALFORMED_JSON = "malformed JSON"
REJECT_NOT_OBJECT = "not a JSON object"
REJECT_MALFORMED_CSV = "malformed CSV row"


@dataclass(frozen=True)
class InputSpec:
    """Resolved inputs: the paths to hand to Spark and the one format to read them with."""

    paths: tuple[str, ...]
    format: str
    # the paths as given, and whether some (URIs) wait to be listed once Spark runs
    given: tuple[str, ...] = ()
    deferred: bool = False


def format_of(path: str) -> str | None:
    """The format a file name implies (``posts.jsonl.gz`` -> ``jsonl``), or None."""
    name = path.lower()
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return EXTENSIONS.get(os.path.splitext(name)[1])


def _list_dir(directory: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        found += [os.path.join(root, f) for f in sorted(files) if not f.startswith((".", "_"))]
    return found


def resolve_inputs(
    paths: list[str] | tuple[str, ...], fmt: str = "auto", storage: Storage | None = None
) -> InputSpec:
    """Expand files, directories and globs and settle the format.

    Parameters
    ----------
    paths : list of str
        Files, directories (read recursively, skipping names that start with ``.`` or
        ``_``) or globs. Local paths are listed here, before Spark starts; URIs
        (``hdfs://``, ``s3a://``, ``file://`` too) are listed through ``storage`` (the
        session's :mod:`tagspark.storage`) once Spark runs: without it the result is only a check of
        the local paths, marked ``deferred`` (see :func:`resolve_remote_inputs`).
    fmt : str
        ``auto`` to take the format from the file names, or one of ``jsonl``, ``csv``,
        ``parquet``, ``text``. With an explicit format, files in directories whose names
        say another format are skipped (with a warning).

    Returns
    -------
    InputSpec

    Raises
    ------
    InputError
        A path that does not exist, a glob or directory with no files, a file whose
        format cannot be told, or inputs of more than one format under ``auto``.
    """
    if not paths:
        raise InputError("no input given: name one or more files, directories or globs")
    named: list[str] = []  # files the user named (or matched by a glob)
    listed: list[str] = []  # files found inside directories
    deferred = False
    for path in paths:
        if is_uri(path):  # hdfs://, s3a://, file:// too: listed once Spark runs
            if storage is None:
                deferred = True
            else:
                _list_remote(storage, path, named, listed)
            continue
        if _GLOB_CHARS & set(path) and not os.path.exists(path):  # a name with [1] is itself
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                raise InputError(f"no file matches the input pattern '{path}'")
            for m in matches:
                if os.path.isdir(m):
                    listed.extend(_list_dir(m))
                else:
                    named.append(m)
        elif os.path.isdir(path):
            files = _list_dir(path)
            if not files:
                raise InputError(f"input directory '{path}' holds no files")
            listed.extend(files)
        elif os.path.isfile(path):
            if not os.access(path, os.R_OK):
                raise InputError(f"input file '{path}' is not readable")
            named.append(path)
        else:
            raise InputError(f"input path '{path}' does not exist")
    if deferred:
        return InputSpec(tuple(named + listed), fmt, tuple(paths), deferred=True)
    if fmt != "auto":
        skipped = [f for f in listed if format_of(f) not in (None, fmt)]
        if skipped:
            log.warning(
                "skipping %d file(s) that are not %s, e.g. %s", len(skipped), fmt, skipped[0]
            )
        files = named + [f for f in listed if f not in skipped]
        if not files:
            raise InputError(f"no {fmt} files among the inputs {', '.join(paths)}")
        return InputSpec(tuple(dict.fromkeys(files)), fmt, tuple(paths))
    files = list(dict.fromkeys(named + listed))
    unknown = [f for f in files if format_of(f) is None]
    if unknown:
        raise InputError(
            f"cannot tell the format of '{unknown[0]}' from its name; name it with "
            "--format jsonl|csv|parquet|text"
        )
    kinds = Counter(format_of(f) for f in files)
    if len(kinds) > 1:
        mix = ", ".join(f"{k}: {n} file(s)" for k, n in sorted(kinds.items()))
        raise InputError(
            f"the inputs mix formats ({mix}); read one format at a time or choose one with --format"
        )
    return InputSpec(tuple(files), next(iter(kinds)), tuple(paths))


def resolve_remote_inputs(storage: Storage, spec: InputSpec) -> InputSpec:
    """``spec`` with its URIs listed through ``storage`` once Spark runs (unchanged when
    it has none)."""
    if not spec.deferred:
        return spec
    return resolve_inputs(spec.given, spec.format, storage)


def _list_remote(storage: Storage, path: str, named: list[str], listed: list[str]) -> None:
    """Add the files behind a URI: a file, a folder (recursively, as :func:`_list_dir`) or
    a glob, listed by the session's storage."""
    if _GLOB_CHARS & set(path) and not storage.exists(path):
        matches = storage.glob(path)
        if not matches:
            raise InputError(f"no file matches the input pattern '{path}'")
        for entry in matches:
            if entry.is_dir:
                listed.extend(_list_remote_dir(storage, entry.uri))
            else:
                named.append(entry.uri)
    elif storage.is_dir(path):
        files = _list_remote_dir(storage, path)
        if not files:
            raise InputError(f"input directory '{path}' holds no files")
        listed.extend(files)
    elif storage.exists(path):
        named.append(path)
    else:
        raise InputError(f"input path '{path}' does not exist")


def _list_remote_dir(storage: Storage, folder: str) -> list[str]:
    found = []
    for entry in storage.list(folder):
        if entry.name.startswith((".", "_")):
            continue
        found += _list_remote_dir(storage, entry.uri) if entry.is_dir else [entry.uri]
    return found


def read_records(spark: SparkSession, spec: InputSpec, cfg: InputConfig) -> DataFrame:
    """Read the inputs into the record schema described in this module's docstring."""
    reader = {
        "jsonl": _read_jsonl,
        "csv": _read_csv,
        "parquet": _read_parquet,
        "text": _read_text,
    }[spec.format]
    # absolute (a Connect server resolves a relative path from its own folder) and literal
    # (Spark's readers expand Hadoop globs: a file named posts[1].jsonl is itself)
    paths = [literal(as_uri(p)) for p in spec.paths]
    try:
        return reader(spark, paths, cfg)
    except AnalysisException as exc:  # e.g. a remote path that does not exist
        first_line = str(exc).strip().splitlines()[0]
        raise InputError(f"Spark cannot read the input: {first_line}") from None


def _position() -> list[Column]:
    return [
        F.col("_metadata.file_path").alias("_file"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_pos"),
    ]


def _records(
    df: DataFrame,
    *,
    id: Column,
    tags: Column,
    tag_text: Column,
    caption: Column,
    reason: Column,
    raw: Column,
    label: Column | None = None,
) -> DataFrame:
    null_array = F.lit(None).cast(T.ArrayType(T.StringType()))
    ok = F.col("_reason").isNull()
    return df.withColumn("_reason", reason).select(
        "_file",
        "_block",
        "_pos",
        id.cast("string").alias("id"),
        F.when(ok, tags).otherwise(null_array).alias("tags"),
        F.when(ok, tag_text.cast("string")).alias("tag_text"),
        F.when(ok, caption.cast("string")).alias("caption"),
        F.col("_reason").alias("reason"),
        F.when(~ok, raw).alias("raw"),
        (F.lit(None) if label is None else label).cast("string").alias("label"),
    )


def _missing_fields_reason(cfg: InputConfig) -> str:
    fields = [cfg.tags_field, *cfg.text_fields]
    return "no " + " or ".join(f"'{f}'" for f in fields) + " field"


def _not_a_tag_list_reason(cfg: InputConfig) -> str:
    return f"field '{cfg.tags_field}' is not a string or a list of strings"


def _json_field(v: Column, name: str, type_: str) -> Column:
    escaped = name.replace("\\", "\\\\").replace("'", "\\'")
    return F.try_variant_get(v, f"$['{escaped}']", type_)


def _read_jsonl(spark: SparkSession, paths: list[str], cfg: InputConfig) -> DataFrame:
    lines = spark.read.text(paths).select("value", *_position())
    value = F.col("value")
    # Parse once into a column, then read fields from it: Spark keeps an expensive
    # expression used several times in its own projection rather than repeating it.
    parsed = lines.filter(F.trim(value) != "").withColumn("_v", F.try_parse_json(value))
    v = F.col("_v")
    fields = parsed.select(
        "*",
        _json_field(v, cfg.tags_field, "variant").alias("_tags"),
        F.coalesce(*[_json_field(v, f, "string") for f in cfg.text_fields]).alias("_caption"),
    ).withColumn("_tags_type", F.schema_of_variant("_tags"))
    tags_type = F.col("_tags_type")
    has_tags = F.col("_tags").isNotNull() & (tags_type != "VOID")
    caption = F.col("_caption")
    # parsed, so it is an object exactly when it opens with "{" (much cheaper than
    # schema_of_variant over the whole record); only asked of records with no field found,
    # as every non-object is
    not_object = F.regexp_like(value, F.lit(r"^\s*\{")) == F.lit(False)
    reason = (
        F.when(~F.is_valid_utf8(value), REJECT_INVALID_UTF8)
        .when(v.isNull(), REJECT_MALFORMED_JSON)
        .when(
            has_tags & ~tags_type.isin("STRING", "ARRAY<STRING>", "ARRAY<VOID>"),
            _not_a_tag_list_reason(cfg),
        )
        .when(
            ~has_tags & caption.isNull(),
            F.when(not_object, REJECT_NOT_OBJECT).otherwise(_missing_fields_reason(cfg)),
        )
    )
    tags = F.col("_tags")
    # the record parsed and its tags are a list of strings: Spark's JSON reader gives the
    # same list as the variant does, in half the time (measured 2 s against 3.3 s at 1M)
    tag_list = F.from_json(
        value, T.StructType([T.StructField(cfg.tags_field, T.ArrayType(T.StringType()))])
    )[cfg.tags_field]
    return _records(
        fields,
        id=_json_field(v, cfg.id_field, "string"),
        tags=F.when(tags_type != "STRING", tag_list),
        tag_text=F.when(tags_type == "STRING", F.try_variant_get(tags, "$", "string")),
        caption=caption,
        reason=reason,
        raw=F.make_valid_utf8(value),
        label=_json_field(v, cfg.label_field, "string") if cfg.label_field else None,
    )


def _read_text(spark: SparkSession, paths: list[str], cfg: InputConfig) -> DataFrame:
    lines = spark.read.text(paths).select("value", *_position())
    value = F.col("value")
    reason = F.when(~F.is_valid_utf8(value), REJECT_INVALID_UTF8)
    return _records(
        lines.filter(F.trim(value) != ""),
        id=F.lit(None),
        tags=F.lit(None),
        tag_text=value,
        caption=F.lit(None),
        reason=reason,
        raw=F.make_valid_utf8(value),
    )


def _pick(df: DataFrame, name: str) -> Column:
    return F.col(f"`{name}`") if name in df.columns else F.lit(None)


def _require_fields(df: DataFrame, cfg: InputConfig, what: str) -> None:
    if cfg.label_field and cfg.label_field not in df.columns:
        raise InputError(
            f"the {what} input has no label field '{cfg.label_field}' (columns: "
            f"{', '.join(df.columns)})"
        )
    if not {cfg.tags_field, *cfg.text_fields} & set(df.columns):
        raise InputError(
            f"the {what} input has {_missing_fields_reason(cfg)} (columns: "
            f"{', '.join(df.columns)}); name the fields with --set input.tags_field=... "
            "or input.text_fields=[...]"
        )


def _read_csv(spark: SparkSession, paths: list[str], cfg: InputConfig) -> DataFrame:
    options = {
        "header": True,
        "sep": cfg.csv_delimiter,
        # RFC 4180: a quoted field may hold line breaks (captions do), "" is a quote in it
        "multiLine": cfg.csv_multiline,
        "escape": '"',
    }
    header = spark.read.options(**options).csv(paths)
    _require_fields(header, cfg, "CSV")
    corrupt = "_corrupt_record"
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in header.columns]
        + [T.StructField(corrupt, T.StringType())]
    )
    df = (
        spark.read.options(**options)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", corrupt)
        .schema(schema)
        .csv(paths)
        .select("*", *_position())
    )
    data_columns = [F.col(f"`{c}`") for c in header.columns]
    tags = _pick(df, cfg.tags_field)
    caption = F.coalesce(*[_pick(df, f) for f in cfg.text_fields])
    raw = F.coalesce(F.col(corrupt), F.concat_ws(cfg.csv_delimiter, *data_columns))
    reason = (
        F.when(F.col(corrupt).isNotNull(), REJECT_MALFORMED_CSV)
        # the CSV reader decodes invalid bytes to U+FFFD
        .when(raw.contains("\ufffd"), REJECT_INVALID_UTF8)
        .when(tags.isNull() & caption.isNull(), _missing_fields_reason(cfg))
    )
    return _records(
        df,
        id=_pick(df, cfg.id_field),
        tags=F.lit(None),
        tag_text=tags,
        caption=caption,
        reason=reason,
        raw=raw,
        label=_pick(df, cfg.label_field),
    )


def _read_parquet(spark: SparkSession, paths: list[str], cfg: InputConfig) -> DataFrame:
    df = spark.read.parquet(*paths)
    _require_fields(df, cfg, "Parquet")
    fields = {f.name: f.dataType for f in df.schema.fields}
    tags_type = fields.get(cfg.tags_field)
    is_list = isinstance(tags_type, T.ArrayType) and isinstance(tags_type.elementType, T.StringType)
    if tags_type is not None and not (is_list or isinstance(tags_type, T.StringType)):
        raise InputError(
            f"Parquet column '{cfg.tags_field}' is {tags_type.simpleString()}; "
            "expected a string or an array of strings"
        )
    df = df.select("*", *_position())
    tags = _pick(df, cfg.tags_field)
    caption = F.coalesce(*[_pick(df, f).cast("string") for f in cfg.text_fields])
    reason = F.when(tags.isNull() & caption.isNull(), _missing_fields_reason(cfg))
    return _records(
        df,
        id=_pick(df, cfg.id_field),
        tags=tags if is_list else F.lit(None),
        tag_text=F.lit(None) if is_list else tags,
        caption=caption,
        reason=reason,
        raw=F.to_json(F.struct(*[F.col(f"`{c}`") for c in fields])),
        label=_pick(df, cfg.label_field),
    )


def _common_folder(paths: list[str]) -> str:
    """The longest common folder of file paths or URIs, compared as text so that
    ``hdfs://host/a`` keeps its double slash (``os.path`` would fold it)."""
    folders = [p.split("/")[:-1] for p in paths]
    common: list[str] = []
    for parts in zip(*folders, strict=False):  # stop at the shortest path
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    return "/".join(common)


def with_record_numbers(records: DataFrame, splits: list[Row] | None = None) -> DataFrame:
    """Replace the file helpers with ``source`` (the file, relative to the inputs' common
    folder) and ``record`` (1-based number of the record within its file); ``_pos`` stays
    as a unique row key.

    Spark numbers rows within a partition (``_pos``); a file split's rows are contiguous
    in one partition, so counting each split's rows (a tiny table, one row a split) and
    adding up the earlier splits of the same file gives the record number. ``splits``
    (``_file, _block, _first, n`` rows, several per split allowed: they are added up) is
    that table when the caller has it already (:func:`tagspark.posts.summarise_records`);
    else ``records`` is read once for it and should be cached.
    """
    if splits is None:
        splits = (
            records.groupBy("_file", "_block")
            .agg(F.min("_pos").alias("_first"), F.count(F.lit(1)).alias("n"))
            .collect()  # one row per file split, not per record
        )
    # (file, split) -> (its first _pos, its rows)
    merged: dict[tuple[str, int], tuple[int, int]] = {}
    for r in splits:
        first, n = merged.get((r["_file"], r["_block"]), (r["_first"], 0))
        merged[(r["_file"], r["_block"])] = (min(first, r["_first"]), n + r["n"])
    files = sorted({file for file, _ in merged})
    if not files:  # nothing was read
        return records.select(
            F.lit(None).cast("string").alias("source"),
            F.lit(None).cast("long").alias("record"),
            "_pos",
            *[c for c in records.columns if not c.startswith("_")],
        )
    prefix = _common_folder(files)
    rows, seen = [], Counter()
    for (file, block), (first, n) in sorted(merged.items()):
        # Spark names a file by its URI, percent-encoded: the source is the name as it is
        name = unquote(file[len(prefix) :].lstrip("/") if prefix else file)
        # record = _pos - _first + 1 + (rows in earlier splits of the same file)
        rows.append((file, block, name, 1 + seen[file] - first))
        seen[file] += n
    offsets = records.sparkSession.createDataFrame(
        rows, "_file string, _block long, source string, _offset long"
    )
    numbered = records.join(F.broadcast(offsets), ["_file", "_block"])
    return numbered.select(
        "source",
        (F.col("_pos") + F.col("_offset")).alias("record"),
        "_pos",
        *[c for c in records.columns if not c.startswith("_")],
    )
