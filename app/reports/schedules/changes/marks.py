"""A baseline's keys on disk, for marking each row of a CSV or JSON Lines run while it streams.

The baseline's fingerprints are stored sorted by key (`tracker.py`). Before the rows, their key
hashes (64 bits) and the low 32 bits of their fields hashes are written to two flat files in
the job's scratch directory; the process keeps only every `BLOCK`-th key. A row's key is found
by a binary search of those, one read of its 4 KB block of keys and a binary search in it, then
(when found) one read of its fields hash: about two small reads a row from the page cache, and
a few kilobytes of the process's memory for 1,000,000 rows (the keys in memory would be 12 MB,
over the worker's P1 bound).
"""

from __future__ import annotations

import os
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ADDED, CHANGED, UNCHANGED = "added", "changed", "unchanged"
FIELDS_MASK = 0xFFFFFFFF  # a marked row's fields hash is compared on its low 32 bits
BLOCK = 512  # keys a block (4 KB)
KEY_BYTES, FIELD_BYTES = 8, 4
WRITE_RECORDS = 10_000  # records turned into bytes at a time while the files are written


class BaselineKeys:
    """Marks rows against a baseline (`mark`); `write` first, `close` at the end."""

    def __init__(self, directory: Path) -> None:
        self.keys_path = directory / "baseline-keys.bin"
        self.fields_path = directory / "baseline-fields.bin"
        self.firsts = array("Q")  # every BLOCK-th key
        self.count = 0
        self._keys: int | None = None
        self._fields: int | None = None

    def write(self, records: Iterator[Any]) -> None:
        """Writes the baseline's (key, fields hash, ...) records, sorted by key."""
        with self.keys_path.open("wb") as keys, self.fields_path.open("wb") as fields:
            chunk_keys, chunk_fields = array("Q"), array("I")
            for key, fields_hash, *_ in records:
                value = int(key, 16)
                if self.count % BLOCK == 0:
                    self.firsts.append(value)
                chunk_keys.append(value)
                chunk_fields.append(int(fields_hash, 16) & FIELDS_MASK)
                self.count += 1
                if len(chunk_keys) == WRITE_RECORDS:
                    keys.write(chunk_keys.tobytes())
                    fields.write(chunk_fields.tobytes())
                    chunk_keys, chunk_fields = array("Q"), array("I")
            keys.write(chunk_keys.tobytes())
            fields.write(chunk_fields.tobytes())
        self._keys = os.open(self.keys_path, os.O_RDONLY)
        self._fields = os.open(self.fields_path, os.O_RDONLY)

    def mark(self, record: Any) -> str:
        """`added` (the key is not in the baseline), `changed` or `unchanged`."""
        if self._keys is None or self._fields is None or not self.count:
            return ADDED
        key = int(record[0], 16)
        block = bisect_right(self.firsts, key) - 1
        if block < 0:
            return ADDED
        first = block * BLOCK
        keys = array("Q")
        keys.frombytes(os.pread(self._keys, BLOCK * KEY_BYTES, first * KEY_BYTES))
        at = bisect_left(keys, key)
        if at == len(keys) or keys[at] != key:
            return ADDED
        stored = array("I")
        stored.frombytes(os.pread(self._fields, FIELD_BYTES, (first + at) * FIELD_BYTES))
        same = stored[0] == int(record[1], 16) & FIELDS_MASK
        return UNCHANGED if same else CHANGED

    def close(self) -> None:
        for fd in (self._keys, self._fields):
            if fd is not None:
                os.close(fd)
        self._keys = self._fields = None

    def __del__(self) -> None:  # a run that failed before its comparison
        self.close()
