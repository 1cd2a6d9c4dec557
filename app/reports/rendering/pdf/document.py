"""The HTML (and CSS) of one render chunk, from ``templates/report.html`` + ``report.css``,
and of the page-number stamp laid over the joined PDF. All cell text is HTML-escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import tzinfo
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from app.i18n import human_formats, translate, translate_plural
from app.reports.rendering.base import Column, ColumnType, ParameterValue, RenderContext
from app.reports.rendering.pdf.changes import changes_html
from app.reports.rendering.pdf.charts import charts_html
from app.reports.rendering.pdf.layout import CONTROL_CHARS, Layout, format_cell, wrap_points
from app.reports.rendering.present import PATH_SEPARATOR, TreeName

_TEMPLATES = Path(__file__).parent.parent / "templates"
NUMERIC = frozenset({ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.PERCENT})


def _esc(text: str) -> str:
    return html.escape(CONTROL_CHARS.sub(" ", text), quote=True)


def _css_string(text: str) -> str:
    """``text`` as the inside of a double-quoted CSS string."""
    text = CONTROL_CHARS.sub(" ", text).replace("\n", " ").replace("\t", " ")
    return text.replace("\\", "\\\\").replace('"', '\\"')


# -- HTML ------------------------------------------------------------------------------------


@cache
def _template(name: str) -> Template:
    return Template((_TEMPLATES / name).read_text(encoding="utf-8"))


def _generated_text(context: RenderContext) -> str:
    return human_formats(context.locale).datetime(context.generated_at_local)


def _tr(context: RenderContext, message: str, **values: str) -> str:
    """`message` in the report's locale, HTML-escaped, with `values` (HTML already) put in."""
    return _esc(translate(context.locale, message)).format(**values)


def _page_counter_css(locale: str, total: int | None = None) -> str:
    """ "Page X of Y" as the CSS `content` of a margin box, in the locale's words; Y is
    ``total`` when given, else the document's page count."""
    text = translate(locale, "Page {page} of {pages}")
    parts = []
    for piece in re.split(r"(\{page\}|\{pages\})", text):
        if piece == "{page}":
            parts.append("counter(page)")
        elif piece == "{pages}":
            parts.append("counter(pages)" if total is None else f'"{total}"')
        elif piece:
            parts.append(f'"{_css_string(piece)}"')
    return " ".join(parts)


def running_texts(context: RenderContext) -> tuple[str, str, str]:
    """The page furniture's texts: top left, top right, bottom left (not escaped)."""
    generated = _generated_text(context)
    meta = translate(context.locale, "Generated {generated} ({timezone})").format(
        generated=generated, timezone=context.timezone
    )
    return context.title, meta, f"{context.title} · {generated} ({context.timezone})"


def _document(
    context: RenderContext, layout: Layout, body: str, *, first: bool, tree: bool = False
) -> str:
    generated = _generated_text(context)
    title, meta, footer = running_texts(context)
    css = _template("report.css").substitute(
        page_size=_page_size(layout),
        running_title=_css_string(title),
        running_meta=_css_string(meta),
        footer_left=_css_string(footer),
        first_page_rule=(
            "@page :first { @top-left { content: none } @top-right { content: none } }"
            if first
            else ""
        ),
        # A tree's rows name their ancestors (`string-set` on each row): a page whose first row
        # continues a subtree names the path to it top left, above the table (the title moves
        # to the right, beside the generation time).
        tree_rule=(
            "@page { @top-left { content: string(tree-path, first); color: #1e293b;"
            " font-weight: bold; font-size: 7.5pt }"
            f' @top-right {{ content: "{_css_string(context.title)} · '
            f'{_css_string(f"Generated {generated} ({context.timezone})")}" }} }}'
            if tree
            else ""
        ),
        data_font_size=f"{layout.font_size_pt}pt",
    )
    return _template("report.html").substitute(
        lang=_esc(context.locale),
        title=_esc(context.title),
        author=_esc(context.requested_by or ""),
        subject=_esc(context.report_type),
        css=css,
        body=body,
    )


def _page_size(layout: Layout) -> str:
    return "A4 landscape" if layout.landscape else "A4 portrait"


