"""A real Spark standalone cluster on 127.0.0.1: spark-submit of the packaged job with a
worker killed during k-means, and a job killed outright, then rerun on one core.

The master and two workers are started with pyspark's own ``bin/spark-class`` and always
torn down by process group id, also when a test fails. ``make dist`` builds what is
submitted. Select with ``pytest -m cluster``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from tagspark.cli import main, sample_corpus
from tests.conftest import free_port, kill_group, start_logged, wait_for

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
SPARK_HOME = Path(pyspark.__file__).parent
# 2^14 buckets keep the runs short; the sample corpus has under 100 distinct tags
JOB_ARGS = ["--k", "5", "--seed", "42", "--set", "features.num_features=16384"]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``make dist``, and the environment archive unpacked as an executor would."""
    subprocess.run(["make", "-s", "dist"], cwd=ROOT, check=True)
    env_dir = tmp_path_factory.mktemp("environment")
    with tarfile.open(ROOT / "dist" / "env.tar.gz") as tar:
        tar.extractall(env_dir, filter="fully_trusted")
    return ROOT / "dist", env_dir


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A standalone master and two 1-core workers; yields (master URL, worker processes)."""
    tmp = tmp_path_factory.mktemp("standalone")
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_NO_DAEMONIZE": "1",
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        master = start_logged(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(free_port()),
            ],
            tmp / "master.log",
            env,
        )
        procs.append(master)
        wait_for(tmp / "master.log", "I have been elected leader", master)
        workers = []
        for i in range(2):
            log = tmp / f"worker{i}.log"
            worker = start_logged(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "2g",
                    "--webui-port",
                    str(free_port()),
                    "--work-dir",
                    str(tmp / f"work{i}"),
                ],
                log,
                env,
            )
            procs.append(worker)
            workers.append(worker)
            wait_for(log, "Successfully registered with master", worker)
        yield url, workers
    finally:
        for proc in reversed(procs):
            kill_group(proc)


def _submit_cmd(dist_dir: Path, env_dir: Path, url: str, out: Path) -> list[str]:
    return [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--master",
        url,
        "--deploy-mode",
        "client",
        "--py-files",
        str(dist_dir / "tagspark.zip"),
        "--archives",
        f"{dist_dir / 'env.tar.gz'}#environment",
        "--conf",
        "spark.pyspark.python=./environment/bin/python",
        # the driver runs here: the unpacked environment has numpy but not tagspark, so
        # tagspark is imported from the zip
        "--conf",
        f"spark.pyspark.driver.python={env_dir / 'bin' / 'python'}",
        "--conf",
        "spark.executor.memory=1g",
        "--conf",
        "spark.ui.enabled=false",
        "--conf",
        "spark.sql.shuffle.partitions=8",
        str(ROOT / "jobs" / "cluster_tags.py"),
        "--input",
        str(sample_corpus()),
        "--output",
        str(out),
        *JOB_ARGS,
    ]


def _submit_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}


def _assert_same_output(out: Path, expected: Path) -> None:
    """The same categories.json (weights to 1e-9) and the same category for every post."""
    got, want = (json.loads((p / "categories.json").read_text()) for p in (out, expected))
    assert [(c["id"], c["name"], c["size"]) for c in got] == [
        (c["id"], c["name"], c["size"]) for c in want
    ]
    for g, w in zip(got, want, strict=True):
        assert [{**t, "weight": 0} for t in g["tags"]] == [{**t, "weight": 0} for t in w["tags"]]
        assert [t["weight"] for t in g["tags"]] == pytest.approx(
            [t["weight"] for t in w["tags"]], abs=1e-9
        )
    got_rows, want_rows = (pq.read_table(p / "assignments").to_pylist() for p in (out, expected))
    assert {r["id"]: r["category_id"] for r in got_rows} == {
        r["id"]: r["category_id"] for r in want_rows
    }
    assert len(got_rows) == len(want_rows) == 3000


@pytest.fixture(scope="module")
def local_run(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    assert (
        main(["cluster", "-q", "--input", str(sample_corpus()), "--output", str(out), *JOB_ARGS])
        == 0
    )
    return out


def _worker_running(markers: Path, timeout: float = 60) -> int:
    """The index (0 or 1) of the worker whose executor runs a delayed embedding task: the
    task's Python process left its pid in ``markers``; its working folder is in the
    worker's ``work<i>`` folder."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for marker in markers.iterdir():
            with contextlib.suppress(OSError):
                cwd = os.readlink(f"/proc/{marker.name}/cwd")
                for i in (0, 1):
                    if f"/work{i}/" in cwd + "/":
                        return i
        time.sleep(0.2)
    raise TimeoutError("no delayed task started")


