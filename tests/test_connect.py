"""The job and the API on Spark Connect: a real Connect server (pyspark's own, started here
on 127.0.0.1) against a classic local session, on the same corpora with the same seed.

The CLI runs in a subprocess with ``--remote`` (or ``SPARK_REMOTE``), as a user runs it: a
process that has never started a JVM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pyspark
import pytest

from tagspark.cli import main
from tests.conftest import (
    SHARED_DATA,
    TOY_POSTS,
    free_port,
    kill_group,
    needs_stackexchange,
    start_logged,
    wait_for,
    write_jsonl,
)

SPARK_HOME = Path(pyspark.__file__).parent
pytestmark = pytest.mark.connect
SE = SHARED_DATA / "stackexchange_5sites.jsonl"


@pytest.fixture(scope="module")
def remote(tmp_path_factory):
    """``sc://127.0.0.1:PORT`` of a Spark Connect server in local[2] mode."""
    log = tmp_path_factory.mktemp("connect") / "server.log"
    port = free_port()
    cmd = [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master", "local[2]",
        "--driver-memory", "3g",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", "spark.ui.enabled=false",
        "spark-internal",
    ]  # fmt: skip
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "PYSPARK_PYTHON": sys.executable}
    env.pop("SPARK_REMOTE", None)
    server = start_logged(cmd, log, env)
    try:
        wait_for(log, "Spark Connect server started", server, timeout=120)
        yield f"sc://127.0.0.1:{port}"
    finally:
        kill_group(server)


