"""The JVM that local mode starts: its garbage collector and its class archive. Each test
starts real JVMs in child processes, as the CLI does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tagspark.classarchive import QUIET, ClassArchive, _drop_stale_partials
from tagspark.config import SparkConfig
from tagspark.session import class_archive, console_defaults

# starts the local JVM as the CLI does and names its garbage collectors
_GC_NAMES = """
import sys
from tagspark.config import load_config
from tagspark.session import build_session
spark = build_session(load_config(None, sys.argv[1:]).spark, "local[1]")
beans = spark.sparkContext._jvm.java.lang.management.ManagementFactory
print(",".join(sorted(b.getName() for b in beans.getGarbageCollectorMXBeans())))
spark.stop()
"""


def _python(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    run = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run


@pytest.mark.parametrize(
    "options, collectors",
    [
        ([], "PS MarkSweep,PS Scavenge"),
        (
            ["spark.conf.spark.driver.extraJavaOptions=-XX:+UseG1GC"],
            "G1 Old Generation,G1 Young Generation",
        ),
    ],
)
def test_the_local_jvm_runs_the_parallel_collector_unless_told_otherwise(options, collectors):
    run = _python(_GC_NAMES, *options)
    assert run.stdout.strip().splitlines()[-1] == collectors


# starts the local JVM as the CLI does (stderr a pipe, not a terminal) and prints whether
# Spark draws its console progress bar
_PROGRESS_BAR = """
import sys
from tagspark.config import load_config
from tagspark.session import build_session
spark = build_session(load_config(None, sys.argv[1:]).spark, "local[1]")
print(spark.sparkContext.getConf().get("spark.ui.showConsoleProgress"))
spark.stop()
"""


@pytest.mark.parametrize(
    "options, shown", [([], "false"), (["spark.conf.spark.ui.showConsoleProgress=true"], "true")]
)
def test_no_progress_bar_when_stderr_is_not_a_terminal_unless_asked(options, shown):
    run = _python(_PROGRESS_BAR, *options)
    assert run.stdout.strip().splitlines()[-1] == shown


def test_a_terminal_keeps_sparks_progress_bar():
    class Terminal:
        def isatty(self) -> bool:
            return True

    class Closed:
        def isatty(self) -> bool:
            raise ValueError("I/O operation on closed file")

    assert console_defaults(Terminal()) == {}
    assert console_defaults(Closed()) == {"spark.ui.showConsoleProgress": "false"}
    assert console_defaults(None) == {"spark.ui.showConsoleProgress": "false"}


# starts the local JVM as the CLI does, runs a job, and says whether the JVM has the class
# archive mapped (its memory map names the file) and whether it writes one
_ARCHIVE_MAPPED = """
import sys
from pyspark import SparkContext
from tagspark.config import load_config
from tagspark.session import build_session, class_archive, end_jvm
cfg = load_config(None, sys.argv[1:]).spark
archive = class_archive(cfg, "local[1]")
spark = build_session(cfg, "local[1]", archive)
assert spark.range(100).selectExpr("sum(id)").first()[0] == 4950
maps = open(f"/proc/{SparkContext._gateway.proc.pid}/maps").read()
print("none" if archive is None else "writes" if archive.partial else "reads",
      "mapped" if archive is not None and archive.path in maps else "not-mapped")
spark.stop()
end_jvm(archive)
"""


def test_no_class_archive_is_written_or_mapped_when_turned_off(tmp_path):
    """Writing an archive and mapping it on the next run is tested on the CLI's own JVM
    (tests/test_jvm.py); here ``spark.class_archive=false`` starts a JVM without one."""
    off = _python(
        _ARCHIVE_MAPPED, "spark.class_archive=false", env={"XDG_CACHE_HOME": str(tmp_path)}
    )
    assert off.stdout.split()[-2:] == ["none", "not-mapped"]
    assert not (tmp_path / "tagspark").exists() or not any((tmp_path / "tagspark").iterdir())


def _dumping_process(partial: Path, code: int) -> subprocess.Popen:
    """A process that writes ``partial`` and exits with ``code`` once its stdin closes, as
    pyspark's JVM does."""
    script = (
        "import sys; sys.stdin.read(); "
        f"open({str(partial)!r}, 'wb').write(b'archive'); sys.exit({code})"
    )
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE)


