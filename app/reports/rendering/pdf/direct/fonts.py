"""The data font of the direct table writer: found as fontconfig finds it for WeasyPrint, read
with fontTools (advances, the ``kern`` table, the f-ligatures HarfBuzz applies by default) and
embedded as a subset (a Type 0 font, CIDFontType2, Identity-H, glyph ids kept, ``/W`` widths and
a ``/ToUnicode`` CMap so its text can be copied and read aloud).

A text is "shaped" word by word (``Font.piece``: glyph ids, kerning, width), each word once per
process (a dict), since a report repeats its words on every row.
"""

from __future__ import annotations

import hashlib
import subprocess
import unicodedata
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from typing import Any

from fontTools import subset
from fontTools.ttLib import TTFont

# What the CSS asks for: the table's family (fallback "DejaVu Sans"), and the page furniture's.
CONDENSED, CONDENSED_BOLD, SANS = (
    "DejaVu Sans Condensed",
    "DejaVu Sans Condensed:bold",
    "DejaVu Sans",
)
# HarfBuzz's default "liga" feature of DejaVu: the f-ligatures (longest first).
_LIGATURES = (("ffi", "uniFB03"), ("ffl", "uniFB04"), ("ff", "uniFB00"), ("fi", "fi"), ("fl", "fl"))
# Characters whose shaping or order this writer does not do: right-to-left text, combining marks,
# invisible format characters (but the zero-width space it breaks e-mails at), other spaces.
_BIDI_OTHER = frozenset({"R", "AL", "AN", "RLE", "RLO", "LRE", "LRO", "PDF", "RLI", "LRI", "FSI"})
_BREAKS = frozenset(" \u200b\t\n")  # white space and break points, never shown
_COMPLEX_BLOCKS = ((0x0590, 0x08FF), (0x0900, 0x0DFF), (0x0E00, 0x0FFF), (0x1000, 0x109F),
                   (0x1100, 0x11FF), (0x1780, 0x18AF), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFF))  # fmt: skip
MAX_PIECES = 200_000  # shaped words kept per font (a few MB at most)


