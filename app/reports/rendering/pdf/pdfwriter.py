"""A PDF file written object by object, front to back, never held whole (PDF 1.5: object
streams and a cross-reference stream).

An object gets its number when something first needs to point at it (``reserve``) and is
written once its bytes are known, in any order. Objects other than streams are packed into
compressed object streams of ``PACK`` objects; a stream goes to the file at once, its data as
given (already encoded: its filters are in its dictionary). What stays in memory until ``close``
is where each object went (13 bytes an object) and the objects of the object stream being
filled; ``close`` writes the cross-reference stream and the trailer.
"""

from __future__ import annotations

import zlib
from array import array
from pathlib import Path
from typing import BinaryIO

PACK = 100  # objects an object stream holds (as qpdf packs them)
PACK_BYTES = 1 << 16  # ... or fewer, once their bytes reach this
# Kinds of cross-reference entries (PDF 32000-1, 7.5.8.3).
_FREE, _IN_FILE, _PACKED = 0, 1, 2


class PdfWriter:
    """``reserve()`` a number, ``write(number, body)`` an object that is not a stream (its
    bytes without ``obj``/``endobj``), ``write_stream(number, entries, data)`` a stream (its
    dictionary's entries without ``/Length``, its raw data), then ``close(root, info, ids)``."""

    def __init__(self, path: str | Path, version: str = "1.7") -> None:
        self._file: BinaryIO = Path(path).open("wb")  # noqa: SIM115 - closed by close / abort
        self._offset = 0
        self._put(b"%PDF-" + version.encode("ascii") + b"\n%\xe2\xe3\xcf\xd3\n")
        # Per object number: its kind, its offset (or its object stream's number) and its
        # place in its object stream. Number 0 is the head of the free list.
        self._kinds = bytearray(b"\x00")
        self._where = array("Q", [0])
        self._place = array("H", [0])
        self._packed: list[tuple[int, bytes]] = []
        self._packed_bytes = 0

    @property
    def objects(self) -> int:
        """Object numbers handed out so far."""
        return len(self._kinds) - 1

    def reserve(self) -> int:
        self._kinds.append(_FREE)
        self._where.append(0)
        self._place.append(0)
        return len(self._kinds) - 1

    def write(self, number: int, body: bytes) -> None:
        self._claim(number)
        self._packed.append((number, body))
        self._packed_bytes += len(body)
        if len(self._packed) >= PACK or self._packed_bytes >= PACK_BYTES:
            self._flush_packed()

    def write_stream(self, number: int, entries: bytes, data: bytes) -> None:
        self._claim(number)
        self._kinds[number] = _IN_FILE
        self._where[number] = self._offset
        self._put(b"%d 0 obj\n<<%s/Length %d>>\nstream\n" % (number, entries, len(data)))
        self._put(data)
        self._put(b"\nendstream\nendobj\n")

    def close(self, root: int, info: bytes | None, ids: tuple[bytes, bytes]) -> None:
        """Writes the last object stream, the cross-reference stream (with the trailer's
        entries: ``/Root``, ``/Info``, ``/ID``) and ``startxref``; closes the file."""
        self._flush_packed()
        missing = [n for n in range(1, len(self._kinds)) if self._kinds[n] == _FREE]
        if missing:
            raise ValueError(f"PDF objects reserved but never written: {missing[:5]}")
        number = self.reserve()
        self._kinds[number] = _IN_FILE
        start = self._where[number] = self._offset
        width = max(1, (max(self._where).bit_length() + 7) // 8)
        rows = bytearray()
        for n, kind in enumerate(self._kinds):
            rows.append(kind)
            rows += self._where[n].to_bytes(width, "big")
            rows += (0xFFFF if n == 0 else self._place[n]).to_bytes(2, "big")
        data = zlib.compress(bytes(rows))
        trailer = b"/Root %d 0 R" % root
        if info is not None:
            trailer += b"/Info " + info
        trailer += b"/ID[<%s><%s>]" % (ids[0].hex().encode(), ids[1].hex().encode())
        self._put(
            b"%d 0 obj\n<</Type/XRef/Size %d/W[1 %d 2]%s/Filter/FlateDecode/Length %d>>\nstream\n"
            % (number, len(self._kinds), width, trailer, len(data))
        )
        self._put(data)
        self._put(b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % start)
        self._file.close()

    def abort(self) -> None:
        self._file.close()

    def _claim(self, number: int) -> None:
        if not 0 < number < len(self._kinds) or self._kinds[number] != _FREE:
            raise ValueError(f"PDF object {number} not reserved or written twice")
        self._kinds[number] = _PACKED  # taken (the object stream's number follows)

    def _flush_packed(self) -> None:
        if not self._packed:
            return
        number = self.reserve()
        heads, bodies, at = [], [], 0
        for place, (packed, body) in enumerate(self._packed):
            self._where[packed] = number
            self._place[packed] = place
            heads.append(b"%d %d" % (packed, at))
            bodies.append(body)
            at += len(body) + 1
        head = b" ".join(heads) + b"\n"
        data = zlib.compress(head + b"\n".join(bodies))
        self._packed, self._packed_bytes = [], 0
        entries = b"/Type/ObjStm/N %d/First %d/Filter/FlateDecode" % (len(heads), len(head))
        self.write_stream(number, entries, data)

    def _put(self, data: bytes) -> None:
        self._file.write(data)
        self._offset += len(data)
