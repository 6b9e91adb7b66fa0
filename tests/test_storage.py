"""Outputs and inputs as URIs through the Hadoop FileSystem API, publishing, the staging
lease and its sweep (issue #12), and environment failures told in one line."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from py4j.protocol import Py4JJavaError

from tagspark import storage as st
from tagspark import write
from tagspark.cli import main
from tagspark.errors import OutputError
from tagspark.read import resolve_inputs, resolve_remote_inputs
from tests.conftest import OUTPUT_LAYOUT, TOY_POSTS, write_jsonl


@pytest.fixture(params=["hadoop", "arrow"])
def storage(request):
    """Each backend: the Hadoop FileSystem (a classic session's) and pyarrow.fs (a Spark
    Connect client's)."""
    if request.param == "arrow":
        return st.ArrowStorage()
    return st.HadoopStorage(request.getfixturevalue("spark"))


def test_a_job_reads_and_writes_file_uris_through_hadoop(spark, tmp_path, capsys):
    folder = tmp_path / "in" / "day1"
    folder.mkdir(parents=True)
    write_jsonl(folder / "a.jsonl", TOY_POSTS[:3])
    write_jsonl(folder / "b.jsonl", TOY_POSTS[3:])
    (folder / "_SUCCESS").write_text("")  # skipped, as Hadoop writers' markers are
    out = f"{(tmp_path / 'out').as_uri()}"
    inp = f"{(tmp_path / 'in').as_uri()}"
    # a URI input is listed by Hadoop once Spark runs: the folder's format is told then
    assert resolve_inputs([inp]).deferred
    assert main(["cluster", "--input", inp, "--output", out, "--k", "2", "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"Output: {tmp_path / 'out'}"
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == OUTPUT_LAYOUT
    complete = json.loads((tmp_path / "out" / "_COMPLETE").read_text())
    assert set(complete) == {"run", "finished_at"}
    categories = json.loads((tmp_path / "out" / "categories.json").read_text())
    assert sorted(c["leading_tags"][0] for c in categories) == ["architecture", "food"]
    meta = json.loads((tmp_path / "out" / "model" / "metadata.json").read_text())
    assert meta["input"]["files"] == 2 and meta["counts"]["kept"] == 6
    # no staging folder, lease or checksum file is left beside or inside the output
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]
    assert not [n for n in names if n.endswith(".crc") or n == write.LEASE]
    # the same URI again: refused without --overwrite, by the Hadoop-side check
    assert main(["cluster", "--input", inp, "--output", out, "--k", "2", "-q"]) == 1
    assert "already exists; choose another or pass --overwrite" in capsys.readouterr().err


def test_remote_inputs_are_listed_and_their_format_told_by_hadoop(storage, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    write_jsonl(tmp_path / "in" / "sub" / "x.jsonl", TOY_POSTS)
    (tmp_path / "in" / ".hidden.jsonl").write_text("{}")
    spec = resolve_remote_inputs(storage, resolve_inputs([(tmp_path / "in").as_uri()]))
    assert spec.format == "jsonl" and not spec.deferred
    assert [p.split("/in/")[1] for p in spec.paths] == ["sub/x.jsonl"]
    with pytest.raises(Exception, match="does not exist"):
        resolve_inputs([(tmp_path / "nope").as_uri()], "auto", storage)


def _staging(storage, tmp_path, name: str, lease: float = 120) -> write.Staging:
    staging = write.Staging(storage, (tmp_path / "out").as_uri(), lease).start()
    storage.write_text(staging.path(name), name)
    return staging


def test_publish_replaces_the_output_whole_and_marks_it_complete(storage, tmp_path):
    first = _staging(storage, tmp_path, "a")
    first.publish(overwrite=False)
    assert sorted(os.listdir(tmp_path / "out")) == ["_COMPLETE", "a"]
    second = _staging(storage, tmp_path, "b")
    second.publish(overwrite=True)
    assert sorted(os.listdir(tmp_path / "out")) == ["_COMPLETE", "b"]
    assert sorted(os.listdir(tmp_path)) == ["out"]  # the old output set aside, then removed
    marker = json.loads((tmp_path / "out" / "_COMPLETE").read_text())
    assert marker["run"] == second.run_id != first.run_id


def test_of_two_runs_to_one_output_only_the_first_publishes(storage, tmp_path):
    first = _staging(storage, tmp_path, "a")
    second = _staging(storage, tmp_path, "b")
    first.publish(overwrite=False)
    with pytest.raises(OutputError, match="was published by another run while this one ran"):
        second.publish(overwrite=False)
    second.discard()
    assert sorted(os.listdir(tmp_path / "out")) == ["_COMPLETE", "a"]
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_the_atomic_rename_never_moves_a_folder_into_one_that_appeared(storage, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    (tmp_path / "dst").mkdir()
    refused = (
        pytest.raises(Py4JJavaError, match="FileAlreadyExistsException")
        if isinstance(storage, st.HadoopStorage)
        else pytest.raises(FileExistsError)
    )
    with refused:
        storage.rename((tmp_path / "src").as_uri(), (tmp_path / "dst").as_uri())
    assert os.listdir(tmp_path / "dst") == [] and os.listdir(tmp_path / "src") == ["f"]


def test_on_object_stores_complete_is_written_after_the_copy(storage, tmp_path, monkeypatch):
    monkeypatch.setattr(st, "renames_atomically", lambda uri: False)
    order = []
    real = storage.write_text

    def spy(uri, text):
        order.append((uri.rsplit("/", 1)[1], os.path.isdir(tmp_path / "out")))
        real(uri, text)

    staging = _staging(storage, tmp_path, "a")
    monkeypatch.setattr(storage, "write_text", spy)
    staging.publish(overwrite=False)
    # _COMPLETE is the last thing written, into the output, once the copy is in place
    assert order == [("_COMPLETE", True)]
    assert sorted(os.listdir(tmp_path / "out")) == ["_COMPLETE", "a"]


def test_staging_whose_lease_expired_is_swept_and_a_live_one_kept(storage, tmp_path):
    out = (tmp_path / "out").as_uri()
    live = write.Staging(storage, out, 0.4).start()  # renews its lease every 0.1 s
    dead = write.Staging(storage, out, 60).start()
    dead._end()  # its driver died: nobody renews the lease
    lease = tmp_path / f".out.tmp-{dead.run_id}" / write.LEASE
    os.utime(lease, (time.time() - 61, time.time() - 61))
    aside = tmp_path / ".out.old-20260101T000000-abc"  # set aside by a run that died
    aside.mkdir()
    os.utime(aside, (time.time() - 61, time.time() - 61))
    other = tmp_path / ".other.tmp-20260101T000000-abc"  # another output's
    other.mkdir()
    os.utime(other, (time.time() - 61, time.time() - 61))
    removed = write.sweep_stale_staging(storage, out, 60)
    assert sorted(st.name(u) for u in removed) == sorted([aside.name, lease.parent.name])
    assert sorted(os.listdir(tmp_path)) == sorted([f".out.tmp-{live.run_id}", other.name])
    # the live run's heartbeat keeps renewing its lease
    live_lease = tmp_path / f".out.tmp-{live.run_id}" / write.LEASE
    before = live_lease.stat().st_mtime
    time.sleep(0.5)
    assert live_lease.stat().st_mtime > before
    live._end()  # each renewal rewrites the file: read what it says once they stopped
    assert json.loads(live_lease.read_text())["run"] == live.run_id
    live.discard()
    assert sorted(os.listdir(tmp_path)) == [other.name]


def test_a_stale_folder_another_run_swept_first_is_neither_an_error_nor_reported(
    storage, tmp_path, monkeypatch
):
    out = (tmp_path / "out").as_uri()
    dead = write.Staging(storage, out, 60).start()
    dead._end()
    folder = tmp_path / f".out.tmp-{dead.run_id}"
    for dead_run in (folder / write.LEASE, folder):
        os.utime(dead_run, (time.time() - 61, time.time() - 61))
    listed = storage.list

    def then_swept_by_another_run(uri):
        entries = listed(uri)
        shutil.rmtree(folder)  # a second run starting on the same output got there first
        return entries

    monkeypatch.setattr(storage, "list", then_swept_by_another_run)
    assert write.sweep_stale_staging(storage, out, 60) == []
    assert not folder.exists()


def test_both_backends_list_glob_and_delete_alike(storage, tmp_path):
    folder = tmp_path / "a b [1]"
    (folder / "sub").mkdir(parents=True)
    (folder / "x1.jsonl").write_text("1")
    (folder / "x2.csv").write_text("2")
    uri = st.as_uri(str(folder))
    storage.write_bytes(st.join(uri, "new", "f.bin"), b"\x00\x01")
    assert storage.read_bytes(st.join(uri, "new", "f.bin")) == b"\x00\x01"
    assert [(e.name, e.is_dir) for e in storage.list(uri)] == [
        ("new", True), ("sub", True), ("x1.jsonl", False), ("x2.csv", False)
    ]  # fmt: skip
    glob = st.join(st.as_uri(str(tmp_path)), "a*", "x?.jsonl")
    assert [e.name for e in storage.glob(glob)] == ["x1.jsonl"]
    assert storage.delete(st.join(uri, "new")) and not storage.exists(st.join(uri, "new"))
    assert storage.delete(st.join(uri, "new")) is False
    assert (folder / "x1.jsonl").read_text() == "1"


def test_modified_and_is_dir_of_what_does_not_exist(storage, tmp_path):
    (tmp_path / "f").write_text("x")
    os.utime(tmp_path / "f", (1_700_000_000, 1_700_000_000))
    assert storage.modified((tmp_path / "f").as_uri()) == 1_700_000_000
    assert storage.modified((tmp_path / "gone").as_uri()) is None
    assert [storage.is_dir((tmp_path / n).as_uri()) for n in ("", "f", "gone")] == [
        True,
        False,
        False,
    ]


def test_running_out_of_memory_is_one_error_line_naming_stage_and_setting(
    spark, tmp_path, capsys, monkeypatch
):
    from tagspark import matrix

    def exhausted(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(matrix, "power_basis", exhausted)
    monkeypatch.setattr("tagspark.embedding.power_basis", exhausted)
    inp = write_jsonl(tmp_path / "posts.jsonl", TOY_POSTS)
    out = tmp_path / "out"
    args = ["cluster", "--input", str(inp), "--output", str(out), "--k", "2", "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err == (
        "Error: stage 'fit' ran out of memory (MemoryError); give the driver more memory "
        "(--set spark.conf.spark.driver.memory=16g, or spark-submit --driver-memory 16g), or "
        "lower features.max_tags (the tags the features use) or features.dims, or set "
        "features.matrix=distributed\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["posts.jsonl"]  # nothing published or staged
    # -v keeps the whole trace for a bug report
    assert main([*args, "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "in exhausted" in err
    assert err.splitlines()[-1].startswith("Error: stage 'fit' ran out of memory")


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "An error occurred while calling o81.collectToPython.\n"
            ": java.lang.OutOfMemoryError: Java heap space\n\tat java.base/...",
            "stage 'name' ran out of memory (java.lang.OutOfMemoryError: Java heap space); "
            "give the driver more memory",
        ),
        (
            "Job aborted: Total size of serialized results of 3 tasks (1100 MiB) is bigger "
            "than spark.driver.maxResultSize (1024.0 MiB)",
            "stage 'name' brought more to the driver than spark.driver.maxResultSize allows",
        ),
        (
            "java.io.IOException: No space left on device",
            "stage 'name' ran out of disk space (no space left on device)",
        ),
        ("Answer from Java side is empty", "stage 'name' lost the Spark driver's JVM"),
        (
            "An error occurred while calling o412.getResult.\n: org.apache.spark.SparkException: "
            "Exception thrown in awaitResult: \n\tat ...\nCaused by: org.apache.spark."
            "SparkException: Job 16 cancelled because SparkContext was shut down",
            "stage 'name' lost the Spark driver's JVM (it died, most often for want of memory)",
        ),
        (
            "org.apache.spark.SparkFileNotFoundException: [FAILED_READ_FILE.FILE_NOT_EXIST] "
            "File file:/data/posts/a.jsonl does not exist. It is possible the underlying files "
            "have been updated.",
            "stage 'name' found an input file gone (file:/data/posts/a.jsonl): it was deleted",
        ),
        (
            "org.apache.hadoop.security.AccessControlException: Permission denied: user=x, "
            'access=WRITE, inode="/out"',
            "stage 'name' was refused access to a file or folder (permission denied",
        ),
        (
            "java.io.FileNotFoundException: /srv/out/.out.tmp-1/summary.md (Permission denied)",
            "stage 'name' was refused access to a file or folder (permission denied: "
            "/srv/out/.out.tmp-1/summary.md)",
        ),
        (
            "Job aborted due to stage failure: Task 0 in stage 5.0 failed 4 times, most recent "
            "failure: Lost task 0.3 in stage 5.0 (TID 12) (10.0.0.5 executor 3): "
            "ExecutorLostFailure (executor 3 exited caused by one of the running tasks)",
            "stage 'name' lost Spark executors more often than a task may fail",
        ),
    ],
)
def test_environment_failures_are_recognised(text, expected):
    from tagspark.failures import explain

    assert str(explain(RuntimeError(text), "name")).startswith(expected)
    wrapped = ValueError("while naming")
    wrapped.__cause__ = RuntimeError(text)
    assert str(explain(wrapped, "name")).startswith(expected)
    assert explain(RuntimeError("KeyError: 'tags'"), "name") is None


@pytest.mark.slow
def test_a_real_out_of_memory_ends_in_one_error_line(tmp_path):
    """A tag matrix far larger than a 1g driver heap, forced onto the driver: the JVM runs
    out of memory for real, and the user gets one line, no Py4J traceback."""
    import subprocess
    import sys

    import numpy as np

    rng = np.random.default_rng(0)
    tags = rng.integers(0, 60_000, (120_000, 30))
    lines = "".join(" ".join(f"t{t}" for t in row) + "\n" for row in tags)
    (tmp_path / "posts.txt").write_text(lines)
    cmd = [sys.executable, "-m", "tagspark.cli", "cluster", "-q", "--k", "5"]
    cmd += ["--input", str(tmp_path / "posts.txt"), "--output", str(tmp_path / "out")]
    cmd += ["--set", "features.matrix=driver", "--set", "features.max_tags=0"]
    cmd += ["--set", "generic.detect=false", "--set", "spark.conf.spark.driver.memory=1g"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 1, run.stderr[-3000:]
    # one Error line (the JVM's own log and pyspark's socket threads may print after it)
    errors = [line for line in run.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, run.stderr[-3000:]
    last = errors[0]
    # the heap runs out in a task (an OutOfMemoryError) or kills the JVM outright
    assert last.startswith(
        ("Error: stage 'fit' ran out of memory (", "Error: stage 'fit' lost the Spark driver's JVM")
    ), run.stderr[-3000:]
    assert "for want of memory" in last or "OutOfMemoryError" in last
    assert "lower features.max_tags" in last
    assert "Py4JJavaError" not in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["posts.txt"]  # nothing published or staged
