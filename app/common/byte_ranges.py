"""What a download request asks of a file beyond the whole of it: one byte range (`Range`,
RFC 9110 §14.2), only while the file is still the one the client started with (`If-Range`), or
the bytes gzip-compressed (`Accept-Encoding`). Pure parsing plus one streamed compressor; the
response is put together in `app/runtime/downloads.py`."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

_GZIP_WINDOW = 31  # zlib's window bits for a gzip header and trailer
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its time


class UnsatisfiableRange(ValueError):
    """The range names no byte of the file (it starts at or past the end, or is an empty
    suffix): a 416 with `Content-Range: bytes */<size>`."""


@dataclass(frozen=True)
class ByteRange:
    """The bytes `[start, stop)` of a file of `size` bytes."""

    start: int
    stop: int
    size: int

    @property
    def length(self) -> int:
        return self.stop - self.start

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.stop - 1}/{self.size}"


def requested_range(header: str | None, size: int) -> ByteRange | None:
    """The one range a `Range` header asks for, clipped to the file; None when the whole file
    is to be served: no header, another unit, a malformed value, or several ranges (a server
    may ignore a Range it does not serve, RFC 9110 §14.2; a client resuming a download asks for
    one). Raises `UnsatisfiableRange` when the range holds no byte of the file."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if not first:  # a suffix: the last N bytes
        if not last:
            return None
        wanted = int(last)
        if wanted == 0 or size == 0:
            raise UnsatisfiableRange(header)
        return ByteRange(max(0, size - wanted), size, size)
    start = int(first)
    end = int(last) if last else None
    if end is not None and end < start:
        return None  # not a valid range: ignored
    if start >= size:
        raise UnsatisfiableRange(header)
    stop = size if end is None else min(end + 1, size)
    return ByteRange(start, stop, size)


def if_range_holds(header: str | None, etag: str | None, modified: datetime | None) -> bool:
    """Whether a range may be served: no `If-Range`, or one that names this file's strong ETag
    or its Last-Modified date exactly (RFC 9110 §13.1.5). A weak or different ETag, another
    date or an unreadable value means the file changed: the whole file is served."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith('"'):
        return etag is not None and value == etag
    if value.startswith("W/"):
        return False
    if modified is None:
        return False
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    if date.tzinfo is None:
        return False
    return int(date.timestamp()) == int(modified.timestamp())


def accepts_gzip(header: str | None) -> bool:
    """Whether `Accept-Encoding` accepts gzip: named (or `x-gzip`) with a non-zero q, or `*`
    with a non-zero q while gzip is not refused by name."""
    if not header:
        return False
    named: float | None = None
    anything: float | None = None
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            named = quality
        elif coding == "*":
            anything = quality
    if named is not None:
        return named > 0
    return anything is not None and anything > 0


async def gzipped(chunks: AsyncIterator[bytes], level: int = GZIP_LEVEL) -> AsyncIterator[bytes]:
    """The chunks as one gzip stream, compressed as they come (one chunk in memory at a time;
    zlib runs in a thread, it releases the GIL)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WINDOW)
    async for chunk in chunks:
        packed = await asyncio.to_thread(compressor.compress, chunk)
        if packed:
            yield packed
    yield compressor.flush()
