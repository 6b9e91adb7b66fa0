"""What every job shares: a scope for cached DataFrames, a timer of named stages, how
read-only state reaches the executors (:class:`Shipped`), and when Spark ML objects are let
go (:func:`release_ml_objects`)."""

from __future__ import annotations

import gc
import logging
import pickle
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


# values of Shipped unpickled in this process, newest last: a reused Python worker
# rebuilds a large state (a model, a vocabulary) once, not once a task
_UNPICKLED: dict[str, object] = {}
_KEEP_UNPICKLED = 4


class Shipped:
    """Read-only state for the executors (``.value``), carried in the closure of the
    function that reads it: pickled with the plan, so it works on classic and Spark Connect
    sessions alike (Connect has no ``SparkContext.broadcast``). On a classic session pyspark
    itself broadcasts a function that pickles to more than 1 MB
    (``spark.broadcast.UDFCompressionThreshold``), so a large state is still sent once an
    executor, as a broadcast would. The state travels as bytes and is unpickled on first
    use, once per Python worker process (:data:`_UNPICKLED`), as a broadcast's value is.

    >>> import pickle
    >>> pickle.loads(pickle.dumps(Shipped({"a": 1}))).value
    {'a': 1}
    """

    def __init__(self, value: object) -> None:
        self._value = value
        self._key = uuid.uuid4().hex
        self._blob: bytes | None = None

    @property
    def value(self) -> object:
        if self._blob is not None:
            if self._key not in _UNPICKLED:
                _UNPICKLED[self._key] = pickle.loads(self._blob)
                while len(_UNPICKLED) > _KEEP_UNPICKLED:
                    del _UNPICKLED[next(iter(_UNPICKLED))]
            return _UNPICKLED[self._key]
        return self._value

    def __getstate__(self) -> tuple[str, bytes]:
        return self._key, pickle.dumps(self.value, protocol=pickle.HIGHEST_PROTOCOL)

    def __setstate__(self, state: tuple[str, bytes]) -> None:
        self._key, self._blob = state
        self._value = None


class CacheScope:
    """Caches DataFrames (call it on one) and unpersists them all on :meth:`release` or at
    the end of a ``with`` block."""

    def __init__(self) -> None:
        self._cached: list[DataFrame] = []

    def __call__(self, df: DataFrame) -> DataFrame:
        self._cached.append(df.cache())
        return df

    def release(self) -> None:
        for df in self._cached:
            try:
                df.unpersist()
            except Exception as exc:  # a JVM that died has nothing left to free
                log.debug("could not unpersist a cached table: %s", exc)
        self._cached.clear()

    def __enter__(self) -> CacheScope:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StageTimer:
    """Times named stages and logs one line per stage as it ends."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.current: str | None = None  # the stage running, or the last one that ran
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._start = time.perf_counter()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self.current = stage
        log.info("stage %s: started", stage)
        start = time.perf_counter()
        yield
        self.seconds[stage] = round(time.perf_counter() - start, 3)
        log.info(
            "stage %s: done in %.1f s (%.1f s since start)",
            stage,
            self.seconds[stage],
            time.perf_counter() - self._start,
        )

    def total(self) -> float:
        return round(time.perf_counter() - self._start, 3)


def release_ml_objects() -> None:
    """Free, now, the Spark ML objects the caller has just dropped.

    On Spark Connect a fitted MLlib model (and its summary) stands for an object in the
    server's ML cache, and its ``__del__`` asks the server to drop it. When such an object
    sits in a reference cycle only the cyclic garbage collector frees it, at whichever
    allocation sets a collection off: possibly inside another gRPC call, where the nested
    call can hang the client for good (seen on this project's CI with pyspark 4.3.0: a
    Connect fit waiting forever in ``_delete_ml_cache`` called from ``gc_collect_main``;
    SPARK-57655, SPARK-59292). Collecting right after the caller has dropped its
    references runs those ``__del__`` calls here, with no call in flight. On a classic
    session it only frees memory.
    """
    gc.collect()
