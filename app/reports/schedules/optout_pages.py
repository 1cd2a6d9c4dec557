"""The small HTML pages behind an e-mail's unsubscribe link, in the message's language.

Opening the link (GET) never unsubscribes: mail scanners and link previews follow links. It
shows what the button will do; the button POSTs to the same URL, as a mail program's
one-click unsubscribe (RFC 8058) does."""

from __future__ import annotations

from html import escape

from app.i18n import LOCALES, translate


def _page(locale: str, heading: str, body: str) -> str:
    lang = escape(locale, quote=True)
    return f"""<!doctype html>
<html lang="{lang}">
<meta charset=utf-8>
<meta name=viewport content="width=device-width, initial-scale=1">
<meta name=robots content=noindex>
<title>{escape(heading)}</title>
<style>
  body {{ font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
          max-width: 36rem; margin: 4rem auto; padding: 0 1rem; color: #1f2328; }}
  h1 {{ font-size: 1.4rem; }}
  button {{ font: inherit; font-weight: 600; padding: .6rem 1.2rem; border: 0;
            border-radius: 6px; background: #0b5cad; color: #fff; cursor: pointer; }}
</style>
<h1>{escape(heading)}</h1>
{body}
</html>
"""


def _locale(locale: str) -> str:
    return locale if locale in LOCALES else "en"


def confirm_page(locale: str, schedule_name: str | None, address: str | None) -> str:
    """What the button will do, and the button (a POST to the same URL)."""
    locale = _locale(locale)

    def t(text: str, **values: str) -> str:
        return translate(locale, text).format(**values)

    if schedule_name is None:
        return gone_page(locale)
    said = t(
        "{address} will no longer receive the scheduled report {report!r}.",
        address=address or t("This address"),
        report=schedule_name,
    )
    return _page(
        locale,
        t("Unsubscribe from this report?"),
        f"<p>{escape(said)}</p>\n"
        '<form method="post">\n'
        '  <input type="hidden" name="List-Unsubscribe" value="One-Click">\n'
        f"  <button type=submit>{escape(t('Unsubscribe'))}</button>\n"
        "</form>",
    )


def done_page(locale: str, schedule_name: str | None) -> str:
    locale = _locale(locale)
    if schedule_name is None:
        return gone_page(locale)
    said = translate(
        locale,
        "You will no longer receive the scheduled report {report!r}. Its owner is told in "
        "their daily summary; to receive it again, ask them to invite you back.",
    ).format(report=schedule_name)
    return _page(locale, translate(locale, "You are unsubscribed"), f"<p>{escape(said)}</p>")


def gone_page(locale: str) -> str:
    locale = _locale(locale)
    said = translate(locale, "This scheduled report no longer exists: nothing more is sent.")
    return _page(locale, translate(locale, "You are unsubscribed"), f"<p>{escape(said)}</p>")


def invalid_page() -> str:
    return _page(
        "en",
        "This link does not work",
        "<p>It is not an unsubscribe link of this service, or it is incomplete: mail programs "
        "sometimes cut long links. Copy the whole link from the message and try again.</p>",
    )