def _cover(context: RenderContext, shown_rows: int) -> str:
    generated = _generated_text(context)
    total = context.total_rows if context.total_rows is not None else shown_rows
    numbers = human_formats(context.locale)
    bold_generated = f"<b>{_esc(generated)}</b>"
    bold_timezone = f"<b>{_esc(context.timezone)}</b>"
    meta = [
        _tr(context, "Generated {generated}", generated=bold_generated),
        _tr(context, "Timezone {timezone} (all times)", timezone=bold_timezone),
    ]
    if context.requested_by:
        bold_name = f"<b>{_esc(context.requested_by)}</b>"
        meta.append(_tr(context, "Requested by {name}", name=bold_name))
    rows_text = translate_plural(context.locale, "{count} row", "{count} rows", total)
    meta.append(_esc(rows_text).format(count=f"<b>{_esc(numbers.integer(total))}</b>"))
    params = "".join(
        f'<tr><th scope="row">{_esc(label)}</th>'
        f"<td>{_esc(_parameter_text(value, context.locale))}</td></tr>"
        for label, value in context.parameters
    )
    timezone = _tr(context, "Timezone")
    params += f'<tr><th scope="row">{timezone}</th><td>{_esc(context.timezone)}</td></tr>'
    if context.summary:
        # A list (tagged L / LI): each figure's text alternative, "label: value", is set on its
        # list item when the PDF is tagged (tagging.summary_alternatives). A figure in words
        # (the most frequent event types) takes the tile's whole width.
        items = "".join(
            f'<li class="{"figure words" if f.type is ColumnType.STRING else "figure"}">'
            f'<div class="v">{_esc(f.text)}</div><div class="l">{_esc(f.label)}</div></li>'
            for f in context.summary
        )
        figures = f'<ul class="summary">{items}</ul>'
    else:
        no_figures = _tr(context, "No summary figures.")
        figures = f'<p class="empty-note">{no_figures}</p>'
    notice = ""
    if context.total_rows is not None and context.total_rows > shown_rows:
        truncated = _tr(context, "Truncated:")
        notice = (
            f'<div class="notice"><b>{truncated}</b> '
            + _tr(
                context,
                "showing the first {shown} of {total} rows. "
                "Download the CSV or Excel file for all rows.",
                shown=_esc(numbers.integer(shown_rows)),
                total=_esc(numbers.integer(context.total_rows)),
            )
            + "</div>"
        )
    definitions = ""
    if context.definitions:
        rows = "".join(
            f'<tr><th scope="row">{_esc(label)}</th><td>{_esc(text)}</td></tr>'
            for label, text in context.definitions
        )
        heading = _tr(context, "Definitions")
        definitions = (
            f'<div class="definitions"><h2>{heading}</h2>'
            f'<table class="params"><tbody>{rows}</tbody></table></div>'
        )
    kicker = _tr(context, "{report_type} report", report_type=_esc(context.type_name))
    parameters, summary = _tr(context, "Parameters"), _tr(context, "Summary")
    return (
        '<div class="cover">'
        f'<div class="kicker">{kicker}</div>'
        f"<h1>{_esc(context.title)}</h1>"
        f'<div class="meta">{" &nbsp;·&nbsp; ".join(meta)}</div>'
        "</div>"
        # Two columns side by side: laid out as a table by CSS, tagged as what they hold (a
        # layout table would be read out as data).
        '<div class="facts"><div class="facts-row">'
        f'<div class="facts-cell" style="width:58%"><h2>{parameters}</h2><table class="params">'
        f"<tbody>{params}</tbody></table></div>"
        '<div class="facts-cell gap"></div>'
        f'<div class="facts-cell"><h2>{summary}</h2>{figures}</div>'
        "</div></div>"
        f"{charts_html(context.charts)}"
        f"{changes_html(context.changes)}"
        f"{definitions}"
        f"{notice}"
    )


