""" "Page n of N" written straight to PDF: one form XObject a page, drawn by the join over the
page inside its artifact, in the running footer's font subset (written once for all pages), where
``stamp_html`` lays it out. WeasyPrint laid out a page of margin boxes for each page number
(~8 ms a page, most of a long PDF's join once its chunks are copied as bytes); this writes one
line of text. A locale whose words the font cannot show as WeasyPrint would keeps WeasyPrint's
stamp (``page_number_forms`` returns None)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from app.i18n import translate
from app.reports.rendering.base import RenderContext
from app.reports.rendering.pdf.direct.fonts import fonts
from app.reports.rendering.pdf.direct.pages import Geometry, media_box, page_number_stream
from app.reports.rendering.pdf.layout import Layout
from app.reports.rendering.pdf.pdfwriter import PdfWriter


class PageNumberForms:
    """Writes the forms of a document's pages (``write``), numbered 1 to N."""

    def __init__(self, context: RenderContext, layout: Layout) -> None:
        self.text = translate(context.locale, "Page {page} of {pages}")
        self.font = fonts()[2]
        self.geometry = Geometry.of(layout)

    def shows(self) -> bool:
        """Whether the font shows the locale's words and the digits as WeasyPrint would."""
        return self.font.covers(self.text.format(page="0123456789", pages=""))

    def write(self, writer: PdfWriter, forms: Sequence[int], total: int) -> None:
        """Writes page ``n``'s form as object ``forms[n - 1]``, and the font they share."""
        g, font = self.geometry, self.font
        font_number = writer.reserve()
        entries = b"/Type/XObject/Subtype/Form/BBox" + media_box(g)
        entries += b"/Resources<</Font<</F3 %d 0 R>>>>/Filter/FlateDecode" % font_number
        glyphs: set[int] = set()
        for page, number in enumerate(forms, start=1):
            text = self.text.format(page=page, pages=total)
            glyphs.update(g for word in text.split(" ") for g in font.piece(word).glyphs)
            content = page_number_stream(font, g, text)
            writer.write_stream(number, entries, zlib.compress(content))
        font.objects(glyphs).write(font_number, writer.reserve, writer.write, writer.write_stream)


def page_number_forms(context: RenderContext, layout: Layout) -> PageNumberForms | None:
    forms = PageNumberForms(context, layout)
    return forms if forms.shows() else None