def _cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    """``tagspark ARGS`` in a new process: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "tagspark.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return done.returncode, done.stdout, done.stderr


def _assignments(out: Path) -> dict[str, tuple[int, float]]:
    rows = pq.read_table(out / "assignments").to_pylist()
    return {r["id"]: (r["category_id"], round(r["distance"], 9)) for r in rows}


def _categories(out: Path) -> list[tuple[str, int, list[str]]]:
    found = json.loads((out / "categories.json").read_text())
    return [(c["name"], c["size"], [t["tag"] for t in c["tags"]]) for c in found]


SPECTRAL = ["--k", "5", "--label-field", "label"]


@pytest.fixture(scope="module")
def classic_se(spark, tmp_path_factory):
    """The Stack Exchange corpus clustered by a classic session with the default features:
    the reference of the Connect run and the model of ``assign`` and ``suggest``."""
    out = tmp_path_factory.mktemp("classic") / "out"
    assert main(["cluster", "-q", "--input", str(SE), "--output", str(out), *SPECTRAL]) == 0
    return out


@needs_stackexchange
@pytest.mark.parametrize(
    "options",
    [
        SPECTRAL,
        ["--k", "5", "--set", "features.matrix=distributed"],
        ["--k", "5", "--set", "features.method=tfidf"],
    ],
    ids=["spectral", "distributed-matrix", "tfidf"],
)
def test_cluster_on_connect_gives_classic_categories(request, remote, tmp_path, options):
    if options is SPECTRAL:
        classic = request.getfixturevalue("classic_se")
    else:
        classic = tmp_path / "classic"
        args = ["cluster", "-q", "--input", str(SE), "--output", str(classic), *options]
        assert main(args) == 0
    connect = tmp_path / "connect"
    code, out, err = _cli("cluster", "-q", "--input", str(SE), "--output", str(connect),
                          "--remote", remote, *options)  # fmt: skip
    assert code == 0, err
    assert _categories(connect) == _categories(classic)
    assert _assignments(connect) == _assignments(classic)
    assert sorted(os.listdir(connect)) == sorted(os.listdir(classic))
    meta = json.loads((connect / "model" / "metadata.json").read_text())
    assert meta["master"] == "connect (local[2])"
    if "label" in options:
        assert "NMI 0.893" in out  # docs/usage.md's figure for this corpus at k=5


@needs_stackexchange
def test_assign_suggest_and_choose_k_on_connect(classic_se, remote, tmp_path):
    for command, extra in (("assign", []), ("suggest", ["--n", "5"])):
        classic, connect = tmp_path / f"{command}-classic", tmp_path / f"{command}-connect"
        args = [command, "-q", "--model", str(classic_se), "--input", str(SE), *extra]
        assert main([*args, "--output", str(classic)]) == 0
        # SPARK_REMOTE names the server as --remote does
        code, _, err = _cli(*args, "--output", str(connect), env={"SPARK_REMOTE": remote})
        assert code == 0, err
        table = "assignments" if command == "assign" else "suggestions"
        got = pq.read_table(connect / table).sort_by("id").to_pylist()
        assert got == pq.read_table(classic / table).sort_by("id").to_pylist()
    code, out, err = _cli("choose-k", "-q", "--input", str(SE), "--output", str(tmp_path / "k"),
                          "--remote", remote, "--set", "kmeans.k_range=3:6")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "k" / "choose_k.csv").is_file() and "chosen k" in out.lower()


def test_bad_input_gives_the_same_one_line_errors(spark, remote, tmp_path, capsys):
    posts = write_jsonl(tmp_path / "posts.jsonl", TOY_POSTS)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    cases = [
        ["--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o1")],
        ["--input", str(posts), "--output", str(tmp_path / "taken")],
        ["--input", str(posts), "--output", str(tmp_path / "o2"), "--k", "9"],
    ]
    for case in cases:
        capsys.readouterr()
        classic = main(["cluster", "-q", *case])  # the classic CLI in this process
        connect = _cli("cluster", "-q", *case, "--remote", remote)
        assert classic == connect[0] != 0
        errors = [e.strip().splitlines()[-1] for e in (capsys.readouterr().err, connect[2])]
        assert errors[0].startswith("Error: ") and errors[0] == errors[1], errors
    code, _, err = _cli("cluster", "--input", str(posts), "--output", str(tmp_path / "o3"),
                        "--remote", f"sc://127.0.0.1:{free_port()}")  # fmt: skip
    assert code != 0
    assert err.strip().splitlines()[-1].startswith("Error: cannot use the Spark Connect server")


@needs_stackexchange
def test_a_connect_run_killed_mid_fit_leaves_no_half_output(remote, tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "run.log"
    args = ["cluster", "--input", str(SE), "--output", str(out), "--k", "5", "--remote", remote,
            "--set", "output.staging_lease_seconds=4"]  # fmt: skip
    proc = start_logged([sys.executable, "-m", "tagspark.cli", *args], log, dict(os.environ))
    try:
        wait_for(log, "stage fit: started", proc, timeout=120)
        time.sleep(1)
    finally:
        kill_group(proc)
    assert not out.exists()  # only a hidden staging folder, swept by the next run
    assert [p.name.split("-")[0] for p in tmp_path.iterdir() if p.name.startswith(".")] == [
        ".out.tmp"
    ]
    time.sleep(5)  # the dead run's lease expires
    code, _, err = _cli(*args, "-q")
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("session", ["classic", "connect"])
def test_paths_reach_the_folder_the_user_named(
    spark, remote, tmp_path, session, capsys, monkeypatch
):
    odd = "my posts #1 [a] ?%é"
    folder = tmp_path / odd
    folder.mkdir()
    posts = write_jsonl(folder / "posts[1].jsonl", TOY_POSTS)
    write_jsonl(folder / "posts1.jsonl", TOY_POSTS[:2])  # what the glob [1] would match

    def tagspark(*args: str) -> tuple[int, str, str]:
        """The CLI in tmp_path: in a new process on Connect, in this one (whose JVM runs
        in another folder) on the classic session."""
        if session == "connect":
            return _cli(*args, "--remote", remote, cwd=tmp_path)
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        code = main(list(args))
        return code, *capsys.readouterr()

    # relative, as typed in the folder above them (the JVM or the Connect server is elsewhere)
    args = ["--input", f"{odd}/posts[1].jsonl", "--output", f"{odd}/out [2]", "--k", "2"]
    code, out, err = tagspark("cluster", "-q", *args)
    assert code == 0, err
    assert out.splitlines()[-1] == f"Output: {folder / 'out [2]'}"
    result = folder / "out [2]"
    assert sorted(_assignments(result)) == [p["id"] for p in TOY_POSTS]
    assert sorted(p.name for p in folder.iterdir()) == ["out [2]", "posts1.jsonl", "posts[1].jsonl"]
    assert posts.is_file()
    code, _, err = tagspark(
        "cluster", "-q", "--input", str(posts), "--output", str(tmp_path / "no such" / "out")
    )
    assert code != 0
    assert err.strip().splitlines()[-1] == (
        f"Error: the parent folder of output '{tmp_path / 'no such' / 'out'}' does not exist"
    )


@needs_stackexchange
def test_the_api_on_connect_fits_saves_and_loads_as_classic(spark, remote, tmp_path):
    from pyspark.ml import Pipeline
    from pyspark.sql import functions as F

    from tagspark import HashtagExtractor, TagCategories

    posts = spark.read.json(str(SE)).select(
        "id", F.concat_ws(" #", F.lit(""), "tags").alias("caption")
    )
    classic = Pipeline(stages=[HashtagExtractor(), TagCategories(k=5, seed=1)]).fit(posts)
    expected = {c.name: c.size for c in classic.stages[-1].categories}
    script = textwrap.dedent(
        f"""
        import json
        from pyspark.ml import Pipeline, PipelineModel
        from pyspark.sql import SparkSession, functions as F
        from tagspark import HashtagExtractor, TagCategories, TagCategoriesModel

        spark = SparkSession.builder.remote({remote!r}).getOrCreate()
        posts = spark.read.json({str(SE)!r}).select(
            "id", F.concat_ws(" #", F.lit(""), "tags").alias("caption"))
        fitted = Pipeline(stages=[HashtagExtractor(), TagCategories(k=5, seed=1)]).fit(posts)
        fitted.write().overwrite().save({str(tmp_path / "pm")!r})
        again = PipelineModel.load({str(tmp_path / "pm")!r})
        rows = again.transform(posts).select("id", "category_id").collect()
        model = again.stages[-1]
        print(json.dumps({{
            "sizes": {{c.name: c.size for c in model.categories}},
            "k": model.getK(),
            "placed": {{r["id"]: r["category_id"] for r in rows}},
        }}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["sizes"] == expected and got["k"] == 5
    placed = classic.transform(posts).select("id", "category_id").collect()
    assert got["placed"] == {r["id"]: r["category_id"] for r in placed}
    # the model saved over Connect is the CLI's model folder
    assert main(["suggest", "--model", str(tmp_path / "pm"), "--tags", "espresso", "-q"]) == 0
