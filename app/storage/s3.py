"""S3 storage through aioboto3: streamed multipart uploads, presigned downloads.

A write keeps at most about two parts (`S3_PART_SIZE_MB`) in memory: the part being filled and
the one being uploaded meanwhile. A file smaller than one part is sent with a single PutObject
(no multipart upload is opened at all); a larger one opens its multipart upload when its first
part is full, and any failure or cancellation aborts it. Uploads a killed process left open
are aborted by `abort_stale_uploads` (the worker's hourly sweep, docs/reliability.md).

Presigned links are signed for `S3_PUBLIC_ENDPOINT_URL` when set (the host a browser reaches,
e.g. http://localhost:9000 in compose, where the service itself talks to http://minio:9000): the
signature covers the host, so the link cannot be rewritten afterwards."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.config import Settings
from app.storage.base import (
    READ_CHUNK,
    Hasher,
    StorageError,
    StoredObject,
    validate_key,
    write_chunks,
)


async def _nothing() -> AsyncIterator[bytes]:
    """An empty stream (a range past the end of an object)."""
    return
    yield  # an async generator


class S3ObjectWriter:
    """One object on its way to S3 (see the module docstring)."""

    def __init__(
        self, client: Any, bucket: str, key: str, content_type: str, part_size: int
    ) -> None:
        self.key = key
        self._client = client
        self._bucket = bucket
        self._content_type = content_type
        self._part_size = part_size
        self._hasher = Hasher()
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sending: asyncio.Task[dict[str, Any]] | None = None

    @property
    def upload_id(self) -> str | None:
        """The multipart upload's id, once one is open."""
        return self._upload_id

    async def write(self, data: bytes) -> None:
        self._hasher.update(data)
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            await self._send_part(self._part_size)

    async def _send_part(self, size: int) -> None:
        # One part uploads while the next fills: wait for the previous one first, so no more
        # than two parts are ever held.
        await self._wait_sent()
        if self._upload_id is None:
            upload = await self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self.key, ContentType=self._content_type
            )
            self._upload_id = upload["UploadId"]
        with memoryview(self._buffer) as view:
            body, rest = bytes(view[:size]), bytearray(view[size:])
        self._buffer = rest
        number = len(self._parts) + 1
        self._sending = asyncio.create_task(self._upload_part(number, body))

    async def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        response = await self._client.upload_part(
            Bucket=self._bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    async def _wait_sent(self) -> None:
        if self._sending is not None:
            self._parts.append(await self._sending)
            self._sending = None

    async def commit(self) -> StoredObject:
        if self._upload_id is None:  # smaller than a part: one request, no multipart upload
            await self._client.put_object(
                Bucket=self._bucket,
                Key=self.key,
                Body=bytes(self._buffer),
                ContentType=self._content_type,
            )
        else:
            if self._buffer:  # the last part may be smaller than the others
                await self._send_part(len(self._buffer))
            await self._wait_sent()
            await self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._buffer = bytearray()
        return StoredObject(
            key=self.key, size_bytes=self._hasher.size, checksum_sha256=self._hasher.hexdigest()
        )

    async def abort(self) -> None:
        self._buffer = bytearray()
        if self._sending is not None:
            # A part still in flight could land after the abort and be kept (and billed).
            self._sending.cancel()
            with contextlib.suppress(BaseException):
                await self._sending
            self._sending = None
        if self._upload_id is not None:
            with contextlib.suppress(Exception):  # the original error is what matters
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self.key, UploadId=self._upload_id
                )


class S3Storage:
    name = "s3"

    def __init__(
        self, settings: Settings, client: Any, stack: AsyncExitStack, signer: Any = None
    ) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.part_size = settings.s3_part_size_mb * 1024 * 1024
        self._client = client
        self._signer = signer or client  # signs presigned links (no request is sent)
        self._stack = stack

    @classmethod
    async def connect(cls, settings: Settings) -> S3Storage:
        session = aioboto3.Session(
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            region_name=settings.s3_region,
        )
        stack = AsyncExitStack()
        config = Config(
            signature_version="s3v4",
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        client = await stack.enter_async_context(
            session.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)
        )
        signer = None
        public = settings.s3_public_endpoint_url
        if public and public != settings.s3_endpoint_url:
            signer = await stack.enter_async_context(
                session.client("s3", endpoint_url=public, config=config)
            )
        storage = cls(settings, client, stack, signer)
        if settings.s3_create_bucket:
            await storage.ensure_bucket()
        return storage

    async def ensure_bucket(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except ClientError:
            await self._client.create_bucket(Bucket=self.bucket)

    async def open_writer(self, key: str, content_type: str) -> S3ObjectWriter:
        return S3ObjectWriter(
            self._client, self.bucket, validate_key(key), content_type, self.part_size
        )

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        return await write_chunks(await self.open_writer(key, content_type), chunks)

    async def open_stream(
        self, key: str, start: int = 0, stop: int | None = None
    ) -> AsyncIterator[bytes]:
        validate_key(key)
        ranged: dict[str, str] = {}
        if start or stop is not None:
            if stop is not None and stop <= start:
                return _nothing()
            ranged["Range"] = f"bytes={start}-{'' if stop is None else stop - 1}"
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key, **ranged)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
            if code == "InvalidRange":  # at or past the end
                return _nothing()
            raise

        async def chunks() -> AsyncIterator[bytes]:
            body = response["Body"]
            try:
                while True:
                    chunk = await body.read(READ_CHUNK)
                    if not chunk:
                        break
                    yield chunk
            finally:
                body.close()

        return chunks()

    async def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        validate_key(key)
        if end is not None and end <= start:
            return b""
        last = "" if end is None else str(end - 1)
        try:
            response = await self._client.get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes={start}-{last}"
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
            if code == "InvalidRange":  # at or past the end
                return b""
            raise
        body = response["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        return data

    async def presigned_url(
        self, key: str, *, filename: str, content_type: str, ttl_seconds: int
    ) -> str | None:
        validate_key(key)
        disposition = f"attachment; filename*=UTF-8''{quote(filename)}"
        url: str = await self._signer.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ResponseContentDisposition": disposition,
                "ResponseContentType": content_type,
            },
            ExpiresIn=ttl_seconds,
        )
        return url

    async def exists(self, key: str) -> bool:
        try:
            await self._client.head_object(Bucket=self.bucket, Key=validate_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        await self._client.delete_object(Bucket=self.bucket, Key=validate_key(key))

    async def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    async def abort_stale_uploads(self, prefix: str, older_than: timedelta | None = None) -> int:
        """Aborts the multipart uploads under `prefix` opened more than `older_than` ago (all
        when None): those a killed process left open, whose parts are billed until aborted."""
        cutoff = datetime.now(UTC) - older_than if older_than is not None else None
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                initiated = upload.get("Initiated")
                if cutoff is not None and isinstance(initiated, datetime) and initiated > cutoff:
                    continue  # may still be in progress
                try:
                    await self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                        raise
                    continue  # completed or aborted meanwhile
                aborted += 1
        return aborted

    async def ping(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"bucket {self.bucket!r} is not reachable: {exc}") from exc

    async def close(self) -> None:
        await self._stack.aclose()
