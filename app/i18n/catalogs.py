"""Message catalogs (gettext, via Babel) and the locale a report's texts are being made in.

Texts are written in English in the code and marked for extraction: `_("…")` translates at
once into the current locale, `N_("…")` only marks a text kept in a constant (a column label, a
lookup label) that is translated where it is shown (`translate(locale, text)`). `pybabel
extract` (babel.cfg, `make i18n`) collects them into `app/i18n/locale/messages.pot`; each
locale's `.po` file holds its translations.

The `.po` files are compiled in memory the first time a locale is used in a process (Babel's
`write_mo`, a few milliseconds): no compiled `.mo` file is kept in the repository or built at
install time, so a catalog is never stale. A missing translation falls back to the English
text.

The current locale is a context variable (`use_locale`): the report types' summaries and
parameter descriptions are made inside `use_locale(job.locale)`; renderers never use it: they
take the locale from their `RenderContext`.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from app.i18n.locales import DEFAULT_LOCALE, LOCALES

CATALOG_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"

_current: ContextVar[str] = ContextVar("report_locale", default=DEFAULT_LOCALE)


def po_path(locale: str) -> Path:
    return CATALOG_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalog of a supported locale (the source language, and a locale without a
    catalog, translate nothing). Fuzzy entries are left out, as msgfmt does."""
    if locale not in LOCALES:
        raise KeyError(f"{locale!r} is not a supported locale")
    path = po_path(locale)
    if locale == DEFAULT_LOCALE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def translate(locale: str, message: str) -> str:
    """`message` (its English text) in `locale`."""
    if not message:
        return message
    return translations(locale).gettext(message)


def translate_plural(locale: str, singular: str, plural: str, n: int) -> str:
    return translations(locale).ngettext(singular, plural, n)


def current_locale() -> str:
    return _current.get()


@contextmanager
def use_locale(locale: str) -> Iterator[str]:
    """Makes `locale` the current one inside the block (for `_`, `ngettext` and the
    formatting helpers called without a locale)."""
    token = _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """`message` in the current locale (marks it for extraction)."""
    return translate(_current.get(), message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of `singular` / `plural` for `n`, in the current locale."""
    return translate_plural(_current.get(), singular, plural, n)


def N_(message: str) -> str:
    """Marks a text for extraction without translating it: it is translated where it is shown
    (`translate(locale, text)`)."""
    return message
