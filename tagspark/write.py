"""Writing a run's output, all of it into a staging folder that is published at the end,
so a failed or killed run never leaves a half-written output folder and never damages the
previous one. Every file goes through :mod:`tagspark.storage` (the Hadoop
FileSystem on a classic session, pyarrow.fs on Spark Connect) or Spark's writers, so the
output may be any URI the cluster's Spark can write.

Layout of the output folder::

    categories.json      categories.parquet      summary.md       report.html      _COMPLETE
    assignments/         (Parquet: id, category_id, distance; one row per kept post)
    rejected/            (JSON Lines: source, record, reason, raw; one row per rejected record)
    model/               (the fitted model, :mod:`tagspark.model`) + model/metadata.json

Publishing: on filesystems that rename folders atomically (``file://``, ``hdfs://``,
``viewfs://``) the finished staging folder is renamed into place, the old output first
renamed aside, so ``output`` is at every moment the old complete output or the new one. On
object stores (``s3a://``, ``gs://``, ``abfs://``...), where a rename is a copy, the old
output is deleted, the staging folder copied into place, and ``_COMPLETE`` written last: an
output folder without ``_COMPLETE`` is partial (a run still publishing, or one that died).

Staging folders are named ``.<output>.tmp-<run id>`` and hold a lease file that their run
rewrites every ``lease / 4`` seconds. A staging folder whose lease is older than
``output.staging_lease_seconds`` belongs to a run that died (on any machine) and is removed
by the next run to the same output; no process id is involved.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame

from tagspark import storage as st
from tagspark.errors import OutputError
from tagspark.evaluate import describe
from tagspark.naming import Category

log = logging.getLogger(__name__)

COMPLETE = "_COMPLETE"
LEASE = "_tagspark_lease.json"


def check_output(output: str, overwrite: bool, input_paths: tuple[str, ...] = ()) -> str:
    """Check the output folder before Spark starts and return it as a URI.

    A local path (no scheme) is checked here; a URI (``file://``, ``hdfs://``...) only for
    overlapping an input, the rest once Spark runs (:func:`check_output_uri`).

    Raises
    ------
    OutputError
        An existing path without ``overwrite``, an existing file, a parent that is missing
        or not writable, or an output inside an input folder.
    """
    if st.is_uri(output):
        _check_overlap(output.rstrip("/"), output, input_paths)
        return output.rstrip("/")
    path = Path(output).expanduser().absolute()
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
    uri = st.as_uri(str(path))
    _check_overlap(uri, output, input_paths)
    return uri


def _check_overlap(uri: str, output: str, input_paths: tuple[str, ...]) -> None:
    for given in input_paths:
        source = st.as_uri(given).rstrip("/")
        if uri == source or uri.startswith(source + "/") or source.startswith(uri + "/"):
            raise OutputError(
                f"output '{output}' overlaps the input '{given}'; write the output elsewhere"
            )


def check_output_uri(storage: st.Storage, output: str, overwrite: bool) -> None:
    """The checks of :func:`check_output` that need the filesystem, for a URI output."""
    if storage.exists(output):
        if not storage.is_dir(output):
            raise OutputError(f"output '{output}' exists and is not a folder")
        if not overwrite:
            raise OutputError(
                f"output folder '{output}' already exists; choose another or pass --overwrite"
            )
    parent = st.parent(output)
    if st.renames_atomically(output) and not storage.is_dir(parent):
        raise OutputError(f"the parent folder of output '{output}' does not exist")


def display(uri: str) -> str:
    """A ``file://`` URI as the local path a person typed; any other URI as it is."""
    return st.shown(uri)


class Staging:
    """The staging folder of one run: created with its lease, kept alive by a heartbeat
    thread, then published or discarded."""

    def __init__(self, storage: st.Storage, output: str, lease_seconds: float) -> None:
        self.storage = storage
        self.output = output
        self.run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}"
        self.uri = st.join(st.parent(output), f".{st.name(output)}.tmp-{self.run_id}")
        self.lease_seconds = lease_seconds
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def start(self) -> Staging:
        """Remove stale staging folders of the same output, then create this run's."""
        for stale in sweep_stale_staging(self.storage, self.output, self.lease_seconds):
            log.info("removed %s, left by a run that died", stale)
        self.storage.mkdirs(self.uri)
        self._renew()
        self._heartbeat = threading.Thread(target=self._beat, name="staging-lease", daemon=True)
        self._heartbeat.start()
        return self

    def _renew(self) -> None:
        lease = {"run": self.run_id, "host": socket.gethostname(), "pid": os.getpid()}
        self.storage.write_text(st.join(self.uri, LEASE), json.dumps(lease) + "\n")

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 4):
            try:
                self._renew()
            except Exception as exc:  # the run itself will meet the same fault
                log.debug("could not renew the staging lease: %s", exc)

    def _end(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()

    def path(self, *names: str) -> str:
        return st.join(self.uri, *names)

    def publish(self, overwrite: bool) -> None:
        """Put the finished staging folder in the output's place (see the module
        docstring); its lease goes, ``_COMPLETE`` comes.

        Raises
        ------
        OutputError
            The output appeared meanwhile (another run published it first) and
            ``overwrite`` is off, or the final rename lost that race.
        """
        for hook in BEFORE_PUBLISH:
            hook()
        self._end()
        storage, output = self.storage, self.output
        storage.delete(self.path(LEASE))
        atomic = st.renames_atomically(output)
        marker = json.dumps(
            {
                "run": self.run_id,
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
        )
        if atomic:
            storage.write_text(self.path(COMPLETE), marker + "\n")
        old = None
        if storage.exists(output):
            if not overwrite:
                raise _published_meanwhile(output)
            if atomic:
                old = st.join(st.parent(output), f".{st.name(output)}.old-{self.run_id}")
                storage.rename(output, old)
            else:
                storage.delete(output)
        try:
            storage.rename(self.uri, output)
        except Exception as exc:  # the JVM's or pyarrow's: put the old output back
            if old is not None:
                storage.rename(old, output)
            if storage.exists(output):
                raise _published_meanwhile(output) from exc
            raise
        if old is not None:
            storage.delete(old)
        if not atomic:
            storage.write_text(st.join(output, COMPLETE), marker + "\n")

    def discard(self) -> None:
        """Remove the staging folder of a run that failed."""
        self._end()
        try:
            self.storage.delete(self.uri)
        except Exception as exc:  # the JVM died: a local folder goes without it
            if self.uri.startswith("file://"):
                shutil.rmtree(st.shown(self.uri), ignore_errors=True)
            else:  # the next run to this output sweeps it once its lease expires
                log.debug("could not remove %s: %s", self.uri, exc)


# called right before a run publishes; the CLI adds a pause here when the environment
# variable TAGSPARK_PAUSE_BEFORE_PUBLISH (seconds) is set, so that a test can kill a run
# whose output is complete but not yet published
BEFORE_PUBLISH: list = []


def _published_meanwhile(output: str) -> OutputError:
    return OutputError(
        f"output folder '{display(output)}' was published by another run while this one "
        "ran; nothing of this run was published (pass --overwrite to replace it)"
    )


def sweep_stale_staging(storage: st.Storage, output: str, lease_seconds: float) -> list[str]:
    """Remove the staging (and set-aside) folders of ``output`` whose lease is older than
    ``lease_seconds``: their runs died. Returns what was removed."""
    folder, prefix = st.parent(output), f".{st.name(output)}."
    if not storage.is_dir(folder):
        return []
    removed = []
    now = time.time()
    for entry in storage.list(folder):
        kind = entry.name[len(prefix) :].split("-", 1)[0]
        if not (entry.is_dir and entry.name.startswith(prefix) and kind in ("tmp", "old")):
            continue
        touched = storage.modified(st.join(entry.uri, LEASE))
        if touched is None:  # set aside, or its run died before writing the lease
            touched = entry.modified
        # another run starting on the same output may sweep the same folder first
        if now - touched > lease_seconds and storage.delete(entry.uri):
            removed.append(entry.uri)
    return removed


def files_for(rows: int, rows_per_file: int) -> int:
    """How many files to write ``rows`` rows in (at least one)."""
    return max(1, math.ceil(rows / rows_per_file))


def write_rows(
    df: DataFrame, uri: str, fmt: str, rows: int, rows_per_file: int, shuffle: bool = True
) -> None:
    """Write ``df`` as ``fmt`` in files of about ``rows_per_file`` rows; with ``shuffle``
    off, each of its partitions writes its own files of at most that many rows (for rows
    that are costly to move, such as suggestions: no task gathers them)."""
    if shuffle:
        df = df.repartition(files_for(rows, rows_per_file))
    df.write.option("maxRecordsPerFile", rows_per_file).format(fmt).save(uri)


def write_categories(storage: st.Storage, categories: list[Category], folder: str) -> None:
    """``categories.json`` (a list, largest category first) and ``categories.parquet`` (the
    same as one Parquet file, written with pyarrow: no Spark job for k rows)."""
    from tagspark.model import categories_table, parquet_bytes

    write_json(storage, [c.to_dict() for c in categories], st.join(folder, "categories.json"))
    table = parquet_bytes(categories_table(categories))
    storage.write_bytes(st.join(folder, "categories.parquet"), table)


def write_model(storage: st.Storage, fitted, folder: str) -> None:
    """The fitted model's folder (:mod:`tagspark.model`), and its Spark pipeline (tfidf)."""
    from tagspark.model import PIPELINE

    model = fitted.model
    model.save(folder, lambda name, data: storage.write_bytes(st.join(folder, name), data))
    if fitted.pipeline is not None:
        fitted.pipeline.write().save(st.join(folder, PIPELINE))


def write_json(storage: st.Storage, data: Any, uri: str) -> None:
    storage.write_text(uri, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


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
