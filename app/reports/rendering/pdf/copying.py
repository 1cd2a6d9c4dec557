"""Copying the objects of a PDF open in pikepdf into a ``PdfWriter``, each under a new number.

Objects are serialised by walking them (pikepdf's dictionaries, arrays, names, strings,
numbers), never by rewriting their text: a reference is written with the number its object
has in the new file, given on first sight (``ref``), and the object is queued to be written
by ``drain``. A stream's data is copied raw, its filters kept. Objects the caller writes itself
(a chunk's catalog, page tree, structure tree root and ``Document`` element, which the joined
file has once) are given their new number up front (``fixed``) and are never walked into.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pikepdf

from app.reports.rendering.base import RenderError
from app.reports.rendering.pdf.pdfwriter import PdfWriter

# A name's bytes that must be written as #xx (PDF 32000-1, 7.3.5): delimiters, '#', whitespace
# and anything outside the printable ASCII range.
_ESCAPED_IN_NAMES = frozenset(b"#()<>[]{}/%")
# A literal string keeps its bytes but these (a lone CR would be read as LF).
_STRING_ESCAPES = {ord("\\"): b"\\\\", ord("("): b"\\(", ord(")"): b"\\)", ord("\r"): b"\\r"}
_NAMES: dict[str, bytes] = {}
_PARENT_TREE_KEYS = frozenset({"/StructParents", "/StructParent"})
# Changes to a dictionary's entries: a key to its new serialised value, or None to leave it out.
Patch = Mapping[str, bytes | None]
ObjGen = tuple[int, int]
_DIRECT: ObjGen = (0, 0)
# pikepdf's ObjectType values (``Object._type_code_int``).
_TYPE = pikepdf.ObjectType
_NULL, _STRING, _NAME = _TYPE.null.value, _TYPE.string.value, _TYPE.name_.value
_ARRAY, _DICTIONARY, _STREAM = _TYPE.array.value, _TYPE.dictionary.value, _TYPE.stream.value
assert _ARRAY + 1 == _DICTIONARY == _STREAM - 1  # containers: one range of codes


def name(text: str) -> bytes:
    """``/Type`` -> ``b"/Type"``, ``/A B`` -> ``b"/A#20B"``."""
    found = _NAMES.get(text)
    if found is None:
        raw = text.encode("utf-8")[1:]
        found = b"/" + b"".join(
            b"#%02X" % c if c < 0x21 or c > 0x7E or c in _ESCAPED_IN_NAMES else bytes((c,))
            for c in raw
        )
        if len(_NAMES) < 10_000:
            _NAMES[text] = found
    return found


def literal(data: bytes) -> bytes:
    """A literal string holding ``data`` exactly."""
    if b"\\" in data or b"(" in data or b")" in data or b"\r" in data:
        data = b"".join(_STRING_ESCAPES.get(c, bytes((c,))) for c in data)
    return b"(" + data + b")"


def real(value: Decimal) -> bytes:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return (text if text not in ("", "-", "-0") else "0").encode("ascii")


class ObjectCopier:
    """Copies objects of one source PDF to ``writer``; ``numbers`` maps a source object
    (``objgen``) to its number in the new file."""

    def __init__(
        self, writer: PdfWriter, fixed: Mapping[ObjGen, int] | None = None, key_offset: int = 0
    ) -> None:
        self.writer = writer
        self.numbers: dict[ObjGen, int] = dict(fixed or {})
        # Added to every /StructParents (a page's) and /StructParent (an annotation's, an
        # XObject's) key into the parent tree: the chunk's keys follow those of the chunks
        # before it.
        self.key_offset = key_offset
        # Objects written with some entries changed (the pages), by ``objgen``.
        self.patches: dict[ObjGen, Patch] = {}
        self._todo: list[Any] = []

    def ref(self, obj: Any) -> int:
        """The new number of the indirect object ``obj``; queued to be written if new."""
        key: ObjGen = obj.objgen
        number = self.numbers.get(key)
        if number is None:
            number = self.numbers[key] = self.writer.reserve()
            self._todo.append(obj)
        return number

    def copy_as(self, obj: Any, number: int) -> None:
        """Writes the indirect object ``obj`` (queued) under the reserved ``number``."""
        self.numbers[obj.objgen] = number
        self._todo.append(obj)

    def value(self, obj: Any) -> bytes:
        """``obj`` serialised: a direct object in full, an indirect one as a reference."""
        out: list[bytes] = []
        self._put(obj, out)
        return b"".join(out)

    def entries(self, dictionary: Any, patch: Patch | None = None) -> bytes:
        """A dictionary's entries (``/Key value...``, no brackets), changed by ``patch``."""
        out: list[bytes] = []
        self._entries(dictionary, out, patch)
        return b"".join(out)

    def drain(self) -> None:
        """Writes every queued object, and what they point at, until none is left."""
        todo = self._todo
        while todo:
            obj = todo.pop()
            number = self.numbers[obj.objgen]
            patch = self.patches.pop(obj.objgen, None)
            code = obj._type_code_int
            if code == _STREAM:
                out: list[bytes] = []
                self._entries(obj.stream_dict, out, {"/Length": None, **(patch or {})})
                self.writer.write_stream(number, b"".join(out), obj.read_raw_bytes())
            elif code == _DICTIONARY:
                out = [b"<<"]
                self._entries(obj, out, patch)
                out.append(b">>")
                self.writer.write(number, b"".join(out))
            elif code == _ARRAY:
                out = []
                self._array(obj, out)
                self.writer.write(number, b"".join(out))
            else:  # pikepdf resolves indirect numbers, names, strings and nulls
                raise RenderError(f"cannot copy PDF object {obj.objgen}")

    def _entries(self, dictionary: Any, out: list[bytes], patch: Patch | None) -> None:
        put, names = self._put, _NAMES
        items: Iterable[tuple[str, Any]] = dictionary.items()
        for key, value in items:
            if patch is not None and key in patch:
                continue
            out.append(names.get(key) or name(key))
            out.append(b" ")
            if key in _PARENT_TREE_KEYS and type(value) is int:
                out.append(b"%d" % (value + self.key_offset))
            else:
                put(value, out)
        if patch is not None:
            for key, replaced in patch.items():
                if replaced is not None:
                    out.append(names.get(key) or name(key))
                    out.append(b" ")
                    out.append(replaced)

    def _array(self, array: Any, out: list[bytes]) -> None:
        put = self._put
        out.append(b"[")
        for item in array:
            put(item, out)
            out.append(b" ")
        if out[-1] == b" ":
            out[-1] = b"]"
        else:
            out.append(b"]")

    def _put(self, obj: Any, out: list[bytes]) -> None:
        kind = type(obj)
        if kind is int:
            out.append(b"%d" % obj)
        elif obj is None:
            out.append(b"null")
        elif kind is bool:
            out.append(b"true" if obj else b"false")
        elif kind is Decimal:
            out.append(real(obj))
        else:
            # pikepdf's object kinds are told apart by their type code (an isinstance check
            # costs twice as much, ``is_indirect`` five times as much as ``objgen``).
            code: int = obj._type_code_int
            if code == _NAME:
                text = str(obj)
                out.append(_NAMES.get(text) or name(text))
            elif code == _STRING:
                out.append(literal(bytes(obj)))
            elif _ARRAY <= code <= _STREAM:
                key: ObjGen = obj.objgen
                if key != _DIRECT:
                    number = self.numbers.get(key)
                    if number is None:
                        number = self.numbers[key] = self.writer.reserve()
                        self._todo.append(obj)
                    out.append(b"%d 0 R" % number)
                elif code == _DICTIONARY:
                    out.append(b"<<")
                    self._entries(obj, out, None)
                    out.append(b">>")
                elif code == _ARRAY:
                    self._array(obj, out)
                else:
                    raise RenderError("a PDF stream that is not an indirect object")
            elif code == _NULL:
                out.append(b"null")
            else:
                raise RenderError(f"cannot copy a PDF value of type {obj._type_code}")
