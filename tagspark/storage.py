"""Files and folders on any filesystem the cluster's Spark can write (``file://``,
``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``...), through the driver's Hadoop
FileSystem API.

pyspark has no Python API for the Hadoop FileSystem, so this module is the one place in
tagspark that talks to the JVM directly (through the SparkContext's Py4J gateway): every
other module writes and lists through :class:`Storage`. Spark's DataFrame writers and
MLlib's ``save`` already take the same URIs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

# schemes whose rename of a folder is one atomic metadata operation; object stores (s3a,
# gs, abfs without a hierarchical namespace, wasb) copy and delete instead
ATOMIC_RENAME_SCHEMES = frozenset({"file", "hdfs", "viewfs"})


@dataclass(frozen=True)
class Entry:
    """One listed file or folder."""

    uri: str
    name: str
    is_dir: bool
    modified: float  # seconds since the epoch, as the filesystem keeps it


def is_uri(path: str) -> bool:
    """True for a URI (``hdfs://``, ``s3a://``, ``file://``...), false for a local path (a
    one-letter scheme is a Windows drive).

    >>> is_uri("hdfs://nn/posts"), is_uri("file:///tmp/x"), is_uri("data/posts.jsonl")
    (True, True, False)
    """
    return len(urlparse(path).scheme) > 1


def as_uri(path: str) -> str:
    """A path with a scheme as it is; a local path as an absolute ``file://`` URI.

    >>> as_uri("hdfs://nn/posts"), as_uri("/data/out")
    ('hdfs://nn/posts', 'file:///data/out')
    """
    return path if is_uri(path) else Path(path).expanduser().absolute().as_uri()


def join(uri: str, *names: str) -> str:
    """``uri`` with ``names`` appended as path segments."""
    return "/".join([uri.rstrip("/"), *names])


def parent(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[0]


def name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[1]


def renames_atomically(uri: str) -> bool:
    """True when a folder at ``uri`` is renamed in one atomic step (see
    :data:`ATOMIC_RENAME_SCHEMES`)."""
    return (urlparse(uri).scheme or "file") in ATOMIC_RENAME_SCHEMES


class Storage:
    """The Hadoop FileSystem of the running SparkSession, by URI."""

    def __init__(self, spark: SparkSession) -> None:
        sc = spark.sparkContext
        self._gateway = sc._gateway
        self._jvm = sc._jvm
        self._conf = sc._jsc.hadoopConfiguration()

    def _path(self, uri: str):
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def _fs(self, uri: str):
        fs = self._path(uri).getFileSystem(self._conf)
        fs.setWriteChecksum(False)  # no .crc file beside each small file on file://
        return fs

    def exists(self, uri: str) -> bool:
        return bool(self._fs(uri).exists(self._path(uri)))

    def is_dir(self, uri: str) -> bool:
        status = self._status(uri)
        return status is not None and bool(status.isDirectory())

    def mkdirs(self, uri: str) -> None:
        if not self._fs(uri).mkdirs(self._path(uri)):
            raise OSError(f"could not create the folder {uri}")

    def delete(self, uri: str) -> bool:
        """Delete a file or a whole folder; False when there was nothing to delete."""
        return bool(self._fs(uri).delete(self._path(uri), True))

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Create (or replace) the file ``uri`` holding ``data``."""
        out = self._fs(uri).create(self._path(uri), True)
        try:
            out.write(bytearray(data))
        finally:
            out.close()

    def read_bytes(self, uri: str) -> bytes:
        """The whole file ``uri``."""
        stream = self._fs(uri).open(self._path(uri))
        try:
            return bytes(self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def list(self, uri: str) -> list[Entry]:
        """The files and folders directly in the folder ``uri``, by name."""
        statuses = self._fs(uri).listStatus(self._path(uri))
        return sorted(map(_entry, statuses), key=lambda e: e.name)

    def glob(self, pattern: str) -> list[Entry]:
        """What the glob ``pattern`` matches (Hadoop's glob syntax), by URI."""
        statuses = self._fs(pattern).globStatus(self._path(pattern)) or []
        return sorted(map(_entry, statuses), key=lambda e: e.uri)

    def modified(self, uri: str) -> float | None:
        """When ``uri`` was last written, in seconds since the epoch; None when it does not
        exist."""
        status = self._status(uri)
        return None if status is None else status.getModificationTime() / 1000.0

    def _status(self, uri: str):
        """The Hadoop ``FileStatus`` of ``uri``, or None when it does not exist: asked in
        one call, so that what another process deletes meanwhile is absent rather than an
        error (``FileNotFoundException`` or a subclass, as object-store connectors throw)."""
        try:
            return self._fs(uri).getFileStatus(self._path(uri))
        except Py4JJavaError as exc:
            not_found = self._jvm.java.lang.Class.forName("java.io.FileNotFoundException")
            if not_found.isInstance(exc.java_exception):
                return None
            raise

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which must not exist.

        On filesystems that rename atomically, one metadata operation that fails, rather
        than moving ``source`` inside it, when ``target`` appeared meanwhile (Hadoop's
        ``FileContext.rename`` with ``Options.Rename.NONE``). On object stores a copy
        followed by a delete, after a check that ``target`` does not exist.
        """
        if renames_atomically(target):
            jvm = self._jvm
            context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
                self._path(target).toUri(), self._conf
            )
            option = jvm.org.apache.hadoop.fs.Options.Rename
            options = self._gateway.new_array(option, 1)
            options[0] = option.NONE
            context.rename(self._path(source), self._path(target), options)
            return
        if self.exists(target):
            raise FileExistsError(target)
        if not self._fs(target).rename(self._path(source), self._path(target)):
            raise OSError(f"could not move {source} to {target}")


def _entry(status) -> Entry:
    """An :class:`Entry` from a Hadoop ``FileStatus``."""
    path = status.getPath()
    return Entry(
        str(path.toString()),
        str(path.getName()),
        bool(status.isDirectory()),
        status.getModificationTime() / 1000.0,
    )
