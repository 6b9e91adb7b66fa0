"""What every job shares: a scope for cached DataFrames and a timer of named stages."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


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
