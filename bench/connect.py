"""tagspark on Spark Connect against classic local mode, side by side, on one corpus.

    python bench/generate.py --posts 1000000 --output bench/out/posts-1m.jsonl
    python bench/connect.py --input bench/out/posts-1m.jsonl --k 200 --repeat 2

A Spark Connect server (pyspark's own, ``local[*]``, the heap and collector that tagspark
gives its local JVM) is started once and timed; then ``tagspark cluster`` runs alternately
in classic local mode (its own JVM, started by the run) and with ``--remote`` (a client
process without a JVM), ``--repeat`` times each. Printed: each run's wall time and peak
memory of its process tree (the server's memory is not the client's: it is printed apart),
the job's stages from ``model/metadata.json``, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyspark

sys.path.insert(0, str(Path(__file__).parent))
from compare import _tree_rss_mb, measure  # noqa: E402 (a sibling script)

from tagspark.session import local_driver_memory  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str, float]:
    """A Connect server on 127.0.0.1: the process, its sc:// URL, seconds to start."""
    home = Path(pyspark.__file__).parent
    port = _free_port()
    cmd = [
        str(home / "bin" / "spark-submit"),
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master", "local[*]",
        "--driver-memory", local_driver_memory(),
        "--driver-java-options", "-XX:+UseParallelGC",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", "spark.sql.shuffle.partitions=8",
        "spark-internal",
    ]  # fmt: skip
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_HOME": str(home)}
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # fmt: skip
    while "Spark Connect server started" not in log.read_text(errors="replace"):
        if proc.poll() is not None:
            raise SystemExit(f"the server did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)
    return proc, f"sc://127.0.0.1:{port}", time.perf_counter() - start


def run(args: argparse.Namespace, mode: str, remote: str, work: Path, n: int) -> dict:
    out = work / f"{mode}-{n}"
    cmd = [sys.executable, "-m", "tagspark.cli", "cluster", "--input", args.input,
           "--output", str(out), "--k", str(args.k), "--seed", "42"]  # fmt: skip
    if mode == "connect":
        cmd += ["--remote", remote]
    result = measure(cmd, work / f"{mode}-{n}.log")
    meta = json.loads((out / "model" / "metadata.json").read_text())
    result["stages"] = meta["timings_seconds"]
    result["categories"] = [c["name"] for c in json.loads((out / "categories.json").read_text())]
    shutil.rmtree(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--k", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tagspark-connect-bench-"))
    server, remote, started = start_server(work / "server.log")
    print(f"Connect server started in {started:.1f} s at {remote}")
    runs: dict[str, list[dict]] = {"classic": [], "connect": []}
    try:
        for n in range(args.repeat):
            for mode in ("classic", "connect"):
                r = run(args, mode, remote, work, n)
                runs[mode].append(r)
                stages = ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
                print(f"{mode:8} run {n + 1}: {r['seconds']:6.1f} s, client tree "
                      f"{r['peak_mb'] / 1024:.1f} GB; stages: {stages}", flush=True)  # fmt: skip
        server_gb = _tree_rss_mb(server.pid) / 1024
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    same = runs["classic"][0]["categories"] == runs["connect"][0]["categories"]
    classic = statistics.median(r["seconds"] for r in runs["classic"])
    connect = statistics.median(r["seconds"] for r in runs["connect"])
    print(f"server process tree after the runs: {server_gb:.1f} GB")
    print("| mode | median wall | x classic | same categories |")
    print("|---|---:|---:|---|")
    print(f"| classic local | {classic:.1f} s | 1.00 | - |")
    print(
        f"| Spark Connect (server running) | {connect:.1f} s | {connect / classic:.2f} | {same} |"
    )


if __name__ == "__main__":
    main()
