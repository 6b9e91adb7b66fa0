"""Fixtures for the tests in tests/ and the doctests in tagspark/: one local[2]
SparkSession for the whole run."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("tagspark-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(autouse=True)
def _doctest_spark(request, doctest_namespace):
    """Doctests that use ``spark`` and ``F`` get them (the session starts only for them)."""
    from _pytest.doctest import DoctestItem

    examples = request.node.dtest.examples if isinstance(request.node, DoctestItem) else []
    if any("spark" in example.source for example in examples):
        from pyspark.sql import functions

        doctest_namespace["spark"] = request.getfixturevalue("spark")
        doctest_namespace["F"] = functions
