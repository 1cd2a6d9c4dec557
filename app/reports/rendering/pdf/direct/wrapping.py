"""A cell's text in lines, as the table's CSS wraps it: white space collapsed (HTML), lines
broken between words only, e-mails also after "@" and "." (the zero-width spaces of
``layout.wrap_points``), a word also after a hyphen or slash that a letter follows (as Unicode
line breaking allows there), and a word wider than its column broken between characters
(``overflow-wrap: break-word``)."""

from __future__ import annotations

import re

from app.reports.rendering.pdf.direct.fonts import Font, Piece
from app.reports.rendering.pdf.layout import ZERO_WIDTH_SPACE

_SPACES = re.compile(r"[ \t\n\r\f]+")  # HTML's white space (not the no-break space)
_SOFT = re.compile(r"(?<=[-/])(?=[^\W\d_])|\u200b")  # break points inside a word
# A line: its pieces with a space before each but the first, and its advance in font units.
Line = tuple[list[Piece], int]


def words(text: str) -> list[list[str]]:
    """``text``'s words, each the pieces it may break between without a space."""
    found = []
    for word in _SPACES.split(text):
        if not word:
            continue
        if ZERO_WIDTH_SPACE in word or "-" in word or "/" in word:
            parts = [part for part in _SOFT.split(word) if part]
            if parts:
                found.append(parts)
        else:
            found.append([word])
    return found


def wrap(text: str, font: Font, room: float) -> list[Line]:
    """The lines of ``text`` in ``font`` within ``room`` font units (one line per break)."""
    piece = font.piece
    space = piece(" ").width
    lines: list[Line] = []
    current: list[Piece] = []
    joins: list[bool] = []  # whether a space precedes each piece of the line
    width = 0
    kerning = font.kerning
    for word in words(text):
        for i, part in enumerate(word):
            shaped = piece(part)
            gap = space if current and i == 0 else 0
            if current and i > 0 and current[-1].glyphs and shaped.glyphs:
                # Inside a word broken at a hyphen or e-mail dot: the pair's kerning stays.
                gap = kerning.get((current[-1].glyphs[-1], shaped.glyphs[0]), 0)
            if current and width + gap + shaped.width > room:
                lines.append(_line(current, joins, width))
                current, joins, width, gap = [], [], 0, 0
            if shaped.width > room and not current:  # alone and still too wide: break it
                chunks = _break_word(part, font, room)
                for chunk in chunks[:-1]:
                    lines.append(([piece(chunk)], piece(chunk).width))
                shaped = piece(chunks[-1])
            if gap and i > 0:
                current.append(_kern(gap, font.units))
                joins.append(False)
            current.append(shaped)
            joins.append(gap > 0 and i == 0)
            width += gap + shaped.width
    if current:
        lines.append(_line(current, joins, width))
    return lines


def _kern(units: int, per_em: int) -> Piece:
    """A kerning adjustment between two pieces of a word, as a TJ operand."""
    text = f"{-units * 1000 / per_em:.3f}".rstrip("0").rstrip(".")
    return Piece(text.encode("ascii"), units, ())


def _line(pieces: list[Piece], joins: list[bool], width: int) -> Line:
    """A line's pieces with the spaces put in as pieces of their own."""
    if not any(joins):
        return (pieces, width)
    out: list[Piece] = []
    for shaped, joined in zip(pieces, joins, strict=True):
        if joined:
            out.append(_SPACE_MARK)
        out.append(shaped)
    return (out, width)


# Stands for the space between two words of a line (the writer shows the font's space there).
_SPACE_MARK = Piece(b"", 0, (), " ")


def is_space(shaped: Piece) -> bool:
    return shaped is _SPACE_MARK


def line_text(line: Line) -> str:
    """What a line shows."""
    return "".join(piece.text for piece in line[0])


def _break_word(word: str, font: Font, room: float) -> list[str]:
    """``word`` cut between characters into lines that fit ``room`` (at least one character
    a line), measured character by character (its pieces are not kept)."""
    chunks: list[str] = []
    start, width = 0, 0
    for end, ch in enumerate(word):
        advance = font.piece(ch).width
        if end > start and width + advance > room:
            chunks.append(word[start:end])
            start, width = end, 0
        width += advance
    chunks.append(word[start:])
    return chunks
