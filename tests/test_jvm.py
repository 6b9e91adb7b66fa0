"""The JVM that the CLI itself starts, with the options it really passes: MLlib's k-means on
both of its solvers, with and without a native BLAS; a JVM that crashes; and every option
tagspark adds by itself (crash log, collector, heap, shuffle partitions, class archive,
no progress bar in a log file),
read off the running JVM. Every test runs ``tagspark`` in a subprocess, as a user does: a
fixture session would prove nothing about these options.

A native BLAS comes from ``TAGSPARK_TEST_NATIVE_BLAS`` (a ``libblas.so.3``; ``.ci/run``
unpacks Debian's libblas3 into a temporary folder for it, nothing installed), else from the
machine's own; without either the native cases are skipped. The Java case points netlib at
a library that does not exist, which is what a machine without a native BLAS gives it.
"""

from __future__ import annotations

import ctypes.util
import getpass
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tagspark.session import local_driver_memory
from tests.conftest import kill_group, start_logged, wait_for, write_jsonl

# the caption corpus: 8 records, 6 posts with tags, two themes
CAPTIONS = [
    {"id": "c1", "caption": "Sunset at the beach! #Beach #sunset, #café#東京 #straße."},
    {"id": "c2", "caption": "#beach #Sunset again #café #straße"},
    {"id": "c3", "caption": "no tags here"},
    {"id": "c4", "caption": "#東京 #ramen #café"},
    {"id": "c5", "caption": "#ramen #東京 lunch"},
    {"id": "c6", "caption": "#beach #surf"},
    {"id": "c7", "caption": "#surf #sunset"},
    {"id": "c8", "caption": "I code in C# and abc#def ###"},
]
# MLlib's block solver warns so when its input is cached, as tagspark's fit sample is
BLOCK_SOLVER_RAN = "Input vectors will be blockified to blocks"
NETLIB_LINE = "netlib-blas: JNI_OnLoad: dlopen("
ABSENT_BLAS = "-Ddev.ludovic.netlib.blas.nativeLib=libtagspark-test-absent.so.3"


def native_blas() -> str | None:
    """A native BLAS library for netlib: ``TAGSPARK_TEST_NATIVE_BLAS``, else the machine's."""
    given = os.environ.get("TAGSPARK_TEST_NATIVE_BLAS", "")
    if given and Path(given).is_file():
        return given
    return ctypes.util.find_library("blas")


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tagspark.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def _categories(out: Path) -> list[tuple[str, int]]:
    return [(c["name"], c["size"]) for c in json.loads((out / "categories.json").read_text())]


