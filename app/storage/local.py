"""Local-directory storage: atomic writes (temp file + rename), streamed reads."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from app.storage.base import Hasher, StoredObject, file_chunks, validate_key

_PARTIAL = ".partial-"


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

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        target = self.path_for(key)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        temp = target.with_name(f"{target.name}{_PARTIAL}{uuid.uuid4().hex}")
        hasher = Hasher()
        handle = await asyncio.to_thread(temp.open, "wb")
        try:
            async for chunk in chunks:
                hasher.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
            await asyncio.to_thread(os.fsync, handle.fileno())
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, temp, target)
        except BaseException:
            handle.close()
            temp.unlink(missing_ok=True)
            raise
        return StoredObject(key=key, size_bytes=hasher.size, checksum_sha256=hasher.hexdigest())

    async def open_stream(self, key: str) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        if not path.is_file():
            raise FileNotFoundError(key)
        return file_chunks(path)

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

    async def ping(self) -> None:
        def probe() -> None:
            if not self.root.is_dir() or not os.access(self.root, os.W_OK):
                raise OSError(f"{self.root} is not a writable directory")

        await asyncio.to_thread(probe)

    async def close(self) -> None:
        return None

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
