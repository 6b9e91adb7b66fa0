"""Building the SparkSession from the ``[spark]`` config section."""

from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

from tagspark.config import SparkConfig

log = logging.getLogger(__name__)

# Used in local mode unless spark.conf sets them: one machine wants few shuffle partitions,
# and the JVM that pyspark starts gets 1g of heap unless told otherwise.
LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "8", "spark.driver.memory": "4g"}


def launched_by_spark_submit() -> bool:
    """True when this Python process was started by ``spark-submit`` (its JVM is running)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def choose_master(cfg: SparkConfig, flag: str | None) -> str | None:
    """The master to set: the ``--master`` flag; else none under spark-submit (its own
    ``--master`` rules); else the config's ``spark.master``."""
    if flag:
        return flag
    return None if launched_by_spark_submit() else cfg.master


def build_session(cfg: SparkConfig, master: str | None) -> SparkSession:
    """A SparkSession with the app name, master and extra settings of ``cfg``.

    In local mode :data:`LOCAL_DEFAULTS` apply to what ``cfg.conf`` leaves unset; on a
    cluster nothing is set beyond ``cfg.conf``, so spark-submit and spark-defaults.conf rule.

    Settings that size the JVM (``spark.driver.memory``) take effect in local mode, where
    this call starts the JVM; under spark-submit pass them to spark-submit.
    """
    local = master is not None and master.startswith("local")
    if local:
        # workers run this Python (with numpy, pyarrow), not whatever python3 is on PATH
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(cfg.app_name)
    if master:
        builder = builder.master(master)
    for key, value in {**(LOCAL_DEFAULTS if local else {}), **cfg.conf}.items():
        builder = builder.config(key, value)
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
