"""A sparse index of a row file (CSV, JSON Lines): the byte offset of every `every`-th row.

A writer notes the offset of row 0, `every`, 2 × `every`, … as it writes them, and the index is
stored beside the file. A reader then finds any page with one ranged read: the rows from the
index entry at or before the page's first row up to the entry after its last (at most
`every` rows more than the page), whatever the depth. 1,000,000 rows at the default of one
entry per 1,000 rows make a 1,000-entry index of a few kilobytes.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

INDEX_EVERY = 1000  # rows between two entries
INDEX_VERSION = 1


@dataclass
class RowIndex:
    """`offsets[i]` is the byte offset of row `i * every` (row 0 is the first data row, after
    any header); `rows` and `size` (the file's bytes) are set when the file is complete."""

    every: int = INDEX_EVERY
    offsets: list[int] = field(default_factory=list)
    rows: int = 0
    size: int = 0

    def due(self, row: int) -> bool:
        """Whether row `row` (0-based) starts an entry."""
        return row % self.every == 0

    def note(self, offset: int) -> None:
        """The offset of the next entry's row."""
        self.offsets.append(offset)

    def finish(self, rows: int, size: int) -> None:
        self.rows, self.size = rows, size

    def shifted(self, by: int) -> RowIndex:
        """The same index for a file with `by` bytes put before the rows (a header written
        last)."""
        return RowIndex(self.every, [o + by for o in self.offsets], self.rows, self.size + by)

    def span(self, first: int, count: int) -> tuple[int, int, int | None]:
        """For rows `[first, first + count)`: (the row the span starts with, its byte offset,
        the byte offset where it may stop; None: the end of the file)."""
        if not self.offsets:
            return 0, 0, None
        entry = min(first // self.every, len(self.offsets) - 1)
        after = -(-(first + count) // self.every)  # the entry at or after the last row
        stop = self.offsets[after] if after < len(self.offsets) else None
        return entry * self.every, self.offsets[entry], stop

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "version": INDEX_VERSION,
                "every": self.every,
                "rows": self.rows,
                "size": self.size,
                "offsets": self.offsets,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RowIndex:
        doc = json.loads(data)
        if doc.get("version") != INDEX_VERSION:
            raise ValueError(f"row index version {doc.get('version')!r} is not readable")
        return cls(
            every=int(doc["every"]),
            offsets=[int(o) for o in doc["offsets"]],
            rows=int(doc["rows"]),
            size=int(doc["size"]),
        )


class CountingWriter(io.RawIOBase):
    """A binary stream passing what is written on to `target`, counting the bytes: the offset
    a buffered writer above it has reached once flushed."""

    def __init__(self, target: io.RawIOBase | io.BufferedIOBase) -> None:
        super().__init__()
        self.target = target
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        written = self.target.write(view)
        size = view.nbytes if written is None else written
        if size != view.nbytes:  # a raw file may take part of it; the rest goes now
            rest = view[size:]
            while rest.nbytes:
                more = self.target.write(rest) or 0
                rest = rest[more:]
        self.count += view.nbytes
        return view.nbytes

    def close(self) -> None:
        if not self.closed:
            try:
                self.target.close()
            finally:
                super().close()


__all__ = ["INDEX_EVERY", "CountingWriter", "RowIndex"]
