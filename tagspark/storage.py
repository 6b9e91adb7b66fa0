"""Files and folders by URI (``file://``, ``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``...)
for what tagspark writes itself: small files, listings, the staging folder and its publish.
Spark's DataFrame writers and MLlib's ``save`` take the same URIs for the big tables.

:func:`storage_for` picks the backend by the session:

- a classic session: :class:`HadoopStorage`, the driver's Hadoop FileSystem API through
  the JVM gateway (pyspark has no Python API for it), so every filesystem the cluster's
  Spark is configured for works, with Spark's own credentials;
- a Spark Connect session (no JVM in this process): :class:`ArrowStorage`, ``pyarrow.fs``
  on the client: local paths (and folders mounted on the client), S3 (``s3://``,
  ``s3a://``), GCS (``gs://``) and HDFS (``hdfs://``, with Hadoop's ``libhdfs`` on the
  client). The client and the server must see a path as the same place.

A local path becomes ``file://`` and its absolute path as written (:func:`as_uri`), never
percent-encoded, because Hadoop takes a path's characters as they are: a folder called
``my posts`` or ``run[1]`` is that folder on both backends.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlparse

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
    """A path with a scheme as it is; a local path as ``file://`` and its absolute path,
    its characters as written (Hadoop's reading of a path: no percent-encoding).

    >>> as_uri("hdfs://nn/posts"), as_uri("/data/my posts[1]")
    ('hdfs://nn/posts', 'file:///data/my posts[1]')
    """
    if is_uri(path):
        return path
    return "file://" + os.path.abspath(os.path.expanduser(path))


def shown(uri: str) -> str:
    """A ``file://`` URI as the local path it is, for messages; other URIs as they are.

    >>> shown("file:///data/my posts"), shown("hdfs://nn/x")
    ('/data/my posts', 'hdfs://nn/x')
    """
    return uri[len("file://") :] if uri.startswith("file:///") else uri


# Hadoop's glob characters: a path holding one is a pattern to Spark's readers unless escaped
_GLOB = re.compile(r"([\\{}\[\]*?])")


def literal(uri: str) -> str:
    """``uri`` for Spark's readers, which expand Hadoop globs: its glob characters escaped,
    so that a file named ``posts[1].jsonl`` is read as itself.

    >>> literal("file:///data/posts[1].jsonl")
    'file:///data/posts\\\\[1\\\\].jsonl'
    """
    return _GLOB.sub(r"\\\1", uri)


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


def storage_for(spark: SparkSession) -> HadoopStorage | ArrowStorage:
    """The backend for ``spark``'s kind of session (see the module docstring)."""
    from tagspark.session import is_connect

    return ArrowStorage() if is_connect(spark) else HadoopStorage(spark)


class HadoopStorage:
    """The Hadoop FileSystem of a classic SparkSession, by URI."""

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
        from py4j.protocol import Py4JJavaError

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


class ArrowStorage:
    """The same operations through ``pyarrow.fs``, for a client without a JVM (Spark
    Connect). Folders exist implicitly on object stores, as with Hadoop's connectors."""

    def __init__(self) -> None:
        self._filesystems: dict[str, object] = {}

    def _at(self, uri: str):
        """The pyarrow filesystem of ``uri`` and the path on it, characters as written."""
        import pyarrow.fs as pafs

        match = re.match(r"^([A-Za-z][\w+.-]*):(?://([^/]*))?(.*)$", uri)
        if match is None:
            return pafs.LocalFileSystem(), os.path.abspath(uri)
        scheme, authority, path = match[1].lower(), match[2] or "", match[3] or "/"
        if scheme == "file":
            return pafs.LocalFileSystem(), path
        root = f"{'s3' if scheme in ('s3a', 's3n') else scheme}://{authority}/"
        if root not in self._filesystems:
            self._filesystems[root] = pafs.FileSystem.from_uri(root)
        fs, base = self._filesystems[root]
        return fs, f"{base.rstrip('/')}/{path.lstrip('/')}" if base else path

    def _info(self, uri: str):
        fs, path = self._at(uri)
        return fs.get_file_info(path)

    def exists(self, uri: str) -> bool:
        import pyarrow.fs as pafs

        return self._info(uri).type != pafs.FileType.NotFound

    def is_dir(self, uri: str) -> bool:
        import pyarrow.fs as pafs

        return self._info(uri).type == pafs.FileType.Directory

    def mkdirs(self, uri: str) -> None:
        fs, path = self._at(uri)
        fs.create_dir(path, recursive=True)

    def delete(self, uri: str) -> bool:
        """Delete a file or a whole folder; False when there was nothing to delete."""
        import pyarrow.fs as pafs

        fs, path = self._at(uri)
        kind = fs.get_file_info(path).type
        if kind == pafs.FileType.NotFound:
            return False
        if kind == pafs.FileType.Directory:
            fs.delete_dir(path)
        else:
            fs.delete_file(path)
        return True

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Create (or replace) the file ``uri`` holding ``data`` (its folder created)."""
        fs, path = self._at(uri)
        fs.create_dir(path.rsplit("/", 1)[0] or "/", recursive=True)
        with fs.open_output_stream(path) as out:
            out.write(data)

    def read_bytes(self, uri: str) -> bytes:
        fs, path = self._at(uri)
        with fs.open_input_stream(path) as stream:
            return stream.read()

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode("utf-8"))

    def list(self, uri: str) -> list[Entry]:
        """The files and folders directly in the folder ``uri``, by name."""
        import pyarrow.fs as pafs

        fs, path = self._at(uri)
        infos = fs.get_file_info(pafs.FileSelector(path))
        return sorted((self._entry(join(uri, i.base_name), i) for i in infos), key=lambda e: e.name)

    def glob(self, pattern: str) -> list[Entry]:
        """What ``pattern`` matches (``*``, ``?``, ``[...]`` within a name, as Hadoop's glob;
        no ``{a,b}``), by URI."""
        head, *parts = pattern.rstrip("/").split("/")
        fixed = [head]
        while parts and not set("*?[") & set(parts[0]):
            fixed.append(parts.pop(0))
        found = ["/".join(fixed)]
        for part in parts:
            found = [
                e.uri for folder in found if self.is_dir(folder)
                for e in self.list(folder) if fnmatchcase(e.name, part)
            ]  # fmt: skip
        return sorted((self._entry(u, self._info(u)) for u in found if self.exists(u)),
                      key=lambda e: e.uri)  # fmt: skip

    def modified(self, uri: str) -> float | None:
        import pyarrow.fs as pafs

        info = self._info(uri)
        return None if info.type == pafs.FileType.NotFound else info.mtime.timestamp()

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which must not exist: checked, then one rename
        (local, HDFS) or a copy and delete (object stores), as Hadoop's connectors do."""
        if self.exists(target):
            raise FileExistsError(target)
        fs, path = self._at(source)
        fs.move(path, self._at(target)[1])

    @staticmethod
    def _entry(uri: str, info) -> Entry:
        import pyarrow.fs as pafs

        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        return Entry(uri, name(uri), info.type == pafs.FileType.Directory, mtime)


# either backend, for annotations
Storage = HadoopStorage | ArrowStorage