def _table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    layout: Layout,
    tz: tzinfo,
    row_offset: int,
    locale: str = "en",
    totals: Sequence[tuple[Any, ColumnType]] | None = None,
) -> str:
    cols = "".join(f'<col style="width:{w}%">' for w in layout.widths)
    numeric = [c.type in NUMERIC for c in columns]
    head = "".join(
        f'<th scope="col" class="n">{_esc(c.label)}</th>'
        if numeric[i]
        else f'<th scope="col">{_esc(c.label)}</th>'
        for i, c in enumerate(columns)
    )
    types = [c.type for c in columns]
    parts = [
        f'<table class="data"><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead><tbody>'
    ]
    append = parts.append
    for r, row in enumerate(rows, start=row_offset):
        cells = []
        for c, value in enumerate(row):
            text = html.escape(wrap_points(format_cell(value, types[c], tz, locale)), quote=False)
            cells.append(f'<td class="n">{text}</td>' if numeric[c] else f"<td>{text}</td>")
        zebra = ' class="z"' if r % 2 else ""
        if isinstance(row[0], TreeName):  # a tree row names its ancestors for the page header
            append(
                f'<tr{zebra} style="string-set: tree-path &quot;{_tree_path(row[0], locale)}&quot;">'
            )
        else:
            append(f"<tr{zebra}>")
        append("".join(cells))
        append("</tr>")
    if totals is not None:  # the report's totals row, after its last row
        cells = []
        for c, (value, shown) in enumerate(totals):
            text = html.escape(wrap_points(format_cell(value, shown, tz, locale)), quote=False)
            right = numeric[c] or shown in NUMERIC
            cells.append(f'<td class="n">{text}</td>' if right else f"<td>{text}</td>")
        append(f'<tr class="total">{"".join(cells)}</tr>')
    parts.append("</tbody></table>")
    return "".join(parts)


def build_chunk_html(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    context: RenderContext,
    layout: Layout,
    *,
    first: bool,
    row_offset: int = 0,
    shown_rows: int | None = None,
    totals: Sequence[tuple[Any, ColumnType]] | None = None,
) -> str:
    """The HTML of one chunk: page one's cover (first chunk only) and a table of ``rows``.

    ``shown_rows`` is how many rows the whole PDF holds (for page one; default ``len(rows)``).
    """
    body = ""
    tree = bool(rows) and isinstance(rows[0][0], TreeName)
    if first:
        body += _cover(context, shown_rows=len(rows) if shown_rows is None else shown_rows)
        if not rows:
            no_rows = _tr(context, "No rows match these parameters.")
            body += f'<p class="no-rows">{no_rows}</p>'
    if rows:
        body += _table(columns, rows, layout, context.tz, row_offset, context.locale, totals)
    return _document(context, layout, body, first=first, tree=tree)


def _parameter_text(value: ParameterValue, locale: str) -> str:
    return human_formats(locale).integer(value) if isinstance(value, int) else value


def _tree_path(name: TreeName, locale: str) -> str:
    """The ancestors of a tree row as the page header names them when the row opens a page,
    ready for an HTML attribute holding a CSS string ("" for a top-level row)."""
    if not name.path:
        return ""
    text = translate(locale, "{path} (continued)").format(path=PATH_SEPARATOR.join(name.path))
    return html.escape(_css_string(text), quote=True)


def stamp_html(
    context: RenderContext, layout: Layout, pages: int, *, first: int = 1, total: int | None = None
) -> str:
    """``pages`` blank pages with the same page box, carrying only "Page X of Y" bottom right:
    pages ``first`` to ``first + pages - 1`` of ``total`` (by default, of ``pages``)."""
    counter = _page_counter_css(context.locale, total)
    css = (
        f"@page {{ size: {_page_size(layout)};"
        " margin: 15mm 11mm 15mm 11mm;"
        f" @bottom-right {{ content: {counter};"
        ' font-family: "DejaVu Sans", sans-serif; font-size: 7pt; color: #64748b;'
        " vertical-align: top; padding-top: 3mm; } }"
        f" @page:first {{ counter-reset: page {first}; }}"
        " body { margin: 0; } div { height: 1px; break-after: page; }"
        " div:last-child { break-after: auto; }"
    )
    return (
        f"<!DOCTYPE html><html lang='{_esc(context.language)}'><head><meta charset='utf-8'>"
        f"<style>{css}</style></head><body>{'<div></div>' * pages}</body></html>"
    )