@pytest.mark.parametrize("solver", ["row", "block"])
@pytest.mark.parametrize("blas", ["java", "native"])
def test_the_caption_corpus_gives_its_two_categories_on_each_solver_and_blas(
    tmp_path, solver, blas
):
    if blas == "native":
        library = native_blas()
        if library is None:
            pytest.skip("no native BLAS here (set TAGSPARK_TEST_NATIVE_BLAS)")
        java = f"-Ddev.ludovic.netlib.blas.nativeLibPath={library}"
    else:
        java = ABSENT_BLAS
    inp = write_jsonl(tmp_path / "cap.jsonl", CAPTIONS)
    run = _cli(
        "cluster", "--input", str(inp), "--output", str(tmp_path / "out"),
        "--k", "2", "--seed", "1", "--set", f"kmeans.solver={solver}",
        "--set", f"spark.conf.spark.driver.extraJavaOptions={java}",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert _categories(tmp_path / "out") == [("surf_beach_sunset", 4), ("ramen_東京_café", 2)]
    assert (BLOCK_SOLVER_RAN in run.stderr) == (solver == "block")
    netlib = [line for line in run.stderr.splitlines() if NETLIB_LINE in line]
    # without a native BLAS netlib says so once and MLlib runs its Java BLAS
    assert len(netlib) == (1 if blas == "java" else 0), run.stderr[-3000:]
    assert not list(tmp_path.glob("hs_err_pid*.log"))


def test_a_jvm_that_crashes_is_told_as_a_crash_with_its_log_outside_the_current_folder(
    tmp_path,
):
    """netlib pointed at a library that holds no BLAS (libc, the option tagspark used to add
    itself) calls a null dgemm in the block solver: the JVM dies of SIGSEGV."""
    inp = write_jsonl(tmp_path / "cap.jsonl", CAPTIONS)
    temp = tmp_path / "temp"
    temp.mkdir()
    run = _cli(
        "cluster", "--input", str(inp), "--output", str(tmp_path / "out"),
        "--k", "2", "--seed", "1", "--set", "kmeans.solver=block",
        "--set", "spark.conf.spark.driver.extraJavaOptions="
        "-Ddev.ludovic.netlib.blas.nativeLibPath=libc.so.6",
        cwd=tmp_path, env={"TMPDIR": str(temp)},
    )  # fmt: skip
    assert run.returncode == 1
    error = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1, run.stderr[-3000:]
    said = re.fullmatch(
        r"Error: stage 'fit' crashed Spark's JVM \(SIGSEGV in native code: C "
        r"\[libnetlibblasjni\S*\.so\+0x[0-9a-f]+\] Java_dev_ludovic_netlib_blas_JNIBLAS_dgemmK"
        r"\+0x[0-9a-f]+\); its crash log is (\S+)\. This is not a lack of memory nor a fault "
        r"of the input: a native BLAS library failed; .*",
        error[0],
    )
    assert said, error[0]
    log = Path(said.group(1))
    assert log.parent == temp / f"tagspark-{getpass.getuser()}" / "jvm-crashes"
    assert log.is_file() and "SIGSEGV" in log.read_text()
    assert not list(tmp_path.glob("hs_err_pid*.log"))  # not in the user's folder
    assert not (tmp_path / "out").exists()


def _children(pid: int) -> list[int]:
    """Every process below ``pid``."""
    found, parents = [], {pid}
    for stat in sorted(Path("/proc").glob("[0-9]*/stat")):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in parents:
            child = int(stat.parent.name)
            found.append(child)
            parents.add(child)
    return found


def _jvm_of(pid: int) -> int:
    for child in _children(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "java":
                return child
        except OSError:
            continue
    raise AssertionError(f"no JVM below process {pid}")


@pytest.mark.slow
def test_every_option_tagspark_adds_is_in_force_in_the_jvm_the_cli_starts(tmp_path):
    """The CLI's own JVM, read while its run waits before publishing: the parallel
    collector, half the machine's memory as heap, the crash log in the temp folder, the
    class archive mapped, 8 shuffle partitions, and no console progress bar (its stderr is a
    file). A first run that fails (no post with
    tags) tells its error before it waits to save the classes, and writes the archive; the
    second run, on the caption corpus, is also MLlib's default solver on its block path."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "TMPDIR": str(tmp_path)}
    untagged = tmp_path / "untagged.jsonl"
    untagged.write_text('{"id": "1", "caption": "no tags here"}\n')
    first = _cli(
        "cluster", "--input", str(untagged), "--output", str(tmp_path / "first"),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert first.returncode == 1, first.stderr[-3000:]
    lines = first.stderr.splitlines()
    error = next(i for i, line in enumerate(lines) if line.startswith("Error:"))
    saving = next(i for i, line in enumerate(lines) if "saving the JVM's classes" in line)
    assert lines[error] == "Error: no post with tags in the input: 1 records read, 1 without tags"
    assert error < saving  # told before the wait
    # the failed run wrote the class archive and renamed it into place (no partial file
    # left), and the JVM's hundreds of CDS messages ("Skipping ...: Signed JAR") stayed off
    # the console
    archives = sorted((tmp_path / "cache" / "tagspark").iterdir())
    assert len(archives) == 1 and re.fullmatch(r"jvm-classes-.+\.jsa", archives[0].name)
    assert archives[0].stat().st_size > 10 * 2**20
    for stream in (first.stdout, first.stderr):
        assert "[cds]" not in stream and "Signed JAR" not in stream

    inp = write_jsonl(tmp_path / "cap.jsonl", CAPTIONS)
    log, resume = tmp_path / "second.log", tmp_path / "resume"
    cmd = [sys.executable, "-m", "tagspark.cli", "cluster", "--input", str(inp),
           "--output", str(tmp_path / "second"), "--k", "2"]  # fmt: skip
    pause = {"TAGSPARK_PAUSE_BEFORE_PUBLISH": "600", "TAGSPARK_PAUSE_UNTIL": str(resume)}
    proc = start_logged(cmd, log, {**env, **pause})
    try:
        wait_for(log, "pausing 600 s before publishing", proc, timeout=240)
        jvm = _jvm_of(proc.pid)
        flags = subprocess.run(
            ["jcmd", str(jvm), "VM.flags"], capture_output=True, text=True, check=True
        ).stdout
        assert "-XX:+UseParallelGC" in flags
        heap = int(re.search(r"-XX:MaxHeapSize=(\d+)", flags).group(1))
        assert heap == int(local_driver_memory()[:-1]) * 2**30
        crash_file = tmp_path / f"tagspark-{getpass.getuser()}" / "jvm-crashes"
        command = Path(f"/proc/{jvm}/cmdline").read_text().split("\0")
        assert f"-XX:ErrorFile={crash_file}/hs_err_pid%p.log" in " ".join(command)
        assert str(archives[0]) in Path(f"/proc/{jvm}/maps").read_text()
        ui = re.search(r"UI at (http://\S+)", log.read_text()).group(1)
        with urllib.request.urlopen(f"{ui}/api/v1/applications", timeout=10) as answer:
            app = json.load(answer)[0]["id"]
        with urllib.request.urlopen(
            f"{ui}/api/v1/applications/{app}/environment", timeout=10
        ) as answer:
            properties = dict(json.load(answer)["sparkProperties"])
        assert properties["spark.sql.shuffle.partitions"] == "8"
        assert properties["spark.ui.showConsoleProgress"] == "false"  # stderr is a file
        assert properties["spark.driver.memory"] == local_driver_memory()
        resume.touch()
        assert proc.wait(120) == 0, log.read_text()[-3000:]
    finally:
        kill_group(proc)
    # MLlib's default solver took the block path on the caption corpus and ended well
    text = log.read_text()
    assert BLOCK_SOLVER_RAN in text
    assert "[Stage " not in text  # no progress bar in a log file
    assert _categories(tmp_path / "second") == [("surf_beach_sunset", 4), ("ramen_東京_café", 2)]
    assert not list(tmp_path.glob("hs_err_pid*.log"))
    # the second run mapped the archive without writing another or telling of it
    assert sorted((tmp_path / "cache" / "tagspark").iterdir()) == archives
    assert "[cds]" not in text
