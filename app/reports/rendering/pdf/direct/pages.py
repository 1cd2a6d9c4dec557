"""The geometry of a detail-table page as ``report.css`` lays it out, the rows laid out in cells
and lines, the rows put on pages, and each page's content stream.

Lengths are CSS pixels (0.75 pt) with y going down, as WeasyPrint draws (its content streams
start with the same transform), so the numbers below are the stylesheet's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.reports.rendering.pdf.direct.fonts import Font
from app.reports.rendering.pdf.direct.wrapping import Line, is_space, wrap
from app.reports.rendering.pdf.layout import Layout

MM = 96 / 25.4  # CSS pixels a millimetre
PT = 4 / 3  # CSS pixels a point
_HEAD_FILL = b"0.117647 0.227451 0.372549"  # #1e3a5f
_ZEBRA_FILL = b"0.933333 0.94902 0.964706"  # #eef2f6
_TEXT_FILL = b"0.117647 0.160784 0.231373"  # #1e293b
_FURNITURE_FILL = b"0.392157 0.454902 0.545098"  # #64748b
FURNITURE_PX = 7 * PT  # the running header's and footer's font size
FONT_NAMES = (b"/F1", b"/F2", b"/F3")  # regular, bold, furniture


@dataclass(frozen=True)
class Geometry:
    width: float  # the page
    height: float
    left: float
    top: float
    bottom: float  # where the page's content ends
    xs: list[float]  # each column's left edge
    widths: list[float]
    size: float  # the data font size
    line: float  # line height (1.12)

    @classmethod
    def of(cls, layout: Layout) -> Geometry:
        width, height = 210 * MM, 297 * MM
        if layout.landscape:
            width, height = height, width
        left, top = 11 * MM, 15 * MM
        table = width - 2 * left
        widths = [table * w / 100 for w in layout.widths]
        xs, x = [], left
        for w in widths:
            xs.append(x)
            x += w
        size = layout.font_size_pt * PT
        return cls(width, height, left, top, height - top, xs, widths, size, size * 1.12)

    def baseline(self, font: Font, size: float, line: float) -> float:
        """From a line's top to its baseline: the half-leading and the font's ascent."""
        ascent, descent = font.ascent / font.units * size, -font.descent / font.units * size
        return (line - ascent - descent) / 2 + ascent


HEAD_PAD = 1.2 * MM
CELL_PAD_X, CELL_PAD_Y = 1.2 * MM, 0.4 * MM
TOTAL_BORDER, TOTAL_PAD_TOP = 0.6 * PT, 0.8 * MM


@dataclass
class Row:
    cells: list[list[Line]]  # each cell's lines
    height: float
    zebra: bool = False
    total: bool = False


def lay_out_row(
    texts: Sequence[str], font: Font, geometry: Geometry, *, zebra: bool, total: bool = False
) -> Row:
    """One row's cells in lines (each within its column less the padding) and its height."""
    scale = font.units / geometry.size
    cells = [
        wrap(text, font, (width - 2 * CELL_PAD_X) * scale) if text else []
        for text, width in zip(texts, geometry.widths, strict=True)
    ]
    lines = max((len(c) for c in cells), default=0)
    pad = TOTAL_BORDER + TOTAL_PAD_TOP + CELL_PAD_Y if total else 2 * CELL_PAD_Y
    return Row(cells, lines * geometry.line + pad, zebra, total)


def head_row(labels: Sequence[str], bold: Font, geometry: Geometry) -> Row:
    scale = bold.units / geometry.size
    cells = [
        wrap(label, bold, (width - 2 * HEAD_PAD) * scale)
        for label, width in zip(labels, geometry.widths, strict=True)
    ]
    lines = max((len(c) for c in cells), default=0)
    return Row(cells, lines * geometry.line + 2 * HEAD_PAD)


