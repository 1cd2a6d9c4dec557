"""The storage interface. Every method streams: nothing holds a whole file in memory.

A file is written through an ``ObjectWriter`` (``Storage.open_writer``): bytes go in as they are
produced, ``commit`` makes the object appear whole (never a partial object under its key),
``abort`` leaves nothing behind. What a killed process could not abort (an open S3 multipart
upload, a local ``.partial-`` file) is removed by ``abort_stale_uploads``, run periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

READ_CHUNK = 1024 * 1024
_KEY_PART = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    checksum_sha256: str


class StorageError(Exception):
    """A storage operation failed; transient unless said otherwise."""


class ObjectWriter(Protocol):
    """One object being written: ``write`` as bytes are produced, then ``commit`` once (the
    object appears whole under its key) or ``abort`` (nothing is left; never raises)."""

    key: str

    async def write(self, data: bytes) -> None: ...

    async def commit(self) -> StoredObject: ...

    async def abort(self) -> None: ...


class Storage(Protocol):
    name: str

    async def open_writer(self, key: str, content_type: str) -> ObjectWriter: ...

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject: ...

    async def open_stream(
        self, key: str, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[bytes]:
        """The object's bytes ``[start, stop)`` (``stop`` None: to its end) in chunks; a
        ``FileNotFoundError`` when it is not there. A download's byte range streams this way."""
        ...

    async def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        """The bytes ``[start, end)`` of an object (``end`` None: to its end); a
        ``FileNotFoundError`` when it is not there. For reading a few pages of a large file."""
        ...

    async def presigned_url(
        self, key: str, *, filename: str, content_type: str, ttl_seconds: int
    ) -> str | None:
        """A short-lived download URL, or None when the backend serves files itself."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def abort_stale_uploads(self, prefix: str, older_than: timedelta | None = None) -> int:
        """Removes unfinished writes under ``prefix`` started more than ``older_than`` ago (all
        of them when None) that a killed process left behind; returns how many went."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def validate_key(key: str) -> str:
    """Keys are relative paths of safe segments: no traversal, no absolute paths."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"unsafe storage key {key!r}")
    if not all(_KEY_PART.match(p) for p in parts):
        raise ValueError(f"unsafe storage key {key!r}")
    return key


async def file_chunks(
    path: Path, chunk_size: int = READ_CHUNK, *, start: int = 0, stop: int | None = None
) -> AsyncIterator[bytes]:
    """Reads a local file's bytes ``[start, stop)`` (to its end when ``stop`` is None) in
    chunks without blocking the event loop for long."""
    handle = await asyncio.to_thread(path.open, "rb")
    left = None if stop is None else max(0, stop - start)
    try:
        if start:
            await asyncio.to_thread(handle.seek, start)
        while left is None or left > 0:
            size = chunk_size if left is None else min(chunk_size, left)
            chunk = await asyncio.to_thread(handle.read, size)
            if not chunk:
                break
            if left is not None:
                left -= len(chunk)
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


class Hasher:
    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


async def write_chunks(writer: ObjectWriter, chunks: AsyncIterator[bytes]) -> StoredObject:
    """Writes every chunk and commits; aborts the write on any failure or cancellation."""
    try:
        async for chunk in chunks:
            await writer.write(chunk)
        return await writer.commit()
    except BaseException:
        await abort_quietly(writer)
        raise


async def abort_quietly(writer: ObjectWriter) -> None:
    """Aborts ``writer`` to the end even when the caller is being cancelled (the abort is what
    keeps a cancelled job from leaving an open upload behind)."""
    with contextlib.suppress(BaseException):
        await asyncio.shield(writer.abort())


class BytePipe(io.RawIOBase):
    """A binary stream that blocking code (a renderer in a thread) writes into and async code
    empties with ``take``: the bytes of a file on their way to an ``ObjectWriter``, with no
    copy on disk. It holds what was written since the last ``take`` (one batch of rows), and
    can still be emptied after it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self._data = bytearray()
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        with self._lock:
            self._data += view
        return view.nbytes

    @property
    def pending(self) -> int:
        return len(self._data)

    def take(self) -> bytes:
        with self._lock:
            data, self._data = bytes(self._data), bytearray()
        return data
