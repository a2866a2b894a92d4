"""Local-directory stand-in for the S3 buckets that handlers name in their actions.

A bucket is a directory; an object key is a relative path inside it. Keys are
validated before they touch the file system and the final path is checked again
after symlinks are resolved, so no key ("../x", "/etc/passwd", "a/../../b", a
symlink pointing out of the bucket, ...) can reach a file outside its bucket.

Writes are atomic: the data goes to a temporary file in the destination
directory, which is flushed, fsync'ed and renamed over the destination with
``os.replace``; the directory is then fsync'ed so the rename survives a crash.
Readers therefore see either the old object or the complete new one, never a
half-written file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator, Mapping

__all__ = [
    "ObjectAccessError",
    "BucketStore",
    "atomic_write_bytes",
    "atomic_writer",
    "fsync_directory",
]

# Longest key S3 accepts (UTF-8 bytes).
MAX_KEY_BYTES = 1024


class ObjectAccessError(Exception):
    """A bucket or object cannot be accessed (the "Cannot access S3 bucket or audio file." case).

    ``reason`` is one of: ``"no_such_bucket"``, ``"invalid_key"``, ``"no_such_key"``,
    ``"not_a_file"``, ``"not_readable"``.
    """

    def __init__(self, bucket: str, key: str, reason: str, detail: str = "") -> None:
        self.bucket = bucket
        self.key = key
        self.reason = reason
        self.detail = detail
        text = f"s3://{bucket}/{key}: {reason}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so that a rename/creation inside it is durable."""
    try:
        fd = os.open(os.fspath(directory), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # pragma: no cover - some file systems refuse
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file; on normal exit it atomically becomes ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    The parent directory must exist.
    """
    target = Path(path)
    directory = target.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_directory(directory)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> Path:
    """Atomically replace ``path`` with ``data`` (temp file + fsync + rename + directory fsync)."""
    with atomic_writer(path, mode) as fh:
        fh.write(data)
    return Path(path)


def _validate_key(bucket: str, key: str) -> tuple[str, ...]:
    """Split an object key into safe path components or raise ObjectAccessError."""
    if not isinstance(key, str) or not key:
        raise ObjectAccessError(bucket, str(key), "invalid_key", "empty key")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ObjectAccessError(bucket, key, "invalid_key", "key longer than 1024 bytes")
    if "\x00" in key:
        raise ObjectAccessError(bucket, key, "invalid_key", "NUL in key")
    if "\\" in key:
        # Not a separator on POSIX, but refuse it so a key can never mean a
        # different file on another platform.
        raise ObjectAccessError(bucket, key, "invalid_key", "backslash in key")
    if key.startswith("/") or os.path.isabs(key):
        raise ObjectAccessError(bucket, key, "invalid_key", "absolute key")
    parts = tuple(key.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise ObjectAccessError(bucket, key, "invalid_key", "empty, '.' or '..' path segment")
    return parts


class BucketStore:
    """Maps S3 bucket names to local directories.

    ``BucketStore({"demo-prompts": Path("/var/lib/chimevoice/prompts")})``
    """

    def __init__(self, buckets: Mapping[str, str | os.PathLike[str]]) -> None:
        self._buckets: dict[str, Path] = {}
        for name, directory in buckets.items():
            if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
                raise ValueError(f"invalid bucket name: {name!r}")
            self._buckets[name] = Path(directory).expanduser().absolute()

    # -- introspection -------------------------------------------------------------------
    @property
    def buckets(self) -> dict[str, Path]:
        """Configured bucket name -> directory (a copy)."""
        return dict(self._buckets)

    def has_bucket(self, bucket: str) -> bool:
        return bucket in self._buckets

    def bucket_dir(self, bucket: str, *, create: bool = False) -> Path:
        """Directory of ``bucket``; ``create=True`` makes it if missing."""
        try:
            directory = self._buckets[bucket]
        except (KeyError, TypeError):
            raise ObjectAccessError(str(bucket), "", "no_such_bucket") from None
        if create:
            directory.mkdir(parents=True, exist_ok=True)
        return directory

    # -- paths ---------------------------------------------------------------------------
    def object_path(self, bucket: str, key: str) -> Path:
        """Path an object would have; validates the key but does not require the object to exist."""
        directory = self.bucket_dir(bucket)
        parts = _validate_key(bucket, key)
        path = directory.joinpath(*parts)
        self._check_inside(bucket, key, directory, path)
        return path

    @staticmethod
    def _check_inside(bucket: str, key: str, directory: Path, path: Path) -> None:
        # Resolve symlinks (of existing prefixes) and make sure we stay in the bucket.
        real_dir = Path(os.path.realpath(directory))
        real_path = Path(os.path.realpath(path))
        if real_path != real_dir and real_dir not in real_path.parents:
            raise ObjectAccessError(bucket, key, "invalid_key", "key resolves outside the bucket")

    def resolve(self, bucket: str, key: str) -> Path:
        """Path of an existing, readable object; raises ObjectAccessError otherwise."""
        path = self.object_path(bucket, key)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ObjectAccessError(bucket, key, "no_such_key") from None
        except NotADirectoryError:
            raise ObjectAccessError(bucket, key, "no_such_key") from None
        except PermissionError as exc:
            raise ObjectAccessError(bucket, key, "not_readable", str(exc)) from None
        except OSError as exc:
            raise ObjectAccessError(bucket, key, "not_readable", str(exc)) from None
        if not stat.S_ISREG(st.st_mode):
            raise ObjectAccessError(bucket, key, "not_a_file")
        # os.access() is meaningless for root; opening the file is the real test.
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ObjectAccessError(bucket, key, "not_readable", str(exc)) from None
        return path

    # -- writes --------------------------------------------------------------------------
    def _prepare_write(self, bucket: str, key: str) -> Path:
        directory = self.bucket_dir(bucket, create=True)
        path = self.object_path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # A symlinked sub-directory created concurrently could still point out: re-check.
        self._check_inside(bucket, key, directory, path)
        if path.is_dir():
            raise ObjectAccessError(bucket, key, "not_a_file", "a directory has this name")
        return path

    def writable_path(self, bucket: str, key: str) -> Path:
        """Where the object (bucket, key) is to be written (parent directories made);
        raises ObjectAccessError for an unknown bucket or a bad key."""
        return self._prepare_write(bucket, key)

    def put_atomic(self, bucket: str, key: str, data: bytes) -> Path:
        """Store ``data`` as the object (atomic replace). Creates the bucket directory if needed."""
        path = self._prepare_write(bucket, key)
        return atomic_write_bytes(path, data)

    @contextlib.contextmanager
    def open_atomic_writer(self, bucket: str, key: str) -> Iterator[BinaryIO]:
        """``with store.open_atomic_writer(b, k) as fh: fh.write(...)`` — the object appears on exit."""
        path = self._prepare_write(bucket, key)
        with atomic_writer(path) as fh:
            yield fh
