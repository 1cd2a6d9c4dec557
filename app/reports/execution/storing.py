"""The store step: the job's file goes to storage as it is produced.

A format whose bytes are final as they are written (CSV: ``FormatSpec.streams_bytes``) writes
them into a ``BytePipe`` that is emptied into the storage writer after every batch: S3 parts
upload while the rows are still being fetched, and no copy of the file is ever on local disk.
A file its library assembles when it is closed (an Excel zip, a PDF) is written to the job's
temporary directory, which may take at most ``REPORT_SCRATCH_MAX_MB`` (checked as the rows
arrive and once the file is complete), then uploaded part by part and deleted at once.

Whatever ends the attempt early (an error, a cancel, a lost lease) aborts the write, so no
object and no open multipart upload remains; what a killed worker could not abort is removed
by the worker's hourly sweep of stale uploads.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

from app.reports.execution.outcome import PermanentJobError
from app.reports.formats import FormatSpec
from app.storage import BytePipe, ObjectWriter, Storage, StoredObject
from app.storage.base import abort_quietly, file_chunks

# How often the temporary directory's size is measured while rows arrive.
SCRATCH_CHECK_SECONDS = 0.5


def scratch_bytes(directory: Path) -> int:
    """The bytes of every file under ``directory``."""
    total = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += (Path(root) / name).stat().st_size
    return total


class FileUpload:
    """One attempt's file on its way to ``key``; see the module docstring."""

    def __init__(
        self, storage: Storage, key: str, spec: FormatSpec, path: Path, scratch_limit_mb: int
    ) -> None:
        self.storage = storage
        self.key = key
        self.spec = spec
        self.path = path  # the temporary file of a format that does not stream its bytes
        self.scratch_limit = scratch_limit_mb * 1024 * 1024
        self.pipe = BytePipe() if spec.streams_bytes else None
        self._writer: ObjectWriter | None = None
        self._checked_at = 0.0

    async def _open(self) -> ObjectWriter:
        if self._writer is None:
            self._writer = await self.storage.open_writer(self.key, self.spec.content_type)
        return self._writer

    async def after_batch(self) -> None:
        """Sends the bytes the last batch produced (or checks the temporary space used)."""
        if self.pipe is not None:
            if self.pipe.pending:
                await (await self._open()).write(self.pipe.take())
        elif time.monotonic() - self._checked_at >= SCRATCH_CHECK_SECONDS:
            self._checked_at = time.monotonic()
            await self._check_scratch()

    async def _check_scratch(self) -> None:
        used = await asyncio.to_thread(scratch_bytes, self.path.parent)
        if used > self.scratch_limit:
            raise PermanentJobError(
                "file-too-large",
                f"The {self.spec.label} file needs more than the "
                f"{self.scratch_limit // (1024 * 1024)} MB of temporary space a report may "
                "use. Narrow the date range or filters, or choose CSV.",
            )

    async def complete(self) -> StoredObject:
        """Sends what is left and commits: the object appears whole under ``key``."""
        if self.pipe is None:
            await self._check_scratch()
            writer = await self._open()
            async for chunk in file_chunks(self.path):
                await writer.write(chunk)
            await asyncio.to_thread(self.path.unlink, True)  # its space is free from now on
        elif self.pipe.pending or self._writer is None:  # an empty file is stored too
            await (await self._open()).write(self.pipe.take())
        writer = await self._open()
        stored = await writer.commit()
        self._writer = None  # committed: nothing to abort any more
        return stored

    async def abort(self) -> None:
        """Gives the write up (nothing once committed); never raises."""
        if self._writer is not None:
            await abort_quietly(self._writer)
            self._writer = None


__all__ = ["FileUpload", "scratch_bytes"]
