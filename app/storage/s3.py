"""S3 storage through aioboto3: multipart streaming upload, presigned downloads.

Presigned links are signed for `S3_PUBLIC_ENDPOINT_URL` when set (the host a browser reaches,
e.g. http://localhost:9000 in compose, where the service itself talks to http://minio:9000): the
signature covers the host, so the link cannot be rewritten afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import quote

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.config import Settings
from app.storage.base import READ_CHUNK, Hasher, StorageError, StoredObject, validate_key


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

    async def write_stream(
        self, key: str, chunks: AsyncIterator[bytes], content_type: str
    ) -> StoredObject:
        validate_key(key)
        hasher = Hasher()
        upload = await self._client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=content_type
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        buffer = bytearray()
        try:
            async for chunk in chunks:
                hasher.update(chunk)
                buffer += chunk
                while len(buffer) >= self.part_size:
                    body = bytes(buffer[: self.part_size])
                    del buffer[: self.part_size]
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, body))
            if buffer or not parts:
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            await self._client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            try:
                await self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id
                )
            except Exception:  # the original error is what matters
                pass
            raise
        return StoredObject(key=key, size_bytes=hasher.size, checksum_sha256=hasher.hexdigest())

    async def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        response = await self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    async def open_stream(self, key: str) -> AsyncIterator[bytes]:
        validate_key(key)
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from exc
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

    async def abort_stale_uploads(self, prefix: str = "") -> int:
        """Aborts multipart uploads a killed process left open under `prefix`."""
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                await self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted

    async def ping(self) -> None:
        try:
            await self._client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"bucket {self.bucket!r} is not reachable: {exc}") from exc

    async def close(self) -> None:
        await self._stack.aclose()
