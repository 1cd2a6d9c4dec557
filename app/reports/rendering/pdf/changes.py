"""A scheduled change report's section on the PDF's first pages: "Changes since <date>", the
counts in words and a table of the first changes (change, row, field, before, after)."""

from __future__ import annotations

import html

from app.reports.rendering.base import ChangeSection


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def changes_html(section: ChangeSection | None) -> str:
    if section is None:
        return ""
    head = "".join(f'<th scope="col">{_esc(t)}</th>' for t in section.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(cell)}</td>" for cell in cells) + "</tr>"
        for cells in section.rows
    )
    more = ""
    if section.total > len(section.rows):
        count = section.total - len(section.rows)
        more = f'<p class="empty-note">{_esc(section.more.format(count=count))}</p>'
    table = (
        f'<table class="params"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
        if section.rows
        else ""
    )
    return (
        f'<div class="definitions changes"><h2>{_esc(section.heading)}</h2>'
        f"<p>{_esc(section.summary)}</p>{table}{more}</div>"
    )