def test_the_archive_is_renamed_into_place_only_after_a_clean_exit(tmp_path):
    path = tmp_path / "jvm-classes-k.jsa"
    old = tmp_path / "jvm-classes-older.jsa"
    old.write_bytes(b"of another JDK")

    failed = ClassArchive(str(path), f"{path}.1-a.partial")
    assert failed.finish(_dumping_process(Path(failed.partial), code=1)) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == [old.name]  # partial removed

    clean = ClassArchive(str(path), f"{path}.1-b.partial")
    assert clean.finish(_dumping_process(Path(clean.partial), code=0)) is True
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # the older one goes
    assert path.read_bytes() == b"archive"


def test_partial_archives_of_ended_runs_are_removed(tmp_path):
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp_path / f"jvm-classes-k.jsa.{ended.stdout.strip()}-a.partial"
    alive = tmp_path / f"jvm-classes-k.jsa.{os.getpid()}-b.partial"
    old = tmp_path / f"jvm-classes-k.jsa.{os.getpid()}-c.partial"
    for path in (dead, alive, old):
        path.write_bytes(b"x")
    os.utime(old, (1, 1))
    _drop_stale_partials(str(tmp_path))
    assert sorted(tmp_path.iterdir()) == [alive]


def test_the_users_own_class_sharing_options_are_left_alone():
    # no archive at all: build_session leaves the options as they are, and the run does
    # not wait at its end for a dump the JVM was never asked for
    for own in ("-Xshare:off", "-XX:SharedArchiveFile=/mine.jsa"):
        users = SparkConfig(conf={"spark.driver.extraJavaOptions": f"-Xmx2g {own}"})
        assert class_archive(users, "local[1]") is None
    archive = ClassArchive("/c/a.jsa", "/c/a.jsa.1-x.partial")
    assert (
        archive.java_options("-Dx=1")
        == f"-Dx=1 -XX:ArchiveClassesAtExit=/c/a.jsa.1-x.partial {QUIET}"
    )
    assert ClassArchive("/c/a.jsa").java_options() == f"-XX:SharedArchiveFile=/c/a.jsa {QUIET}"


def _cluster(posts: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``tagspark cluster`` on ``posts`` in a child process, as a user runs it, writing
    ``tmp_path/out`` with its class archive under ``tmp_path/cache``."""
    command = ["cluster", "--master", "local[1]", "--input", str(posts)]
    return subprocess.run(
        [sys.executable, "-m", "tagspark.cli", *command, "--output", str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )


@pytest.mark.parametrize(
    "setting, reason",
    [
        # Spark's context fails: the JVM's exception, on the Error line
        (
            "spark.conf.spark.eventLog.enabled=true",
            "Error: Spark did not start: java.io.FileNotFoundException: File file:",
        ),
        # the JVM itself does not start, on any machine (a heap size Java rejects as such):
        # it says why on stderr, and tagspark's Error line, the last, points there
        (
            "spark.conf.spark.driver.memory=9999999999999g",
            "Error: Spark did not start: the JVM exited before it started",
        ),
    ],
)
def test_a_session_that_cannot_start_is_one_error_line(tmp_path, setting, reason):
    posts = tmp_path / "posts.jsonl"
    posts.write_text('{"tags": ["a", "b"]}\n')
    log_dir = (tmp_path / "no such folder").as_uri()
    run = _cluster(
        posts, tmp_path, "--set", setting, "--set", f'spark.conf.spark.eventLog.dir="{log_dir}"'
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error: Spark")]
    assert errors == lines[-1:] and errors[0].startswith(reason), run.stderr[-2000:]
    assert "--set spark.conf.*" in errors[0]
    assert not (tmp_path / "out").exists()