def font_file(pattern: str) -> str:
    """The file fontconfig picks for ``pattern`` (as Pango does for WeasyPrint)."""
    found = subprocess.run(
        ["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, check=True
    ).stdout.strip()
    if not found:
        raise FileNotFoundError(f"no font for {pattern!r}")
    return found


@dataclass
class Piece:
    """A shaped word: the TJ operands that show it and its advance in font units."""

    tj: bytes
    width: int
    glyphs: tuple[int, ...]
    text: str = ""


@dataclass
class Font:
    path: str
    units: int
    ascent: int
    descent: int
    cmap: dict[int, int]  # code point -> glyph id
    advances: list[int]  # by glyph id
    kerning: dict[tuple[int, int], int]
    ligatures: list[tuple[str, int]]
    postscript: str
    bbox: tuple[int, int, int, int]
    names: dict[int, str] = field(default_factory=dict)  # glyph id -> the text it shows
    pieces: dict[str, Piece] = field(default_factory=dict)
    _safe: dict[str, bool] = field(default_factory=dict)
    _subsets: dict[frozenset[int], bytes] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> Font:
        font = TTFont(path, lazy=True)
        order = font.getGlyphOrder()
        gid = {name: i for i, name in enumerate(order)}
        cmap = {code: gid[name] for code, name in font.getBestCmap().items()}
        metrics = font["hmtx"].metrics
        advances = [metrics[name][0] for name in order]
        kerning: dict[tuple[int, int], int] = {}
        if "kern" in font:
            for table in font["kern"].kernTables:
                for (left, right), value in table.kernTable.items():
                    if left in gid and right in gid:
                        kerning[(gid[left], gid[right])] = value
        ligatures = [(text, gid[name]) for text, name in _LIGATURES if name in gid]
        head, hhea = font["head"], font["hhea"]
        names = {glyph: chr(code) for code, glyph in sorted(cmap.items(), reverse=True)}
        names.update((glyph, text) for text, glyph in ligatures)
        postscript = str(font["name"].getDebugName(6) or "DejaVuSans").replace(" ", "")
        return cls(
            path, head.unitsPerEm, hhea.ascent, hhea.descent, cmap, advances, kerning,
            ligatures, postscript, (head.xMin, head.yMin, head.xMax, head.yMax), names,
        )  # fmt: skip

    def covers(self, text: str) -> bool:
        """Whether this writer shows ``text`` as WeasyPrint would: every character has a glyph
        and needs no shaping or reordering."""
        if text.isascii():
            return True  # the control characters are gone (``format_cell``); DejaVu has ASCII
        safe = self._safe
        for ch in text:
            ok = safe.get(ch)
            if ok is None:
                ok = safe[ch] = self._plain(ch)
            if not ok:
                return False
        return True

    def _plain(self, ch: str) -> bool:
        if ch in _BREAKS:
            return True
        code = ord(ch)
        if code not in self.cmap or unicodedata.bidirectional(ch) in _BIDI_OTHER:
            return False
        if ch == "\u00a0":  # the no-break space (German percents): shown, never broken at
            return True
        if unicodedata.category(ch)[0] in "MCZ":  # marks, format/private/unassigned, spaces
            return False
        return not any(low <= code <= high for low, high in _COMPLEX_BLOCKS)

    def piece(self, word: str) -> Piece:
        """``word`` shaped: its glyphs (f-ligatures), kerning and advance (cached)."""
        found = self.pieces.get(word)
        if found is not None:
            return found
        glyphs = self._glyphs(word)
        advances, kerning = self.advances, self.kerning
        parts: list[bytes] = []
        run: list[str] = []
        width = 0
        previous = -1
        for glyph in glyphs:
            kern = kerning.get((previous, glyph), 0) if previous >= 0 else 0
            if kern:
                parts.append(b"<" + "".join(run).encode("ascii") + b">")
                parts.append(_number(-kern * 1000 / self.units))
                run = []
                width += kern
            run.append(f"{glyph:04x}")
            width += advances[glyph]
            previous = glyph
        if run:
            parts.append(b"<" + "".join(run).encode("ascii") + b">")
        found = Piece(b"".join(parts), width, tuple(glyphs), word)
        if len(self.pieces) < MAX_PIECES:
            self.pieces[word] = found
        return found

    def _glyphs(self, word: str) -> list[int]:
        cmap, glyphs, i = self.cmap, [], 0
        ligatures = self.ligatures if "f" in word else ()
        while i < len(word):
            for text, glyph in ligatures:
                if word.startswith(text, i):
                    glyphs.append(glyph)
                    i += len(text)
                    break
            else:
                glyphs.append(cmap.get(ord(word[i]), 0))
                i += 1
        return glyphs

    def width(self, word: str) -> int:
        return self.piece(word).width

    def objects(self, glyphs: Iterable[int]) -> FontObjects:
        """The PDF objects embedding the subset of ``glyphs`` (plus .notdef and the space)."""
        used = frozenset(glyphs) | {0, self.cmap.get(32, 0)}
        data = self._subsets.get(used)
        if data is None:
            data = self._subsets[used] = self._subset(used)
            if len(self._subsets) > 64:
                self._subsets.pop(next(iter(self._subsets)))
        tag = "".join(
            chr(65 + b % 26) for b in hashlib.md5(data, usedforsecurity=False).digest()[:6]
        )
        return FontObjects(self, f"{tag}+{self.postscript}", data, sorted(used))

    def _subset(self, used: frozenset[int]) -> bytes:
        font = _full_font(self.path)
        options = subset.Options()
        options.retain_gids = True  # the glyph ids are the CIDs (CIDToGIDMap /Identity)
        options.notdef_outline = True
        options.layout_features = []
        options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "MATH", "FFTM"]
        options.name_IDs = [1, 2, 6]
        options.hinting = False
        subsetter = subset.Subsetter(options)
        subsetter.populate(gids=sorted(used))
        subsetter.subset(font)
        out = BytesIO()
        font.save(out)
        return out.getvalue()


