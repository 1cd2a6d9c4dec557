"""File storage behind one interface: a local directory (default) or S3.

The factory lives here rather than in ``base`` so the interface imports no backend.
"""

from app.config import Settings, StorageBackend
from app.storage.base import (
    BytePipe,
    ObjectWriter,
    Storage,
    StorageError,
    StoredObject,
    file_chunks,
)
from app.storage.local import LocalStorage


async def build_storage(settings: Settings) -> Storage:
    """The storage backend the settings choose."""
    if settings.storage_backend == StorageBackend.S3:
        # Loaded only for S3: aioboto3 and botocore cost a process ~20 MB.
        from app.storage.s3 import S3Storage

        return await S3Storage.connect(settings)
    return LocalStorage(settings.local_storage_dir)


__all__ = [
    "BytePipe",
    "LocalStorage",
    "ObjectWriter",
    "Storage",
    "StorageError",
    "StoredObject",
    "build_storage",
    "file_chunks",
]