def paginate(rows: Sequence[Row], head: Row, geometry: Geometry) -> list[list[int]]:
    """The rows of each page (by index): as many as fit under the repeated header, a row never
    split, the totals row (last, if any) kept on the page of the row before it."""
    pages: list[list[int]] = [[]]
    room = geometry.bottom - geometry.top - head.height
    y = 0.0
    last = len(rows) - 1
    for i, row in enumerate(rows):
        need = row.height
        if rows[last].total and i == last - 1:  # the last row goes with the totals row
            need += rows[last].height
        if pages[-1] and y + need > room and not (row.total and i == last):
            pages.append([])
            y = 0.0
        pages[-1].append(i)
        y += row.height
    return pages


@dataclass
class Cell:
    """A cell's place on a page, for the tags: its column and its marked-content id."""

    column: int
    mcid: int | None  # None: an empty cell (no marked content)


def page_stream(
    rows: Sequence[Row],
    indices: Sequence[int],
    head: Row,
    numeric: tuple[Sequence[bool], Sequence[bool]],
    fonts: tuple[Font, Font, Font],
    geometry: Geometry,
    furniture: tuple[str, str, str],
) -> tuple[bytes, list[Cell], list[list[Cell]]]:
    """A page's content stream, its header cells and the cells of each of its rows;
    ``numeric``: the columns set right, in the rows and in the totals row."""
    g = geometry
    regular, bold, small = fonts
    out: list[bytes] = [b"q 1 0 0 -1 0 %s cm 0.75 0 0 0.75 0 0 cm\n" % _n(g.height / PT)]
    table_width = sum(g.widths)
    # Backgrounds and the totals row's rule: page furniture, not content.
    # The header cells' backgrounds one by one, as WeasyPrint paints them.
    fills = [b"/Artifact BMC\n", _HEAD_FILL, b" rg\n"]
    fills += [_rect(x, g.top, w, head.height) for x, w in zip(g.xs, g.widths, strict=True)]
    y = g.top + head.height
    tops: list[float] = []
    zebra: list[bytes] = []
    for i in indices:
        row = rows[i]
        tops.append(y)
        if row.zebra:
            zebra.append(_rect(g.left, y, table_width, row.height))
        if row.total:
            fills.append(_rect(g.left, y, table_width, TOTAL_BORDER))
        y += row.height
    if zebra:
        fills += [_ZEBRA_FILL, b" rg\n", *zebra]
    fills.append(b"EMC\n")
    out += fills
    mcid = 0
    # The header row: bottom-aligned, white, bold.
    out.append(b"1 1 1 rg\n")
    head_cells: list[Cell] = []
    head_bottom = g.top + head.height - HEAD_PAD
    base = g.baseline(bold, g.size, g.line)
    for c, lines in enumerate(head.cells):
        first_top = head_bottom - len(lines) * g.line
        out.append(b"/TH <</MCID %d>> BDC BT /F2 %s Tf\n" % (mcid, _n(g.size)))
        out += _lines(lines, bold, g, c, first_top + base, numeric[0][c], HEAD_PAD)
        out.append(b"ET EMC\n")
        head_cells.append(Cell(c, mcid))
        mcid += 1
    out.append(_TEXT_FILL + b" rg\n")
    cells: list[list[Cell]] = []
    for i, top in zip(indices, tops, strict=True):
        row = rows[i]
        font, tag = (bold, b"/F2") if row.total else (regular, b"/F1")
        right = numeric[1] if row.total else numeric[0]
        pad_top = TOTAL_BORDER + TOTAL_PAD_TOP if row.total else CELL_PAD_Y
        base = top + pad_top + g.baseline(font, g.size, g.line)
        row_cells = []
        for c, lines in enumerate(row.cells):
            if not lines:
                row_cells.append(Cell(c, None))
                continue
            out.append(b"/TD <</MCID %d>> BDC BT %s %s Tf\n" % (mcid, tag, _n(g.size)))
            out += _lines(lines, font, g, c, base, right[c], CELL_PAD_X)
            out.append(b"ET EMC\n")
            row_cells.append(Cell(c, mcid))
            mcid += 1
        cells.append(row_cells)
    out += _furniture(small, g, furniture)
    out.append(b"Q\n")
    return b"".join(out), head_cells, cells


