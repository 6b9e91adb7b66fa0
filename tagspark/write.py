"""Writing a run's output, all of it into a staging folder that is published at the end
by a rename, so a failed or killed run never leaves a half-written output folder and never
damages the previous one.

Layout of the output folder::

    categories.json      categories.parquet      summary.md
    assignments/         (Parquet: id, category_id, distance; one row per kept post)
    rejected/            (JSON Lines: source, record, reason, raw; one row per rejected record)
    model/               (the fitted PipelineModel) + model/metadata.json
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyspark.sql import DataFrame, SparkSession

from tagspark.categories import Category
from tagspark.errors import OutputError
from tagspark.evaluate import describe

CATEGORY_SCHEMA = (
    "id int, name string, leading_tags array<string>, size long, "
    "tags array<struct<tag: string, weight: double, posts: long>>"
)


def check_output(output: str, overwrite: bool, input_paths: tuple[str, ...] = ()) -> Path:
    """Check the output folder before Spark starts and return it as an absolute path.

    Raises
    ------
    OutputError
        A path with a remote scheme, an existing path without ``overwrite``, an existing
        file, a parent that is missing or not writable, or an output inside an input folder.
    """
    parsed = urlparse(output)
    if len(parsed.scheme) > 1 and parsed.scheme != "file":
        raise OutputError(
            f"output '{output}' is not a local path; write to a local or mounted folder"
        )
    path = Path(output.removeprefix("file://")).expanduser().absolute()
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"output '{output}' exists and is not a folder")
        if not overwrite:
            raise OutputError(
                f"output folder '{output}' already exists; choose another or pass --overwrite"
            )
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"the parent folder of output '{output}' does not exist")
    try:  # a real write, not os.access: root on a read-only mount gets refused too
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=f".{path.name}.probe-"))
    except OSError as exc:
        raise OutputError(
            f"output '{output}' cannot be written: {exc.strerror.lower()} in '{parent}'"
        ) from None
    for given in input_paths:
        if urlparse(given).scheme not in ("", "file"):
            continue
        source = Path(given.removeprefix("file://")).absolute()
        if path == source or source in path.parents or path in source.parents:
            raise OutputError(
                f"output '{output}' overlaps the input '{given}'; write the output elsewhere"
            )
    return path


def staging_path(output: Path) -> Path:
    """A fresh hidden sibling of ``output`` to write into, named with this process's id."""
    return output.with_name(f".{output.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def sweep_stale_staging(output: Path) -> list[Path]:
    """Remove staging folders of ``output`` left by runs that were killed (their process is
    gone); folders of runs still alive are left alone. Returns what was removed."""
    removed = []
    for candidate in output.parent.glob(f".{glob.escape(output.name)}.tmp-*"):
        pid = candidate.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def publish(staging: Path, output: Path) -> None:
    """Move the finished ``staging`` folder to ``output``, replacing an old one.

    The old output is first renamed aside, so at every moment ``output`` is either the old
    complete output or the new complete one.
    """
    old = None
    if output.exists():
        old = output.with_name(f".{output.name}.old-{uuid.uuid4().hex[:12]}")
        os.rename(output, old)
    try:
        os.rename(staging, output)
    except OSError:
        if old is not None:
            os.rename(old, output)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def discard(staging: Path) -> None:
    """Remove a staging folder left by a failed run."""
    shutil.rmtree(staging, ignore_errors=True)


def files_for(rows: int, rows_per_file: int) -> int:
    """How many files to write ``rows`` rows in (at least one)."""
    return max(1, math.ceil(rows / rows_per_file))


def write_rows(df: DataFrame, path: Path, fmt: str, rows: int, rows_per_file: int) -> None:
    """Write ``df`` as ``fmt`` in files of about ``rows_per_file`` rows."""
    (
        df.repartition(files_for(rows, rows_per_file))
        .write.option("maxRecordsPerFile", rows_per_file)
        .format(fmt)
        .save(path.as_uri())
    )


def write_categories(spark: SparkSession, categories: list[Category], folder: Path) -> None:
    """``categories.json`` (a list, largest category first) and ``categories.parquet``."""
    dicts = [c.to_dict() for c in categories]
    write_json(dicts, folder / "categories.json")
    rows = [
        (
            d["id"],
            d["name"],
            d["leading_tags"],
            d["size"],
            [(t["tag"], t["weight"], t["posts"]) for t in d["tags"]],
        )
        for d in dicts
    ]
    frame = spark.createDataFrame(rows, CATEGORY_SCHEMA)
    frame.coalesce(1).write.parquet((folder / "categories.parquet").as_uri())


def write_json(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def summary_markdown(categories: list[Category], metadata: dict[str, Any], shown: int = 8) -> str:
    """A readable report: the categories as a table, then what was read and rejected."""
    counts = metadata["counts"]
    kept = max(counts["kept"], 1)
    lines = [
        "# tagspark categories",
        "",
        f"{len(categories)} categories from {counts['kept']:,} posts "
        f"(k={metadata['config']['kmeans']['k']}, seed={metadata['config']['kmeans']['seed']}).",
        "",
        "| id | name | posts | share | leading tags (weight) |",
        "|---:|---|---:|---:|---|",
    ]
    for c in categories:
        tags = ", ".join(f"#{t.tag} ({t.weight:.3f})" for t in c.tags[:shown])
        lines.append(
            f"| {c.id} | {_cell(c.name)} | {c.size:,} | {c.size / kept:.1%} | {_cell(tags)} |"
        )
    lines += [
        "",
        "## Input",
        "",
        "| records | count |",
        "|---|---:|",
        f"| read | {counts['read']:,} |",
        f"| rejected | {counts['rejected']:,} |",
        f"| without tags (dropped) | {counts['no_tags']:,} |",
        f"| kept | {counts['kept']:,} |",
        f"| over the tag cap (kept, truncated) | {counts['truncated']:,} |",
    ]
    generic = metadata.get("generic_tags") or []
    lines += [
        "",
        "## Generic tags and the mixed bucket",
        "",
        f"{len(generic)} generic tag(s), kept out of names: "
        + (", ".join(f"#{g['tag']} ({g['source']})" for g in generic[:30]) or "none")
        + ".",
        f"{counts.get('mixed', 0):,} posts carry no category-specific tag and are in `mixed` "
        "(id -1).",
    ]
    chosen = metadata.get("choose_k")
    if chosen:
        lines += [
            "",
            f"## Choosing k ({chosen['k_range']}, {chosen['sample_posts']:,} sampled posts)",
            "",
            "| k | cost | silhouette |",
            "|---:|---:|---:|",
        ]
        lines += [
            f"| {p['k']} | {p['cost']:.4f} | {p['silhouette']:.4f} |" for p in chosen["curve"]
        ]
        lines += [
            "",
            f"Chosen k = {chosen['chosen_k']} (highest silhouette); plot: `choose_k.png`.",
        ]
    scored = metadata.get("evaluation")
    if scored:
        label = metadata["config"]["input"]["label_field"]
        lines += [
            "",
            f"## Against the labels in '{label}'",
            "",
            f"{scored['posts']:,} labelled posts: {describe(scored)}. "
            "Top labels per category are in `evaluation.json`.",
        ]
    if metadata["rejected_by_reason"]:
        lines += ["", "Rejected records are in `rejected/`, by reason:", ""]
        lines += [f"- {reason}: {n:,}" for reason, n in metadata["rejected_by_reason"].items()]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
