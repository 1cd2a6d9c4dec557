"""Local-directory storage: atomic writes (a ``.partial-`` temp file beside the target, renamed
when committed), streamed reads."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from app.storage.base import (
    Hasher,
    StoredObject,
    file_chunks,
    validate_key,
    write_chunks,
)

_PARTIAL = ".partial-"


class LocalObjectWriter:
    """Writes a temp file beside the target; ``commit`` syncs it and renames it into place."""

    def __init__(self, key: str, target: Path, temp: Path, handle: BinaryIO) -> None:
        self.key = key
        self._target = target
        self._temp = temp
        self._handle = handle
        self._hasher = Hasher()

    @classmethod
    async def open(cls, key: str, target: Path) -> LocalObjectWriter:
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        temp = target.with_name(f"{target.name}{_PARTIAL}{uuid.uuid4().hex}")
        handle = await asyncio.to_thread(temp.open, "wb")
        return cls(key, target, temp, handle)

    async def write(self, data: bytes) -> None:
        self._hasher.update(data)
        await asyncio.to_thread(self._handle.write, data)

    async def commit(self) -> StoredObject:
        handle = self._handle
        await asyncio.to_thread(handle.flush)
        await asyncio.to_thread(os.fsync, handle.fileno())
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, self._temp, self._target)
        return StoredObject(
            key=self.key, size_bytes=self._hasher.size, checksum_sha256=self._hasher.hexdigest()
        )

    async def abort(self) -> None:
        def drop() -> None:
            self._handle.close()
            self._temp.unlink(missing_ok=True)

        await asyncio.to_thread(drop)


class LocalStorage:
    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"unsafe storage key {key!r}")
        return path

    async def open_writer(self, key: str, content_type: str) -> LocalObjectWriter:
        return await LocalObjectWriter.open(key, self.path_for(key))

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        return await write_chunks(await self.open_writer(key, content_type), chunks)

    async def open_stream(
        self, key: str, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return file_chunks(path, start=start, stop=stop)

    async def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        path = self.path_for(key)

        def read() -> bytes:
            with path.open("rb") as handle:
                handle.seek(start)
                return handle.read(-1 if end is None else max(0, end - start))

        return await asyncio.to_thread(read)

    async def presigned_url(
        self, key: str, *, filename: str, content_type: str, ttl_seconds: int
    ) -> str | None:
        return None

    async def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(path.unlink, True)

    async def list_keys(self, prefix: str) -> list[str]:
        """Stored keys under a folder-like prefix (partial writes included, so a sweep can
        remove what a killed process left behind)."""
        base = self.path_for(prefix.rstrip("/"))
        if not base.is_dir():
            return []

        def walk() -> list[str]:
            return sorted(
                p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file()
            )

        return await asyncio.to_thread(walk)

    async def abort_stale_uploads(self, prefix: str, older_than: timedelta | None = None) -> int:
        """Removes the ``.partial-`` files under ``prefix`` that a killed process left (those
        older than ``older_than``; all when None)."""
        base = self.path_for(prefix.rstrip("/"))
        cutoff = time.time() - (older_than.total_seconds() if older_than is not None else 0.0)

        def sweep() -> int:
            removed = 0
            for path in base.rglob(f"*{_PARTIAL}*") if base.is_dir() else ():
                try:
                    if path.is_file() and (older_than is None or path.stat().st_mtime < cutoff):
                        path.unlink()
                        removed += 1
                except OSError:  # gone meanwhile
                    continue
            return removed

        return await asyncio.to_thread(sweep)

    async def ping(self) -> None:
        def probe() -> None:
            if not self.root.is_dir() or not os.access(self.root, os.W_OK):
                raise OSError(f"{self.root} is not a writable directory")

        await asyncio.to_thread(probe)

    async def close(self) -> None:
        return None

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