def test_spark_submit_on_a_standalone_cluster_matches_local_mode_with_a_worker_killed(
    dist, cluster, local_run, tmp_path
):
    """The packaged job, submitted to the cluster, loses the worker running one of k-means'
    first tasks and still gives local mode's output."""
    url, workers = cluster
    out = tmp_path / "out"
    log = tmp_path / "submit.log"
    markers = tmp_path / "markers"
    markers.mkdir()
    cmd = _submit_cmd(*dist, url, out)
    # k-means' first job embeds its sample: each of those tasks waits 10 s (a test hook),
    # and the worker running one is killed while it waits; later tasks do not wait
    hook = ["--conf", "spark.executorEnv.TAGSPARK_TEST_TASK_DELAY=10",
            "--conf", f"spark.executorEnv.TAGSPARK_TEST_TASK_MARKERS={markers}"]  # fmt: skip
    cmd[1:1] = hook
    proc = start_logged(cmd, log, _submit_env())
    try:
        wait_for(log, "k-means: k=5 on about", proc, timeout=300)
        victim = _worker_running(markers)
        os.killpg(workers[victim].pid, signal.SIGKILL)  # the worker and its executor
        (markers / "done").touch()
        assert proc.wait(600) == 0, log.read_text()[-5000:]
    finally:
        kill_group(proc)
    assert workers[victim].wait(10) is not None
    text = log.read_text()
    assert f"master {url}" in text and "tagspark.zip" in text
    # the executor was lost with the task it ran, and the task ran again (attempt 1 or later;
    # it may meet the lost shuffle output there, and its stage runs again)
    assert "Lost executor" in text, text[-5000:]
    assert re.search(r"task \d+\.[1-9]\d* in stage", text), text[-5000:]
    _assert_same_output(out, local_run)


def test_a_job_killed_outright_leaves_the_previous_output_and_its_rerun_on_one_core_matches(
    local_run, tmp_path
):
    out = tmp_path / "out"
    shutil.copytree(local_run, out)  # the previous output
    before = (out / "categories.json").read_bytes()
    cmd = [
        sys.executable,
        "-m",
        "tagspark.cli",
        "cluster",
        "--input",
        str(sample_corpus()),
        "--output",
        str(out),
        *JOB_ARGS,
        "--overwrite",
    ]
    log = tmp_path / "killed.log"
    # the run writes its whole output, then waits before publishing: killed there, it is
    # certain not to have published
    env = {**os.environ, "TAGSPARK_PAUSE_BEFORE_PUBLISH": "600"}
    proc = start_logged([*cmd, "--seed", "7"], log, env)
    try:
        wait_for(log, "pausing 600 s before publishing", proc, timeout=300)
        os.killpg(proc.pid, signal.SIGKILL)  # the Python driver and its JVM
        proc.wait(30)
    finally:
        kill_group(proc)
    assert (out / "categories.json").read_bytes() == before
    assert json.loads((out / "model" / "metadata.json").read_text())["seed"] == 42  # not 7
    staging = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")]
    assert len(staging) == 1  # the killed run's, with its lease
    killed = tmp_path / staging[0]
    assert json.loads((killed / "model" / "metadata.json").read_text())["seed"] == 7
    assert sorted(os.listdir(out)) == sorted(os.listdir(local_run))
    # a rerun on one core (local[1], a process of its own: one JVM per master) succeeds,
    # gives local[2]'s output for the same seed, and sweeps the killed run's staging folder
    # once its lease (4 s for this rerun) has expired
    time.sleep(5)
    rerun = subprocess.run(
        [*cmd, "-q", "--master", "local[1]", "--set", "output.staging_lease_seconds=4"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _assert_same_output(out, local_run)
    assert json.loads((out / "model" / "metadata.json").read_text())["master"] == "local[1]"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tmp-")] == []