def _full_font(path: str) -> Any:
    return TTFont(BytesIO(_font_bytes(path)))


@cache
def _font_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


@dataclass
class FontObjects:
    font: Font
    base_name: str
    data: bytes
    glyphs: list[int]

    def write(
        self,
        number: int,
        reserve: Callable[[], int],
        write: Callable[[int, bytes], None],
        write_stream: Callable[[int, bytes, bytes], None],
    ) -> None:
        """Writes the Type 0 font (object ``number``) and what it needs."""
        font = self.font
        cid, descriptor, file, to_unicode = (reserve() for _ in range(4))
        scale = 1000 / font.units
        name = b"/" + self.base_name.encode("ascii")
        write(
            number,
            b"<</Type/Font/Subtype/Type0/BaseFont%s/Encoding/Identity-H/DescendantFonts[%d 0 R]"
            b"/ToUnicode %d 0 R>>" % (name, cid, to_unicode),
        )
        write(
            cid,
            b"<</Type/Font/Subtype/CIDFontType2/BaseFont%s/CIDSystemInfo<</Registry(Adobe)"
            b"/Ordering(Identity)/Supplement 0>>/CIDToGIDMap/Identity/FontDescriptor %d 0 R"
            b"/DW 0/W[%s]>>" % (name, descriptor, _widths(self.glyphs, font.advances, scale)),
        )
        x0, y0, x1, y1 = (_number(v * scale) for v in font.bbox)
        write(
            descriptor,
            b"<</Type/FontDescriptor/FontName%s/Flags 4/FontBBox[%s %s %s %s]/ItalicAngle 0"
            b"/Ascent %s/Descent %s/CapHeight %s/StemV 80/FontFile2 %d 0 R>>"
            % (
                name, x0, y0, x1, y1, _number(font.ascent * scale),
                _number(font.descent * scale), _number(font.ascent * scale), file,
            ),
        )  # fmt: skip
        write_stream(
            file, b"/Filter/FlateDecode/Length1 %d" % len(self.data), zlib.compress(self.data)
        )
        write_stream(to_unicode, b"/Filter/FlateDecode", zlib.compress(self._cmap()))

    def _cmap(self) -> bytes:
        names = self.font.names
        entries = [(g, names[g]) for g in self.glyphs if g in names]
        lines = [
            b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            b"/CIDSystemInfo <</Registry (Adobe) /Ordering (UCS) /Supplement 0>> def\n"
            b"/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            b"1 begincodespacerange\n<0000> <ffff>\nendcodespacerange\n"
        ]
        for start in range(0, len(entries), 100):
            block = entries[start : start + 100]
            lines.append(b"%d beginbfchar\n" % len(block))
            for glyph, text in block:
                hex_text = text.encode("utf-16-be").hex().encode("ascii")
                lines.append(b"<%04x> <%s>\n" % (glyph, hex_text))
            lines.append(b"endbfchar\n")
        lines.append(b"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n")
        return b"".join(lines)


def _widths(glyphs: list[int], advances: list[int], scale: float) -> bytes:
    out: list[bytes] = []
    run: list[int] = []
    for glyph in glyphs:
        if run and glyph != run[-1] + 1:
            out.append(_width_run(run, advances, scale))
            run = []
        run.append(glyph)
    if run:
        out.append(_width_run(run, advances, scale))
    return b" ".join(out)


def _width_run(run: list[int], advances: list[int], scale: float) -> bytes:
    widths = b" ".join(_number(advances[g] * scale) for g in run)
    return b"%d[%s]" % (run[0], widths)


def _number(value: float) -> bytes:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return (text if text not in ("", "-0") else "0").encode("ascii")


@cache
def fonts() -> tuple[Font, Font, Font]:
    """The table's regular and bold fonts and the page furniture's, loaded once a process."""
    return (
        Font.load(font_file(CONDENSED)),
        Font.load(font_file(CONDENSED_BOLD)),
        Font.load(font_file(SANS)),
    )
