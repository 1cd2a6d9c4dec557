"""The storage interface. Every method streams: nothing holds a whole file in memory."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

READ_CHUNK = 1024 * 1024
_KEY_PART = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class StoredObject:
    key: str
    size_bytes: int
    checksum_sha256: str


class StorageError(Exception):
    """A storage operation failed; transient unless said otherwise."""


class Storage(Protocol):
    name: str

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject: ...

    async def open_stream(self, key: str) -> AsyncIterator[bytes]: ...

    async def presigned_url(
        self, key: str, *, filename: str, content_type: str, ttl_seconds: int
    ) -> str | None:
        """A short-lived download URL, or None when the backend serves files itself."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def list_keys(self, prefix: str) -> list[str]: ...

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


async def file_chunks(path: Path, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
    """Reads a local file in chunks without blocking the event loop for long."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            chunk = await asyncio.to_thread(handle.read, chunk_size)
            if not chunk:
                break
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
