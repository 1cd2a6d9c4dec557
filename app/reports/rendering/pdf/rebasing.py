"""Copying a file ``PdfWriter`` wrote (a direct chunk) into another as bytes, its objects under
new numbers.

The join copies a WeasyPrint chunk object by object through pikepdf (``copying``): every
structure element of every cell is read into Python objects and serialised again, most of a
long PDF's join. A chunk the PDF's own writer wrote has a form known to the byte: its objects
other than streams packed in object streams (``N`` numbers and offsets, then the bodies, each
followed by a newline), each stream written as ``n 0 obj <<entries/Length L>> stream``, and a
cross-reference stream at the end. ``OwnFile`` reads it back in one pass, and ``copy`` writes its
objects to the joined file with every reference ``n 0 R`` outside a string given its new number
(``/StructParent``/``/StructParents`` keys moved by the chunks before), stream data untouched.
The few objects the join rebuilds itself (catalog, page tree, structure tree root, pages) are
still read through pikepdf; this copies the rest.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from app.reports.rendering.base import RenderError
from app.reports.rendering.pdf.pdfwriter import PdfWriter

# A literal string (skipped: the writer escapes every parenthesis and backslash in one), a key
# into the parent tree, or a reference.
_TOKENS = re.compile(
    rb"\((?:[^\\)]|\\.)*\)|/StructParents? (\d+)|(?<![\w.+-])(\d+) 0 R\b", re.DOTALL
)
_STREAM = re.compile(rb"(\d+) 0 obj\n<<(.*?)/Length (\d+)>>\nstream\n", re.DOTALL)
_XREF_AT = re.compile(rb"startxref\n(\d+)\n%%EOF\s*$")
_WIDTHS = re.compile(rb"/W\[1 (\d) 2\]")
# Kinds of cross-reference entries (PDF 32000-1, 7.5.8.3), as PdfWriter writes them.
_IN_FILE, _PACKED = 1, 2


class OwnFile:
    """The objects of a file written by ``PdfWriter``: ``bodies`` (number -> the bytes of an
    object that is not a stream) and ``streams`` (number -> its entries without ``/Length``, its
    raw data); its object streams and cross-reference stream are not among them."""

    def __init__(self, path: str | Path) -> None:
        data = Path(path).read_bytes()
        end = _XREF_AT.search(data, max(0, len(data) - 64))
        if end is None:
            raise RenderError(f"{path}: not a file the PDF writer wrote (no startxref)")
        xref_at = int(end[1])
        entries, xref = self._stream(data, xref_at)
        widths = _WIDTHS.search(entries)
        if b"/Type/XRef" not in entries or widths is None:
            raise RenderError(f"{path}: not a file the PDF writer wrote (cross-reference)")
        width = int(widths[1])
        rows = zlib.decompress(xref)
        size = 1 + width + 2
        self.bodies: dict[int, bytes] = {}
        self.streams: dict[int, tuple[bytes, bytes]] = {}
        packed: dict[int, list[tuple[int, int]]] = {}  # object stream -> (place, number)
        for number in range(1, len(rows) // size):
            row = rows[number * size : (number + 1) * size]
            kind, where = row[0], int.from_bytes(row[1 : 1 + width], "big")
            if kind == _IN_FILE and where != xref_at:
                self.streams[number] = self._stream(data, where)
            elif kind == _PACKED:
                packed.setdefault(where, []).append((int.from_bytes(row[-2:], "big"), number))
        for holder, members in packed.items():
            entries, raw = self.streams.pop(holder)
            self._unpack(entries, zlib.decompress(raw), dict(members))

    @staticmethod
    def _stream(data: bytes, at: int) -> tuple[bytes, bytes]:
        head = _STREAM.match(data, at)
        if head is None:
            raise RenderError(f"no stream object at offset {at}")
        start = head.end()
        return head[2], data[start : start + int(head[3])]

    def _unpack(self, entries: bytes, data: bytes, numbers: Mapping[int, int]) -> None:
        counts = re.search(rb"/N (\d+)/First (\d+)", entries)
        if b"/Type/ObjStm" not in entries or counts is None:
            raise RenderError("an object stream the PDF writer did not write")
        count, first = int(counts[1]), int(counts[2])
        head = [int(n) for n in data[:first].split()]
        offsets = [first + at for at in head[1::2]] + [len(data) + 1]
        for place in range(count):
            number = head[2 * place]
            if numbers.get(place) != number:
                raise RenderError(f"object {number} is not where the cross-reference says")
            self.bodies[number] = data[offsets[place] : offsets[place + 1] - 1]

    @property
    def numbers(self) -> Iterable[int]:
        """Every object's number."""
        return [*self.bodies, *self.streams]

    def copy(
        self,
        writer: PdfWriter,
        numbers: Mapping[int, int],
        written: Iterable[int],
        key_offset: int = 0,
    ) -> None:
        """Writes the objects ``written`` (their old numbers) to ``writer``, each under
        ``numbers[old]``, every reference in them to ``numbers[old]`` of what it points at and
        every key into the parent tree moved by ``key_offset``."""
        rebase = _rebaser(numbers, key_offset)
        for old in written:
            body = self.bodies.get(old)
            if body is not None:
                writer.write(numbers[old], _TOKENS.sub(rebase, body))
            else:
                entries, raw = self.streams[old]
                writer.write_stream(numbers[old], _TOKENS.sub(rebase, entries), raw)


def _rebaser(numbers: Mapping[int, int], key_offset: int) -> Callable[[re.Match[bytes]], bytes]:
    def rebase(token: re.Match[bytes]) -> bytes:
        old = token[2]
        if old is not None:
            number = numbers.get(int(old))
            if number is None:
                raise RenderError(f"a reference to object {int(old)}, which the join left out")
            return b"%d 0 R" % number
        key = token[1]
        if key is not None:
            return token[0][: -len(key)] + b"%d" % (int(key) + key_offset)
        return token[0]  # a string, as it is

    return rebase
