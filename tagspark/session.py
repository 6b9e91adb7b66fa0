"""Building the SparkSession from the ``[spark]`` config section."""

from __future__ import annotations

import getpass
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyspark import SparkContext
from pyspark.find_spark_home import _find_spark_home
from pyspark.sql import SparkSession

from tagspark import classarchive
from tagspark.classarchive import ClassArchive
from tagspark.config import SparkConfig
from tagspark.errors import ParameterError, ResourceError

log = logging.getLogger(__name__)

# Used in local mode unless spark.conf sets them: one machine wants few shuffle partitions
# (and the JVM that pyspark starts gets 1g of heap unless told otherwise: see
# local_driver_memory).
LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "8"}


def console_defaults(stderr) -> dict[str, str]:
    """Spark's console progress bar off when ``stderr`` is not a terminal: redirected to a
    log file, the bar's carriage returns would fill it with ``[Stage 4:>  (0 + 2) / 2]``
    lines. In a terminal the bar redraws itself in place and stays. ``spark.conf`` (or
    spark-submit's own settings) overrides either.

    >>> import io
    >>> console_defaults(io.StringIO())
    {'spark.ui.showConsoleProgress': 'false'}
    """
    try:
        terminal = stderr.isatty()
    except (AttributeError, ValueError):  # no stream, or a closed one
        terminal = False
    return {} if terminal else {"spark.ui.showConsoleProgress": "false"}


