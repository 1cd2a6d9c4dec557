"""The body of a report e-mail: the plain text and one HTML layout made from the same facts.

The HTML is built for mail programs rather than browsers: tables for layout, every style
inline, no external asset (no image, font or stylesheet to fetch), the system font stack, at
most 600 px wide. Everything in it is also in the text part, which mail programs without HTML
(and screen readers that prefer it) show instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

FONT = (
    "-apple-system, BlinkMacSystemFont, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
    "'Noto Sans', sans-serif"
)
_INK = "#1f2328"
_MUTED = "#59636e"
_LINE = "#d8dee4"
_ACCENT = "#0b5cad"


@dataclass
class MailBody:
    """What a report e-mail says, already in its recipient's language."""

    lang: str
    title: str  # the report's name (a notice: its subject)
    intro: str  # "Your report … is ready." (a notice: its text)
    facts: list[tuple[str, str]] = field(default_factory=list)  # Period, Rows
    parameters_heading: str = ""
    parameters: list[tuple[str, str]] = field(default_factory=list)  # the filters in words
    figures_heading: str = ""
    figures: list[tuple[str, str]] = field(default_factory=list)  # (label, value)
    definitions_heading: str = ""
    definitions: list[tuple[str, str]] = field(default_factory=list)  # (label, what it means)
    file_note: str | None = None  # attached / too large to attach
    link: str | None = None
    link_text: str = ""  # "Download: {link}" in the text part
    link_button: str = ""  # the button's words
    expiry: str | None = None  # "The link is for you only and works until …"
    unsubscribe_url: str | None = None
    unsubscribe_text: str = ""  # the sentence, ending in the link in the text part
    unsubscribe_button: str = ""  # the link's words in the HTML part


def text_part(body: MailBody) -> str:
    lines = [body.intro]
    lines += [f"{label}: {value}" for label, value in body.facts]
    if body.parameters:
        lines.append(body.parameters_heading)
        lines += [f"  {label}: {value}" for label, value in body.parameters]
    lines += [f"{label}: {value}" for label, value in body.figures]
    if body.definitions:
        lines.append(body.definitions_heading)
        lines += [f"{label}: {meaning}" for label, meaning in body.definitions]
    if body.file_note:
        lines.append(body.file_note)
    if body.link:
        lines.append(body.link_text)
        if body.expiry:
            lines.append(body.expiry)
    if body.unsubscribe_url:
        lines += ["", "-- ", f"{body.unsubscribe_text} {body.unsubscribe_url}"]
    return "\n".join(lines) + "\n"


def _p(text: str, style: str = "") -> str:
    lines = "<br>".join(escape(line) for line in text.split("\n"))
    return f'<p style="margin:0 0 12px 0;{style}">{lines}</p>'


def _heading(text: str) -> str:
    return (
        f'<h2 style="margin:20px 0 8px 0;font-size:13px;line-height:18px;font-weight:600;'
        f'text-transform:uppercase;letter-spacing:.04em;color:{_MUTED};">'
        f"{escape(text.rstrip(':'))}</h2>"
    )


def _rows(pairs: list[tuple[str, str]], *, strong: bool = False) -> str:
    weight = "font-weight:600;" if strong else ""
    cells = "".join(
        f"<tr>"
        f'<td style="padding:6px 12px 6px 0;border-top:1px solid {_LINE};color:{_MUTED};'
        f'vertical-align:top;width:40%;">{escape(label)}</td>'
        f'<td style="padding:6px 0;border-top:1px solid {_LINE};{weight}vertical-align:top;">'
        f"{escape(value)}</td></tr>"
        for label, value in pairs
    )
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:collapse;font-size:14px;line-height:20px;">{cells}</table>'
    )


def _figures(body: MailBody) -> str:
    meaning = dict(body.definitions)
    cells = "".join(
        f"<tr>"
        f'<td style="padding:8px 12px 8px 0;border-top:1px solid {_LINE};vertical-align:top;">'
        f'<div style="font-size:14px;line-height:20px;">{escape(label)}</div>'
        + (
            f'<div style="font-size:12px;line-height:17px;color:{_MUTED};">'
            f"{escape(meaning[label])}</div>"
            if meaning.get(label)
            else ""
        )
        + f'</td><td align="right" style="padding:8px 0;border-top:1px solid {_LINE};'
        f'font-size:18px;line-height:24px;font-weight:600;vertical-align:top;white-space:nowrap;">'
        f"{escape(value)}</td></tr>"
        for label, value in body.figures
    )
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:collapse;">{cells}</table>'
    )


def _button(url: str, words: str) -> str:
    href = escape(url, quote=True)
    return (
        '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
        'style="margin:20px 0 8px 0;"><tr>'
        f'<td style="border-radius:6px;background:{_ACCENT};">'
        f'<a href="{href}" style="display:inline-block;padding:10px 18px;font-size:15px;'
        f"line-height:20px;font-weight:600;color:#ffffff;text-decoration:none;"
        f'border-radius:6px;">{escape(words)}</a></td></tr></table>'
    )


def html_part(body: MailBody) -> str:
    parts = [
        f'<h1 style="margin:0 0 12px 0;font-size:22px;line-height:28px;font-weight:600;'
        f'color:{_INK};">{escape(body.title)}</h1>',
        _p(body.intro),
    ]
    if body.facts:
        parts.append(_rows(body.facts))
    if body.parameters:
        parts += [_heading(body.parameters_heading), _rows(body.parameters)]
    if body.figures:
        parts += [_heading(body.figures_heading), _figures(body)]
    if body.file_note:
        parts.append(_p(body.file_note, "margin-top:16px;"))
    if body.link:
        parts.append(_button(body.link, body.link_button))
        if body.expiry:
            parts.append(_p(body.expiry, f"font-size:13px;line-height:18px;color:{_MUTED};"))
    footer = ""
    if body.unsubscribe_url:
        href = escape(body.unsubscribe_url, quote=True)
        footer = (
            f'<tr><td style="padding:16px 24px;font-size:12px;line-height:17px;color:{_MUTED};">'
            f"{escape(body.unsubscribe_text)} "
            f'<a href="{href}" style="color:{_MUTED};text-decoration:underline;">'
            f"{escape(body.unsubscribe_button)}</a></td></tr>"
        )
    lang = escape(body.lang, quote=True)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(body.title)}</title></head>"
        f'<body style="margin:0;padding:0;background:#f3f4f6;">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="background:#f3f4f6;"><tr><td align="center" style="padding:24px 12px;">'
        '<table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0" '
        f'style="width:100%;max-width:600px;font-family:{FONT};color:{_INK};">'
        f'<tr><td style="background:#ffffff;border:1px solid {_LINE};border-radius:8px;'
        f'padding:24px;font-size:15px;line-height:22px;">{"".join(parts)}</td></tr>'
        f"{footer}</table></td></tr></table></body></html>"
    )
