"""A stored report file as an HTTP answer, for the two endpoints that stream one (a job's
download on local storage and a delivery link): the whole file, one byte range of it (206,
resumable with `If-Range`), or, for the text formats, the whole file gzip-compressed as it is
read. Parsing is in `app/common/byte_ranges.py`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from fastapi import Response
from fastapi.responses import StreamingResponse

from app.common.byte_ranges import (
    UnsatisfiableRange,
    accepts_gzip,
    gzipped,
    if_range_holds,
    requested_range,
)
from app.common.http import content_disposition
from app.common.time import as_utc
from app.errors import RangeNotSatisfiable
from app.storage import Storage


@dataclass(frozen=True)
class StoredFile:
    """What a download serves: the stored object and what its answer says about it."""

    key: str
    file_name: str
    content_type: str
    size_bytes: int | None
    checksum_sha256: str | None = None
    modified_at: datetime | None = None
    compressible: bool = False  # a text format: gzip when the client accepts it

    @property
    def etag(self) -> str | None:
        """A strong validator: the stored bytes' sha256 (a new attempt is a new file)."""
        return f'"{self.checksum_sha256}"' if self.checksum_sha256 else None


async def serve_file(storage: Storage, request: Mapping[str, str], file: StoredFile) -> Response:
    """The answer to a GET of `file` given the request's headers (`Range`, `If-Range`,
    `Accept-Encoding`). A range is served as identity bytes, never compressed; a request without
    any of these headers gets the answer it always got, plus the validators and
    `Accept-Ranges`. A `FileNotFoundError` when the object is gone."""
    headers = {
        "Content-Disposition": content_disposition(file.file_name),
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    etag = file.etag
    if etag:
        headers["ETag"] = etag
    if file.modified_at is not None:
        headers["Last-Modified"] = format_datetime(as_utc(file.modified_at), usegmt=True)
    if file.compressible:
        headers["Vary"] = "Accept-Encoding"
    size = file.size_bytes
    if size is not None:
        headers["Accept-Ranges"] = "bytes"
        wanted = request.get("range")
        if wanted and if_range_holds(request.get("if-range"), etag, file.modified_at):
            try:
                span = requested_range(wanted, size)
            except UnsatisfiableRange:
                raise RangeNotSatisfiable(
                    f"The file has {size} bytes; the range {wanted!r} names none of them.",
                    size=size,
                ) from None
            if span is not None:
                chunks = await storage.open_stream(file.key, span.start, span.stop)
                headers["Content-Range"] = span.content_range()
                headers["Content-Length"] = str(span.length)
                return StreamingResponse(
                    chunks, status_code=206, media_type=file.content_type, headers=headers
                )
    chunks = await storage.open_stream(file.key)
    if file.compressible and accepts_gzip(request.get("accept-encoding")):
        headers["Content-Encoding"] = "gzip"
        if etag:  # another representation, another validator (RFC 9110 §8.8.3)
            headers["ETag"] = f'"{file.checksum_sha256}-gzip"'
        return StreamingResponse(gzipped(chunks), media_type=file.content_type, headers=headers)
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type=file.content_type, headers=headers)
