"""Presigned links are signed for the public S3 endpoint (what a browser reaches), while the
service itself talks to the internal one: in compose, http://localhost:9000 vs http://minio:9000."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from app.config import Settings
from app.storage import build_storage


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_presigned_link_points_at_the_public_endpoint_and_works_there(
    s3_settings: Settings, resources: object
) -> None:
    internal = urlsplit(s3_settings.s3_endpoint_url)
    assert internal.hostname == "127.0.0.1"
    public = f"http://localhost:{internal.port}"  # another name for the same server
    settings = s3_settings.model_copy(update={"s3_public_endpoint_url": public})
    storage = await build_storage(settings)
    try:
        stored = await storage.write_stream(
            "reports/x/a1/r.csv", _chunks(b"a,b\n1,2\n"), "text/csv"
        )
        url = await storage.presigned_url(
            stored.key, filename="r.csv", content_type="text/csv", ttl_seconds=60
        )
        assert url and url.startswith(f"{public}/")
        async with httpx.AsyncClient() as http:
            response = await http.get(url)
        assert response.status_code == 200 and response.content == b"a,b\n1,2\n"
    finally:
        await storage.close()
