"""The HTML (and CSS) of one render chunk, from ``templates/report.html`` + ``report.css``,
and of the page-number stamp laid over the joined PDF. All cell text is HTML-escaped."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import tzinfo
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from app.reports.rendering.base import Column, ColumnType, ParameterValue, RenderContext
from app.reports.rendering.pdf.layout import CONTROL_CHARS, Layout, format_cell, wrap_points
from app.reports.rendering.present import PATH_SEPARATOR, TreeName

_TEMPLATES = Path(__file__).parent.parent / "templates"
_NUMERIC = frozenset({ColumnType.INTEGER, ColumnType.NUMBER, ColumnType.PERCENT})


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
    return context.generated_at_local.strftime("%Y-%m-%d %H:%M")


def _document(
    context: RenderContext, layout: Layout, body: str, *, first: bool, tree: bool = False
) -> str:
    generated = _generated_text(context)
    css = _template("report.css").substitute(
        page_size=_page_size(layout),
        running_title=_css_string(context.title),
        running_meta=_css_string(f"Generated {generated} ({context.timezone})"),
        footer_left=_css_string(f"{context.title} · {generated} ({context.timezone})"),
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
        lang=_esc(context.language),
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
    meta = [
        f"Generated <b>{_esc(generated)}</b>",
        f"Timezone <b>{_esc(context.timezone)}</b> (all times)",
    ]
    if context.requested_by:
        meta.append(f"Requested by <b>{_esc(context.requested_by)}</b>")
    meta.append(f"<b>{total:,}</b> row{'s' if total != 1 else ''}")
    params = "".join(
        f'<tr><th scope="row">{_esc(label)}</th><td>{_esc(_parameter_text(value))}</td></tr>'
        for label, value in context.parameters
    )
    params += f'<tr><th scope="row">Timezone</th><td>{_esc(context.timezone)}</td></tr>'
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
        figures = '<p class="empty-note">No summary figures.</p>'
    notice = ""
    if context.total_rows is not None and context.total_rows > shown_rows:
        notice = (
            '<div class="notice"><b>Truncated:</b> showing the first '
            f"{shown_rows:,} of {context.total_rows:,} rows. "
            "Download the CSV or Excel file for all rows.</div>"
        )
    definitions = ""
    if context.definitions:
        rows = "".join(
            f'<tr><th scope="row">{_esc(label)}</th><td>{_esc(text)}</td></tr>'
            for label, text in context.definitions
        )
        definitions = (
            '<div class="definitions"><h2>Definitions</h2>'
            f'<table class="params"><tbody>{rows}</tbody></table></div>'
        )
    return (
        '<div class="cover">'
        f'<div class="kicker">{_esc(context.type_name)} report</div>'
        f"<h1>{_esc(context.title)}</h1>"
        f'<div class="meta">{" &nbsp;·&nbsp; ".join(meta)}</div>'
        "</div>"
        # Two columns side by side: laid out as a table by CSS, tagged as what they hold (a
        # layout table would be read out as data).
        '<div class="facts"><div class="facts-row">'
        f'<div class="facts-cell" style="width:58%"><h2>Parameters</h2><table class="params">'
        f"<tbody>{params}</tbody></table></div>"
        '<div class="facts-cell gap"></div>'
        f'<div class="facts-cell"><h2>Summary</h2>{figures}</div>'
        "</div></div>"
        f"{definitions}"
        f"{notice}"
    )


def _table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    layout: Layout,
    tz: tzinfo,
    row_offset: int,
) -> str:
    cols = "".join(f'<col style="width:{w}%">' for w in layout.widths)
    numeric = [c.type in _NUMERIC for c in columns]
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
            text = html.escape(wrap_points(format_cell(value, types[c], tz)), quote=False)
            cells.append(f'<td class="n">{text}</td>' if numeric[c] else f"<td>{text}</td>")
        zebra = ' class="z"' if r % 2 else ""
        if isinstance(row[0], TreeName):  # a tree row names its ancestors for the page header
            append(f'<tr{zebra} style="string-set: tree-path &quot;{_tree_path(row[0])}&quot;">')
        else:
            append(f"<tr{zebra}>")
        append("".join(cells))
        append("</tr>")
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
) -> str:
    """The HTML of one chunk: page one's cover (first chunk only) and a table of ``rows``.

    ``shown_rows`` is how many rows the whole PDF holds (for page one; default ``len(rows)``).
    """
    body = ""
    tree = bool(rows) and isinstance(rows[0][0], TreeName)
    if first:
        body += _cover(context, shown_rows=len(rows) if shown_rows is None else shown_rows)
        if not rows:
            body += '<p class="no-rows">No rows match these parameters.</p>'
    if rows:
        body += _table(columns, rows, layout, context.tz, row_offset)
    return _document(context, layout, body, first=first, tree=tree)


def _parameter_text(value: ParameterValue) -> str:
    return f"{value:,}" if isinstance(value, int) else value


def _tree_path(name: TreeName) -> str:
    """The ancestors of a tree row as the page header names them when the row opens a page,
    ready for an HTML attribute holding a CSS string ("" for a top-level row)."""
    if not name.path:
        return ""
    text = f"{PATH_SEPARATOR.join(name.path)} (continued)"
    return html.escape(_css_string(text), quote=True)


def stamp_html(context: RenderContext, layout: Layout, pages: int) -> str:
    """N blank pages with the same page box, carrying only "Page X of Y" bottom right."""
    css = (
        f"@page {{ size: {_page_size(layout)};"
        " margin: 15mm 11mm 15mm 11mm;"
        ' @bottom-right { content: "Page " counter(page) " of " counter(pages);'
        ' font-family: "DejaVu Sans", sans-serif; font-size: 7pt; color: #64748b;'
        " vertical-align: top; padding-top: 3mm; } }"
        " body { margin: 0; } div { height: 1px; break-after: page; }"
        " div:last-child { break-after: auto; }"
    )
    return (
        f"<!DOCTYPE html><html lang='{_esc(context.language)}'><head><meta charset='utf-8'>"
        f"<style>{css}</style></head><body>{'<div></div>' * pages}</body></html>"
    )