def _lines(
    lines: Sequence[Line],
    font: Font,
    g: Geometry,
    column: int,
    baseline: float,
    right: bool,
    pad: float,
) -> list[bytes]:
    out = []
    scale = g.size / font.units
    space = font.piece(" ").tj
    for pieces, width in lines:
        x = g.xs[column] + g.widths[column] - pad - width * scale if right else g.xs[column] + pad
        shown = b"".join(space if is_space(p) else p.tj for p in pieces)
        out.append(b"1 0 0 -1 %s %s Tm [%s] TJ\n" % (_n(x), _n(baseline), shown))
        baseline += g.line
    return out


def _furniture(font: Font, g: Geometry, texts: tuple[str, str, str]) -> list[bytes]:
    """The running header (title top left, generation time top right) and the footer's left
    text, as artifacts (the join adds "Page n of N" bottom right)."""
    size = FURNITURE_PX
    normal = (font.ascent - font.descent) / font.units * size
    ascent = font.ascent / font.units * size
    top_baseline = g.top - 3 * MM - normal + ascent
    left, right, footer = texts
    places = (
        (left, g.left, top_baseline),
        (right, _right_aligned(font, g, right), top_baseline),
        (footer, g.left, _bottom_baseline(font, g)),
    )
    return [b"/Artifact <</Type /Pagination>> BDC ", *_furniture_text(font, places), b"EMC\n"]


def page_number_stream(font: Font, g: Geometry, text: str) -> bytes:
    """The content of a page's "Page n of N" (``text``), bottom right where ``stamp_html``'s
    ``@bottom-right`` box puts it: a form the join draws over the page, inside its artifact."""
    place = (text, _right_aligned(font, g, text), _bottom_baseline(font, g))
    head = b"q 1 0 0 -1 0 %s cm 0.75 0 0 0.75 0 0 cm\n" % _n(g.height / PT)
    return b"".join((head, *_furniture_text(font, [place]), b"Q\n"))


def _bottom_baseline(font: Font, g: Geometry) -> float:
    """The footer's baseline: its box's top 3 mm below the content (``vertical-align: top``)."""
    return g.bottom + 3 * MM + font.ascent / font.units * FURNITURE_PX


def _right_aligned(font: Font, g: Geometry, text: str) -> float:
    """Where ``text`` starts when it ends at the right margin."""
    width = sum(font.piece(w).width for w in text.split(" "))
    width += font.piece(" ").width * (len(text.split(" ")) - 1)
    return g.width - g.left - width * FURNITURE_PX / font.units


def _furniture_text(font: Font, places: Sequence[tuple[str, float, float]]) -> list[bytes]:
    """Texts in the furniture's font and colour, each at its (x, baseline)."""
    out = [_FURNITURE_FILL, b" rg BT /F3 %s Tf\n" % _n(FURNITURE_PX)]
    space = font.piece(" ").tj
    for text, x, y in places:
        if text:
            shown = space.join(font.piece(w).tj for w in text.split(" "))
            out.append(b"1 0 0 -1 %s %s Tm [%s] TJ\n" % (_n(x), _n(y), shown))
    out.append(b"ET ")
    return out


def glyphs_of(rows: Sequence[Row]) -> set[int]:
    """The glyphs the cells of ``rows`` show."""
    found: set[int] = set()
    for row in rows:
        for lines in row.cells:
            for pieces, _ in lines:
                for piece in pieces:
                    found.update(piece.glyphs)
    return found


def _rect(x: float, y: float, w: float, h: float) -> bytes:
    return b"%s %s %s %s re f\n" % (_n(x), _n(y), _n(w), _n(h))


def media_box(g: Geometry) -> bytes:
    """The page box in points, as a direct page and its page-number form give it."""
    return b"[0 0 %s %s]" % (_n(g.width / PT, 6), _n(g.height / PT, 6))


def _n(value: float, places: int = 4) -> bytes:
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return (text if text not in ("", "-0") else "0").encode("ascii")
