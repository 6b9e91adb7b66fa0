"""Building the SparkSession from the ``[spark]`` config section."""

from __future__ import annotations

import ctypes.util
import logging
import os
import re
import sys

from pyspark import SparkContext
from pyspark.find_spark_home import _find_spark_home
from pyspark.sql import SparkSession

from tagspark import classarchive
from tagspark.classarchive import ClassArchive
from tagspark.config import SparkConfig

log = logging.getLogger(__name__)

# Used in local mode unless spark.conf sets them: one machine wants few shuffle partitions
# (and the JVM that pyspark starts gets 1g of heap unless told otherwise: see
# local_driver_memory).
LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "8"}


def local_driver_memory(physical_bytes: int | None = None) -> str:
    """The local JVM's heap: half the machine's memory, within 4g..32g. In local mode that
    one JVM runs every task and holds every cached table (10M posts need about 8g).

    >>> local_driver_memory(24 * 2**30), local_driver_memory(4 * 2**30)
    ('12g', '4g')
    """
    if physical_bytes is None:
        physical_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(4, min(32, physical_bytes // 2**31))}g"


# netlib, MLlib's BLAS loader, dlopens libblas.so.3 and prints a line to the console when it
# is missing; pointed at a library that exists but holds no BLAS, it gives up quietly and
# MLlib uses its Java BLAS, as it would anyway
BLAS_PATH_OPTION = "-Ddev.ludovic.netlib.blas.nativeLibPath="


def quiet_blas_options(java_options: str = "") -> str:
    """``java_options`` for the driver JVM, with netlib told to skip its native BLAS probe
    when the machine has no native BLAS (no libblas or libopenblas): that probe prints
    ``netlib-blas: JNI_OnLoad: dlopen(libblas.so.3) failed`` on every run. With a native
    BLAS installed, or a ``nativeLibPath`` of the user's, nothing changes.

    >>> quiet_blas_options("-Dx=1 " + BLAS_PATH_OPTION + "/opt/mkl.so")
    '-Dx=1 -Ddev.ludovic.netlib.blas.nativeLibPath=/opt/mkl.so'
    """
    if BLAS_PATH_OPTION in java_options:
        return java_options
    if ctypes.util.find_library("blas") or ctypes.util.find_library("openblas"):
        return java_options
    libc = ctypes.util.find_library("c")
    return f"{java_options} {BLAS_PATH_OPTION}{libc}".strip() if libc else java_options


def local_gc_options(java_options: str = "") -> str:
    """``java_options`` for the JVM of local mode, with the parallel garbage collector unless
    they choose a collector: one JVM runs a short batch job, where throughput is what counts
    (measured on the planted 1M-post corpus: 45.8 s against 49.5 s with Java 17's default
    G1, five runs each; docs/performance.md).

    >>> local_gc_options("-Dx=1"), local_gc_options("-XX:+UseG1GC")
    ('-Dx=1 -XX:+UseParallelGC', '-XX:+UseG1GC')
    """
    if re.search(r"-XX:\+Use\w*GC\b", java_options):
        return java_options
    return f"{java_options} -XX:+UseParallelGC".strip()


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by ``spark-submit`` (its JVM is running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def choose_master(cfg: SparkConfig, flag: str | None) -> str | None:
    """The master to set: the ``--master`` flag; else none under spark-submit (its own
    ``--master`` rules); else the config's ``spark.master``."""
    if flag:
        return flag
    return None if launched_by_spark_submit() else cfg.master


def _quiet_accumulator_errors() -> None:
    """A JVM that dies (out of memory) breaks pyspark's accumulator connection, and Python's
    socketserver prints that traceback to the console, in the middle of the one line that
    says what happened (:mod:`tagspark.failures`); it goes to the debug log instead."""
    from pyspark import accumulators

    def handle_error(self, request, client_address) -> None:
        log.debug("the JVM's accumulator connection failed", exc_info=True)

    for name in ("AccumulatorTCPServer", "AccumulatorUnixServer"):
        server = getattr(accumulators, name, None)
        if server is not None:
            server.handle_error = handle_error


def _is_local(master: str | None) -> bool:
    return master is not None and master.startswith("local")


def class_archive(cfg: SparkConfig, master: str | None) -> ClassArchive | None:
    """The class archive (:mod:`tagspark.classarchive`) for the JVM that
    :func:`build_session` is about to start in local mode, or None: turned off
    (``spark.class_archive``), decided by the user's ``spark.driver.extraJavaOptions``, not
    local mode, under spark-submit, a JVM already running in this process, or no JDK
    found."""
    if not (cfg.class_archive and _is_local(master)) or launched_by_spark_submit():
        return None
    if classarchive.decided_by_user(cfg.conf.get("spark.driver.extraJavaOptions", "")):
        return None
    if SparkContext._gateway is not None:  # this process's JVM is started already
        return None
    jdk = classarchive.java_home()
    if jdk is None:
        return None
    class_path = cfg.conf.get("spark.driver.extraClassPath", "")
    key = classarchive.build_key(jdk, _find_spark_home(), class_path)
    return ClassArchive.choose(classarchive.cache_dir(), key)


def end_jvm(archive: ClassArchive | None) -> None:
    """After ``spark.stop()``: when ``archive`` is being written, end this process's JVM so
    it writes it (:meth:`ClassArchive.finish`); a later session in this process starts a
    new JVM."""
    if archive is None or archive.partial is None or SparkContext._gateway is None:
        return
    archive.finish(getattr(SparkContext._gateway, "proc", None))
    SparkContext._gateway = None
    SparkContext._jvm = None


def build_session(
    cfg: SparkConfig, master: str | None, archive: ClassArchive | None = None
) -> SparkSession:
    """A SparkSession with the app name, master and extra settings of ``cfg``.

    In local mode :data:`LOCAL_DEFAULTS` (with :func:`local_driver_memory` and
    :func:`local_gc_options`) apply to what ``cfg.conf`` leaves unset; on a cluster nothing
    is set beyond ``cfg.conf``, so spark-submit and spark-defaults.conf rule. ``archive``
    (from :func:`class_archive`) adds its options to the JVM that local mode starts; whoever
    passes one calls :func:`end_jvm` after stopping the session.

    Settings that size the JVM (``spark.driver.memory``) take effect in local mode, where
    this call starts the JVM; under spark-submit pass them to spark-submit.
    """
    local = _is_local(master)
    if local:
        # workers run this Python (with numpy, pyarrow), not whatever python3 is on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(cfg.app_name)
    if master:
        builder = builder.master(master)
    defaults = {**LOCAL_DEFAULTS, "spark.driver.memory": local_driver_memory()} if local else {}
    settings = {**defaults, **cfg.conf}
    if not launched_by_spark_submit():  # this call starts the driver's JVM
        java = settings.get("spark.driver.extraJavaOptions", "")
        java = local_gc_options(java) if local else java
        java = archive.java_options(java) if archive is not None else java
        settings["spark.driver.extraJavaOptions"] = quiet_blas_options(java)
    for key, value in settings.items():
        builder = builder.config(key, value)
    _quiet_accumulator_errors()
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.log_level)
    ui = spark.sparkContext.uiWebUrl
    log.info(
        "Spark %s, master %s%s",
        spark.version,
        spark.sparkContext.master,
        f", UI at {ui}" if ui else "",
    )
    return spark
