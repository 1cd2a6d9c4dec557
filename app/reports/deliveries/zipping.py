"""A CSV too large to attach, attached zipped when the zip fits the attachment limit.

Report CSVs repeat the same names, codes and dates on every row, so deflate shrinks them several
times; a 30 MB file often fits a 10 MB limit as a zip. The file is read from storage and
compressed chunk by chunk into the zip in memory, which never grows past the limit: the first
chunk that takes it over stops the work (the message then carries the link, as before).
"""

from __future__ import annotations

import asyncio
import io
import zipfile

from app.common.time import as_utc, utcnow
from app.reports.deliveries.email import Attachment
from app.reports.deliveries.models import DeliveryContent
from app.storage import Storage

ZIP_CONTENT_TYPE = "application/zip"
# A file more than this many times the limit is not tried: report CSVs deflate about 5 to 10
# times (an assumption, not a measurement of every report), so the work would be wasted.
MAX_RATIO = 20


def worth_zipping(content: DeliveryContent, limit: int) -> bool:
    """A CSV over the limit that a zip could still bring under it."""
    size = content.size_bytes
    return (
        content.format == "csv"
        and content.storage_key is not None
        and content.file_name is not None
        and size is not None
        and limit < size <= limit * MAX_RATIO
    )


async def zipped(storage: Storage, content: DeliveryContent, limit: int) -> Attachment | None:
    """The stored CSV as a one-file zip (`<file name>.zip`), or None when the zip would be
    larger than `limit` bytes or the file is gone."""
    assert content.storage_key is not None and content.file_name is not None
    buffer = io.BytesIO()
    member = zipfile.ZipInfo(content.file_name, as_utc(utcnow()).timetuple()[:6])
    member.compress_type = zipfile.ZIP_DEFLATED
    try:
        chunks = await storage.open_stream(content.storage_key)
    except FileNotFoundError:
        return None
    try:
        with (
            zipfile.ZipFile(buffer, "w") as archive,
            archive.open(member, "w", force_zip64=True) as target,
        ):
            async for chunk in chunks:
                await asyncio.to_thread(target.write, chunk)
                if buffer.tell() > limit:
                    return None
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()  # the storage stream, when it was left part-way
    data = buffer.getvalue()
    if len(data) > limit:
        return None
    return Attachment(data, f"{content.file_name}.zip", ZIP_CONTENT_TYPE)