def local_driver_memory(physical_bytes: int | None = None) -> str:
    """The local JVM's heap: half the machine's memory, within 4g..32g. In local mode that
    one JVM runs every task and holds every cached table (10M posts need about 8g).

    >>> local_driver_memory(24 * 2**30), local_driver_memory(4 * 2**30)
    ('12g', '4g')
    """
    if physical_bytes is None:
        physical_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{max(4, min(32, physical_bytes // 2**31))}g"


# Where the JVM that tagspark starts writes its crash log (hs_err_pid<N>.log) when it dies of
# a signal: a temporary folder of this user's, never the user's current folder (the JVM's
# default). tagspark adds no other option that changes how native code runs: netlib, MLlib's
# BLAS loader, finds a native BLAS (libblas.so.3) by itself or prints one line and uses its
# Java BLAS (see the README's "The console").
ERROR_FILE_OPTION = "-XX:ErrorFile="


def crash_log_dir() -> Path:
    """The folder of the JVM's crash logs: ``<temp>/tagspark-<user>/jvm-crashes``."""
    return Path(tempfile.gettempdir()) / f"tagspark-{getpass.getuser()}" / "jvm-crashes"


def crash_log_options(java_options: str = "", folder: Path | None = None) -> str:
    """``java_options`` with the JVM's crash log sent to ``folder`` (default:
    :func:`crash_log_dir`, created), unless they name an error file already.

    >>> crash_log_options("-Dx=1", Path("/t"))
    '-Dx=1 -XX:ErrorFile=/t/hs_err_pid%p.log'
    >>> crash_log_options("-XX:ErrorFile=/mine/%p.log", Path("/t"))
    '-XX:ErrorFile=/mine/%p.log'
    """
    if ERROR_FILE_OPTION in java_options:
        return java_options
    if folder is None:
        folder = crash_log_dir()
        folder.mkdir(parents=True, exist_ok=True)
    return f"{java_options} {ERROR_FILE_OPTION}{folder / 'hs_err_pid%p.log'}".strip()


@dataclass(frozen=True)
class JvmCrash:
    """How the driver's JVM died of a signal: its crash ``log`` (None when it wrote none),
    the ``signal`` and the native ``frame`` it died in, as the log names them."""

    log: str | None
    signal: str | None
    frame: str | None


# exit statuses of a JVM killed by these signals are crashes, not the system's OOM killer
_CRASH_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT")


def jvm_crash(wait: float = 10.0) -> JvmCrash | None:
    """The crash of this process's driver JVM, or None when it did not crash (still
    running, ended normally, or killed, e.g. for want of memory). Waits up to ``wait``
    seconds for a dying JVM to end. Looks for its ``hs_err_pid<N>.log`` in
    :func:`crash_log_dir` and in the current folder (under spark-submit, whose JVM
    starts before tagspark can choose its error file, unless ``-XX:ErrorFile`` was given to
    ``--driver-java-options``)."""
    proc = getattr(SparkContext._gateway, "proc", None)
    status = None
    if proc is not None:
        pid = proc.pid
        try:
            status = proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
    elif launched_by_spark_submit():
        pid = os.getppid()  # spark-submit's JVM started this Python process
    else:
        return None
    for folder in (crash_log_dir(), Path.cwd()):
        log = folder / f"hs_err_pid{pid}.log"
        if log.is_file():
            return JvmCrash(str(log), *_crash_of(log))
    if status is not None and status < 0 and signal.Signals(-status).name in _CRASH_SIGNALS:
        return JvmCrash(None, signal.Signals(-status).name, None)
    return None


def _crash_of(log: Path) -> tuple[str | None, str | None]:
    """The signal and the problematic frame a JVM crash log names::

    #  SIGSEGV (0xb) at pc=0x0000000000000000, pid=2335, tid=2455
    # Problematic frame:
    # C  [libnetlibblasjni1526.so+0x3eb4]  Java_dev_ludovic_netlib_blas_JNIBLAS_dgemmK+0x254
    """
    head = log.read_text(errors="replace").splitlines()[:40]
    found = next((re.search(r"\b(SIG[A-Z]+)\b", line) for line in head if "SIG" in line), None)
    frame = None
    for i, line in enumerate(head[:-1]):
        if line.startswith("# Problematic frame"):
            frame = re.sub(r"\s+", " ", head[i + 1].lstrip("# ")).strip()
    return (found.group(1) if found else None), frame


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
    cfg: SparkConfig,
    master: str | None,
    archive: ClassArchive | None = None,
    remote: str | None = None,
) -> SparkSession:
    """A SparkSession with the app name, master and extra settings of ``cfg``; with
    ``remote`` (``sc://HOST:PORT``), a Spark Connect session to that server instead.

    In local mode :data:`LOCAL_DEFAULTS` (with :func:`local_driver_memory` and
    :func:`local_gc_options`) apply to what ``cfg.conf`` leaves unset; on a cluster nothing
    is set beyond ``cfg.conf``, so spark-submit and spark-defaults.conf rule. ``archive``
    (from :func:`class_archive`) adds its options to the JVM that local mode starts; whoever
    passes one calls :func:`end_jvm` after stopping the session. The JVM this call starts
    writes its crash log, if it ever crashes, into :func:`crash_log_dir`
    (:func:`crash_log_options`; :func:`jvm_crash` finds it).

    Settings that size the JVM (``spark.driver.memory``) take effect in local mode, where
    this call starts the JVM; under spark-submit pass them to spark-submit. On Connect only
    ``cfg.conf``'s runtime settings apply (the server's JVM runs already).
    """
    if remote:
        return _remote_session(cfg, remote)
    local = _is_local(master)
    if local:
        # workers run this Python (with numpy, pyarrow), not whatever python3 is on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(cfg.app_name)
    if master:
        builder = builder.master(master)
    defaults = {**LOCAL_DEFAULTS, "spark.driver.memory": local_driver_memory()} if local else {}
    starts_jvm = not launched_by_spark_submit()  # else spark-submit started the driver's JVM
    if starts_jvm:
        defaults.update(console_defaults(sys.stderr))
    settings = {**defaults, **cfg.conf}
    if starts_jvm:
        java = settings.get("spark.driver.extraJavaOptions", "")
        java = local_gc_options(java) if local else java
        java = archive.java_options(java) if archive is not None else java
        settings["spark.driver.extraJavaOptions"] = crash_log_options(java)
    for key, value in settings.items():
        builder = builder.config(key, value)
    _quiet_accumulator_errors()
    try:
        spark = builder.getOrCreate()
    except Exception as exc:  # py4j's or pyspark's: the JVM or Spark's context did not start
        raise ResourceError(_start_failure(exc, local)) from exc
    proc = getattr(SparkContext._gateway, "proc", None)
    if proc is not None:  # a log of an earlier JVM that had this pid is not this one's
        (crash_log_dir() / f"hs_err_pid{proc.pid}.log").unlink(missing_ok=True)
    spark.sparkContext.setLogLevel(cfg.log_level)
    ui = spark.sparkContext.uiWebUrl
    log.info(
        "Spark %s, master %s%s",
        spark.version,
        spark.sparkContext.master,
        f", UI at {ui}" if ui else "",
    )
    return spark


def _start_failure(exc: Exception, local: bool) -> str:
    """One line for a session that did not start: the JVM's exception (py4j puts it after
    a ``: `` line of its own), or, when the JVM exited first, where its reason is."""
    text = str(exc).strip()
    java = [line[2:] for line in text.splitlines() if line.startswith(": ")]
    if java:
        reason = java[0]
    elif "JAVA_GATEWAY_EXITED" in text:
        reason = "the JVM exited before it started (its own message is above)"
    else:
        reason = text.splitlines()[0] if text else type(exc).__name__
    where = "spark.driver.memory and spark.driver.extraJavaOptions, " if local else ""
    return (
        f"Spark did not start: {reason}; check the Spark settings ({where}the spark.conf "
        "table of the config file and --set spark.conf.*)"
    )


def _remote_session(cfg: SparkConfig, remote: str) -> SparkSession:
    """A Spark Connect session to ``remote``, with ``cfg.conf``'s settings set on it.

    Raises
    ------
    ParameterError
        ``remote`` is not a Spark Connect address (:func:`connect_address`).
    ResourceError
        The server cannot be reached.
    """
    from pyspark.errors import PySparkException

    _reachable(remote)
    builder = SparkSession.builder.remote(remote).appName(cfg.app_name)
    try:
        spark = builder.getOrCreate()
        for key, value in cfg.conf.items():
            spark.conf.set(key, value)
        version = spark.version
    except PySparkException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ResourceError(
            f"cannot use the Spark Connect server at {remote} ({first}); check that it "
            "runs and that HOST:PORT is right"
        ) from None
    log.info("Spark %s over Spark Connect at %s", version, remote)
    return spark


def connect_address(remote: str) -> tuple[str, int]:
    """The host and port of a Spark Connect address (port 15002 when it names none).

    >>> connect_address("sc://127.0.0.1:15902/;token=x"), connect_address("sc://[::1]")
    (('127.0.0.1', 15902), ('::1', 15002))

    Raises
    ------
    ParameterError
        ``remote`` is not ``sc://HOST[:PORT]``.
    """
    match = re.match(r"^sc://([^:/;\[\]]+|\[[^\]]+\])(?::(\d+))?(?:[/;]|$)", remote)
    if match is None:
        raise ParameterError(f"a Spark Connect address is sc://HOST:PORT, got {remote!r}")
    return match[1].strip("[]"), int(match[2] or 15002)


def _reachable(remote: str, timeout: float = 10.0) -> None:
    """Fail at once when nothing listens at ``remote``'s host and port (pyspark's client
    would retry for minutes)."""
    host, port = connect_address(remote)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ResourceError(
            f"cannot use the Spark Connect server at {remote} (nothing answers at "
            f"{host}:{port}: {exc.strerror or exc}); check that it runs and that HOST:PORT "
            "is right"
        ) from None


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def master_of(spark: SparkSession) -> str:
    """The session's master (``local[2]``, ``spark://...``), or ``connect`` and the
    server's own master for a Spark Connect session."""
    if not is_connect(spark):
        return spark.sparkContext.master
    return f"connect ({spark.conf.get('spark.master', 'unknown')})"


def spark_session(master: str | None = "local[*]", cfg: SparkConfig | None = None) -> SparkSession:
    """For a notebook: the session the CLI would start (:func:`build_session` with the
    ``[spark]`` settings of ``cfg``, default the documented ones): in local mode, half the
    machine's memory for the JVM, the parallel collector, and its crash log in
    :func:`crash_log_dir`. Returns the running session instead if there is one (its JVM's
    options cannot change any more)."""
    return build_session(cfg or SparkConfig(), master)


_told_about_session = False


def note_user_session(spark: SparkSession) -> None:
    """Say once a process, when the API fits on a session that tagspark did not build,
    what the CLI's JVM has that this one lacks."""
    global _told_about_session
    if is_connect(spark) or _told_about_session:  # a Connect server's JVM is not ours
        return
    java = spark.conf.get("spark.driver.extraJavaOptions", "") or ""
    if ERROR_FILE_OPTION in java:
        return
    _told_about_session = True
    log.warning(
        "tagspark: this Spark session was not built by tagspark, so a JVM that crashes "
        "writes its log (hs_err_pid*.log) into the current folder and local mode keeps "
        "Spark's 1g heap unless you set spark.driver.memory. For the CLI's JVM, start the "
        "session with tagspark.session.spark_session(), or add spark.driver.memory=%s and "
        "spark.driver.extraJavaOptions=%s before it starts. netlib's one "
        "'JNI_OnLoad: dlopen(libblas.so.3) failed' line is harmless (README, 'The console').",
        local_driver_memory(),
        crash_log_options(folder=crash_log_dir()),
    )
