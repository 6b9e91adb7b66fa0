"""A class-data sharing archive for the JVM that local mode starts.

Spark's JVM loads about 20,000 classes in a run, and loading and verifying them costs
seconds of every run (the JVM starts, then every stage's first task waits for its classes).
Java's class-data sharing (CDS) keeps them, parsed and verified, in an archive file that the
next JVM maps at start-up: measured on the planted 1M-post corpus, 43.0 s a run against
46.8 s (docs/performance.md).

The first local run of a machine writes the archive: its JVM dumps the classes it loaded
when it exits, which the CLI waits for once it has told the run's result or error (12-20 s,
once), and the file is renamed into place only when the JVM exited cleanly, so a JVM never
maps a half-written archive (that crashes it). Later runs map it. The archive lives in
``$XDG_CACHE_HOME/tagspark`` (else ``~/.cache/tagspark``), one per JDK and Spark build
(200 MB); ``spark.class_archive = false`` turns it off. Under ``spark-submit`` and on a
cluster nothing changes: spark-submit's flags rule the driver's JVM.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

log = logging.getLogger(__name__)

# the JVM's CDS messages ("Skipping ...: Signed JAR" for hundreds of classes when it dumps)
# would reach the console; an archive that does not fit this JVM is simply not used
QUIET = "-Xlog:cds*=off"
# options of the user's that already decide about class-data sharing
_USERS_OWN = ("-Xshare", "SharedArchiveFile", "ArchiveClassesAtExit", "-XX:-UseSharedSpaces")
# below this much free space in the cache folder no archive is written
MIN_FREE_BYTES = 2 * 2**30
# a dump takes about 10 s; a JVM still running after this is stopped and its file dropped
DUMP_TIMEOUT_SECONDS = 300
# a partial file whose run (the process id in its name) has ended, or older than this, is
# left over from a killed run
STALE_PARTIAL_SECONDS = 3600


def cache_dir() -> str:
    """``$XDG_CACHE_HOME/tagspark``, else ``~/.cache/tagspark``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "tagspark")


def java_home() -> str | None:
    """The JDK that Spark's launcher runs: ``$JAVA_HOME``, else the one ``java`` on the
    PATH belongs to (as ``bin/spark-class`` chooses), or None."""
    if os.environ.get("JAVA_HOME"):
        return os.path.realpath(os.environ["JAVA_HOME"])
    java = shutil.which("java")
    return os.path.dirname(os.path.dirname(os.path.realpath(java))) if java else None


def decided_by_user(java_options: str) -> bool:
    """True when the user's java options already decide about class-data sharing.

    >>> decided_by_user("-Xmx4g -Xshare:off"), decided_by_user("-Xmx4g")
    (True, False)
    """
    return any(flag in java_options for flag in _USERS_OWN)


def build_key(jdk: str, spark_home: str, class_path: str = "") -> str:
    """What the archive was made for: the JDK (its ``libjvm.so``), Spark's jars and the
    driver's extra class path, by name, size and modification time. The JVM itself refuses
    an archive of another build (and then starts without it); the key keeps one from being
    kept and ignored forever."""
    parts = [jdk, class_path]
    files = glob.glob(os.path.join(jdk, "lib", "server", "libjvm.so"))
    files += sorted(glob.glob(os.path.join(spark_home, "jars", "*.jar")))
    for path in files:
        st = os.stat(path)
        parts.append(f"{os.path.basename(path)}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClassArchive:
    """The archive of one JDK and Spark build: ``path`` when it exists; else this run's
    JVM writes ``partial``, which :meth:`finish` renames to ``path``."""

    path: str
    partial: str | None = None

    @classmethod
    def choose(cls, folder: str, key: str) -> ClassArchive | None:
        """Map the archive of ``key`` in ``folder`` if it is there; else write it, unless
        the folder cannot be made or has under :data:`MIN_FREE_BYTES` free (None)."""
        path = os.path.join(folder, f"jvm-classes-{key}.jsa")
        if os.path.isfile(path):
            return cls(path)
        try:
            os.makedirs(folder, exist_ok=True)
            free = shutil.disk_usage(folder).free
        except OSError as exc:
            log.debug("no class archive: %s", exc)
            return None
        if free < MIN_FREE_BYTES:
            log.debug("no class archive: %d MB free in %s", free // 2**20, folder)
            return None
        _drop_stale_partials(folder)
        return cls(path, f"{path}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial")

    def java_options(self, java_options: str = "") -> str:
        """``java_options`` with this archive mapped or written, and the JVM's CDS messages
        off."""
        flag = (
            f"-XX:ArchiveClassesAtExit={self.partial}"
            if self.partial
            else f"-XX:SharedArchiveFile={self.path}"
        )
        return f"{java_options} {flag} {QUIET}".strip()

    def finish(self, jvm: subprocess.Popen | None) -> bool:
        """After the session stopped: when this run writes the archive, end ``jvm`` (the
        gateway process pyspark started; it exits when its stdin closes), wait for its dump
        and rename the file into place if it exited cleanly. True when an archive was
        added; the partial file is removed otherwise."""
        if self.partial is None or jvm is None:
            return False
        started = time.monotonic()
        if jvm.poll() is None:  # else it died (out of memory) and wrote nothing whole
            log.info(
                "saving the JVM's classes for faster starts (once per machine and build, "
                "about 15 s)"
            )
        try:
            if jvm.stdin is not None:
                jvm.stdin.close()
            code = jvm.wait(DUMP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            jvm.kill()
            code = jvm.wait()
        except OSError as exc:
            log.debug("the JVM could not be ended: %s", exc)
            code = None
        done = code == 0 and _renamed(self.partial, self.path)
        if done:
            for other in glob.glob(os.path.join(os.path.dirname(self.path), "jvm-classes-*.jsa")):
                if other != self.path:
                    _remove(other)  # of an older JDK or Spark
            log.info(
                "class archive: %s (%d MB) in %.1f s",
                self.path,
                os.path.getsize(self.path) // 2**20,
                time.monotonic() - started,
            )
        else:
            log.debug("no class archive: the JVM exited with %s", code)
            _remove(self.partial)
        return done


def _renamed(partial: str, path: str) -> bool:
    try:
        os.replace(partial, path)
    except OSError as exc:  # not written (the JVM failed to), or the folder went
        log.debug("no class archive: %s", exc)
        return False
    return True


def _drop_stale_partials(folder: str) -> None:
    """Remove the partial archives of runs that ended without renaming them (killed): a JVM
    may still be writing one, which harms nothing once its name is gone."""
    now = time.time()
    for path in glob.glob(os.path.join(folder, "*.partial")):
        pid = path.rsplit(".", 2)[-2].split("-")[0]
        try:
            if not _running(int(pid)) or now - os.path.getmtime(path) > STALE_PARTIAL_SECONDS:
                os.remove(path)
        except (OSError, ValueError):
            continue


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
