"""Failures of the environment (memory, disk, a JVM that died), told as one sentence.

A Spark job that runs out of memory reaches Python as a Py4J error holding a JVM stack
trace, as a ``MemoryError``, or, when the JVM itself died, as a broken Py4J connection.
:func:`explain` turns each into a :class:`~tagspark.errors.ResourceError` that names the
stage that ran and what to change; anything it does not recognise is left alone (a bug
keeps its traceback).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import Any

from tagspark.errors import ResourceError

log = logging.getLogger(__name__)

MEMORY_ADVICE = {
    "read": "give Spark more memory (local: --set spark.conf.spark.driver.memory=16g; "
    "cluster: spark-submit --executor-memory) or split the input",
    "fit": "give the driver more memory (--set spark.conf.spark.driver.memory=16g, or "
    "spark-submit --driver-memory 16g), or lower features.max_tags (the tags the features "
    "use) or features.dims, or set features.matrix=distributed",
    "name": "give the driver more memory (--set spark.conf.spark.driver.memory=16g, or "
    "spark-submit --driver-memory 16g), or raise features.min_doc_freq to shrink the "
    "vocabulary",
}
DEFAULT_MEMORY_ADVICE = (
    "give Spark more memory (--set spark.conf.spark.driver.memory=16g, or spark-submit "
    "--driver-memory/--executor-memory)"
)
# what the JVM or Python says, lower-cased, and what it means
_SIGNS = (
    ("outofmemoryerror", "memory"),
    ("java heap space", "memory"),
    ("gc overhead limit exceeded", "memory"),
    ("cannot allocate memory", "memory"),
    ("unable to allocate", "memory"),  # numpy's _ArrayMemoryError
    # the driver's heap could not take a large task result (its OutOfMemoryError is only
    # in the log, not in the job's exception)
    ("taskresultlost", "memory"),
    ("maxresultsize", "result size"),
    ("no space left on device", "disk"),
    ("disk quota exceeded", "disk"),
    ("answer from java side is empty", "jvm"),
    # the JVM is ending (an OutOfMemoryError in a task makes Spark exit the JVM) and its
    # shutdown stops the context before the task's failure reaches the job (seen on CI)
    ("cancelled because sparkcontext was shut down", "jvm"),
    ("sparkcontext has been shutdown", "jvm"),  # a job started as it ended
    ("cannot call methods on a stopped sparkcontext", "jvm"),
    ("error while sending or receiving", "jvm"),
    ("python worker exited unexpectedly", "worker"),
    ("file_not_exist", "input gone"),  # [FAILED_READ_FILE.FILE_NOT_EXIST]
    ("permission denied", "permission"),
    ("accesscontrolexception", "permission"),
    ("executorlostfailure", "executors"),  # past spark.task.maxFailures
)


def explain(
    exc: BaseException, stage: str | None, crash_of: Callable[[], Any] | None = None
) -> ResourceError | None:
    """A :class:`ResourceError` naming ``stage`` and the cure when ``exc`` is an
    environment failure (out of memory, disk full, the JVM or a Python worker died, an input
    file deleted mid-run, permission refused, executors lost past their retries), else
    None.

    When the driver's JVM is gone, ``crash_of()`` (:func:`tagspark.session.jvm_crash`)
    tells whether it died of a signal: then the JVM crashed (its crash log is named), it did
    not run out of memory.

    >>> print(explain(MemoryError(), "fit"))  # doctest: +ELLIPSIS
    stage 'fit' ran out of memory (MemoryError); give the driver more memory ...
    >>> explain(ValueError("a bug"), "fit") is None
    True
    """
    found = _kind(exc)
    if found is None:
        return None
    kind, text = found
    where = f"stage '{stage}'" if stage else "the job"
    if kind == "memory":
        cause = _first_line(text)
        advice = MEMORY_ADVICE.get(stage or "", DEFAULT_MEMORY_ADVICE)
        return ResourceError(f"{where} ran out of memory ({cause}); {advice}")
    if kind == "result size":
        return ResourceError(
            f"{where} brought more to the driver than spark.driver.maxResultSize allows; "
            "raise it (--set spark.conf.spark.driver.maxResultSize=4g)"
        )
    if kind == "disk":
        return ResourceError(
            f"{where} ran out of disk space (no space left on device); free space where the "
            "output is written and in Spark's scratch folder (spark.local.dir, /tmp by "
            "default), or write elsewhere"
        )
    if kind == "input gone":
        return ResourceError(
            f"{where} found an input file gone ({_quoted_path(text)}): it was deleted or "
            "replaced while the job ran; rerun once the input stays put"
        )
    if kind == "permission":
        return ResourceError(
            f"{where} was refused access to a file or folder (permission denied"
            f"{': ' + _quoted_path(text) if _quoted_path(text) else ''}); give the user "
            "running Spark the right to read the input and write the output's folder"
        )
    if kind == "executors":
        return ResourceError(
            f"{where} lost Spark executors more often than a task may fail "
            "(spark.task.maxFailures): workers died or were taken away; see the workers' "
            f"logs, and if they ran out of memory, {DEFAULT_MEMORY_ADVICE}"
        )
    if kind == "worker":
        return ResourceError(
            f"{where} lost a Python worker (it was killed, most often for want of memory); "
            f"{MEMORY_ADVICE.get(stage or '', DEFAULT_MEMORY_ADVICE)}"
        )
    crash = crash_of() if crash_of is not None else None
    if crash is not None:
        return ResourceError(_crash_message(where, crash))
    return ResourceError(
        f"{where} lost the Spark driver's JVM (it died, most often for want of memory); "
        f"{MEMORY_ADVICE.get(stage or '', DEFAULT_MEMORY_ADVICE)}"
    )


def _crash_message(where: str, crash) -> str:
    """The sentence for a JVM that died of a signal (a :class:`tagspark.session.JvmCrash`).

    >>> from tagspark.session import JvmCrash
    >>> print(_crash_message("stage 'fit'", JvmCrash("/tmp/t/hs_err_pid7.log", "SIGSEGV",
    ...     "C [libnetlibblasjni1.so+0x3eb4] Java_dev_ludovic_netlib_blas_JNIBLAS_dgemmK+0x254")))
    ... # doctest: +NORMALIZE_WHITESPACE
    stage 'fit' crashed Spark's JVM (SIGSEGV in native code: C [libnetlibblasjni1.so+0x3eb4]
    Java_dev_ludovic_netlib_blas_JNIBLAS_dgemmK+0x254); its crash log is
    /tmp/t/hs_err_pid7.log. This is not a lack of memory nor a fault of the input: a native
    BLAS library failed; check the dev.ludovic.netlib.blas.* options in
    spark.driver.extraJavaOptions and the BLAS installed (README, "The console")
    """
    signal = crash.signal or "a signal"
    frame = f" in native code: {crash.frame}" if crash.frame else ""
    log_file = f"its crash log is {crash.log}" if crash.log else "it wrote no crash log"
    if crash.frame and "blas" in crash.frame.lower():
        cure = (
            "a native BLAS library failed; check the dev.ludovic.netlib.blas.* options in "
            'spark.driver.extraJavaOptions and the BLAS installed (README, "The console")'
        )
    else:
        cure = "please report it with the crash log, and the JDK's and Spark's versions"
    return (
        f"{where} crashed Spark's JVM ({signal}{frame}); {log_file}. This is not a lack of "
        f"memory nor a fault of the input: {cure}"
    )


def _kind(exc: BaseException) -> tuple[str, str] | None:
    """What kind of failure ``exc`` (or an exception it was raised from) is, and the text
    of the one that says so (read once: a Py4J error asks its JVM for it, and the JVM may
    die in between)."""
    if isinstance(exc, MemoryError):
        return "memory", type(exc).__name__
    if isinstance(exc, ConnectionError) or type(exc).__name__ == "Py4JNetworkError":
        return "jvm", ""
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # a dead JVM cannot describe its own error
        return "jvm", ""
    for sign, kind in _SIGNS:
        if sign in text.lower():
            return kind, text
    cause = exc.__cause__ or exc.__context__
    return _kind(cause) if cause is not None and cause is not exc else None


def _quoted_path(text: str) -> str:
    """The first file path or URI in ``text`` (``File file:/a/b does not exist``), or ''."""
    said = re.search(r"(?<![\w/])((?:[a-z][a-z0-9+.-]*:)?/[^\s'\"()]+)", text)
    return said.group(1).rstrip(".") if said else ""


def _first_line(text: str) -> str:
    """The JVM's own words (``java.lang.OutOfMemoryError: Java heap space``) when ``text``
    has them, else the exception's type."""
    said = re.search(r"java\.lang\.OutOfMemoryError: [A-Za-z ]+", text)
    if said:
        return said.group(0).strip()
    if "TaskResultLost" in text:
        return "a task's result was lost on its way to the driver: TaskResultLost"
    return text.split(":", 1)[0]


class Py4JConnectionErrors(logging.Filter):
    """A console handler's filter that sends py4j's records to this module's debug log.
    When the JVM dies (out of memory) py4j logs the broken connection ("Exception while
    sending command.") with a traceback, on the root logger or its own; the CLI's one line
    that says what happened (:func:`explain`) must stand alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("py4j") or f"{os.sep}py4j{os.sep}" in record.pathname:
            log.debug("py4j: %s", record.getMessage(), exc_info=record.exc_info)
            return False
        return True
