"""File storage behind one interface: a local directory (default) or S3."""

from app.storage.base import Storage, StoredObject, build_storage

__all__ = ["Storage", "StoredObject", "build_storage"]
