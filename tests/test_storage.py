from __future__ import annotations

import hashlib
import os
import resource
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.storage import build_storage
from app.storage.local import LocalStorage
from app.storage.s3 import S3Storage

MiB = 1024 * 1024


async def _stream(total: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    """Deterministic pseudo-random bytes, generated on the fly (never held whole)."""
    sent = 0
    counter = 0
    while sent < total:
        block = hashlib.sha256(counter.to_bytes(8, "big")).digest() * (chunk // 32)
        block = block[: min(chunk, total - sent)]
        counter += 1
        sent += len(block)
        yield block


def _expected_sha(total: int) -> str:
    sha = hashlib.sha256()
    counter = 0
    sent = 0
    chunk = 256 * 1024
    while sent < total:
        block = hashlib.sha256(counter.to_bytes(8, "big")).digest() * (chunk // 32)
        block = block[: min(chunk, total - sent)]
        sha.update(block)
        counter += 1
        sent += len(block)
    return sha.hexdigest()


def _rss_mib() -> float:
    with Path("/proc/self/status").open() as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_s3_multipart_upload_is_streamed_and_presigned(
    s3_settings: Settings, resources: object
) -> None:
    storage = await build_storage(s3_settings)
    try:
        size = 20 * MiB
        # Warm up: the first upload loads the S3 client's models and fills its pools.
        await storage.write_stream("warm-up/one-part.bin", _stream(6 * MiB), "text/plain")
        before = _rss_mib()
        stored = await storage.write_stream(
            "reports/2026/11/26/job-1/a1/report.csv", _stream(size), "text/csv"
        )
        grown = _rss_mib() - before
        assert stored.size_bytes == size
        assert stored.checksum_sha256 == _expected_sha(size)
        # 20 MiB went through in 5 MiB parts: memory grows by about a part, not the file.
        assert grown < 12, f"RSS grew by {grown:.1f} MiB while uploading 20 MiB"

        sha = hashlib.sha256()
        async for chunk in await storage.open_stream(stored.key):
            sha.update(chunk)
        assert sha.hexdigest() == stored.checksum_sha256

        url = await storage.presigned_url(
            stored.key, filename="Learner progress.csv", content_type="text/csv", ttl_seconds=60
        )
        assert url and "X-Amz-Signature" in url
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200
        assert hashlib.sha256(response.content).hexdigest() == stored.checksum_sha256
        assert "attachment" in response.headers.get("content-disposition", "")

        assert await storage.exists(stored.key)
        assert await storage.list_keys("reports/2026/11/26/job-1/") == [stored.key]
        await storage.delete(stored.key)
        assert not await storage.exists(stored.key)
    finally:
        await storage.close()


async def test_s3_failed_upload_is_aborted(s3_settings: Settings, resources: object) -> None:
    storage = await build_storage(s3_settings)
    assert isinstance(storage, S3Storage)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (6 * MiB)
        raise RuntimeError("renderer died")

    try:
        with pytest.raises(RuntimeError):
            await storage.write_stream("reports/x/broken.csv", broken(), "text/csv")
        assert not await storage.exists("reports/x/broken.csv")
        assert await storage.abort_stale_uploads("reports/") == 0  # nothing left open
    finally:
        await storage.close()


async def test_local_storage_writes_atomically(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    stored = await storage.write_stream("a/b/report.csv", _stream(3 * MiB), "text/csv")
    assert stored.size_bytes == 3 * MiB
    assert stored.checksum_sha256 == _expected_sha(3 * MiB)
    assert (tmp_path / "a/b/report.csv").stat().st_size == 3 * MiB

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await storage.write_stream("a/b/other.csv", broken(), "text/csv")
    # Neither the target nor a partial file remains.
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["report.csv"]
    assert (
        await storage.presigned_url(
            "a/b/report.csv", filename="r.csv", content_type="text/csv", ttl_seconds=60
        )
        is None
    )
    data = b"".join([c async for c in await storage.open_stream("a/b/report.csv")])
    assert hashlib.sha256(data).hexdigest() == stored.checksum_sha256
    await storage.delete("a/b/report.csv")
    assert not await storage.exists("a/b/report.csv")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "a//b", "a/b c"])
async def test_local_storage_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path)
    with pytest.raises(ValueError, match="unsafe storage key"):
        await storage.exists(key)
    assert os.listdir(tmp_path) == []
