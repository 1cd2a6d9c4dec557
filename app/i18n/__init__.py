"""Locales: the registry of supported locales, message catalogs (gettext via Babel) and the
formats of numbers, percents and dates per locale. Pure: no database, no HTTP; renderers use
it with the locale of their `RenderContext`. How to add a locale: docs/i18n.md."""

from app.i18n.catalogs import (
    N_,
    _,
    current_locale,
    ngettext,
    translate,
    translate_plural,
    translations,
    use_locale,
)
from app.i18n.formatting import HumanFormats, current_formats, human_formats
from app.i18n.locales import (
    DEFAULT_LOCALE,
    LOCALES,
    LocaleCode,
    LocaleSpec,
    check_locale,
    locale_spec,
    negotiate,
    supported_locales,
)

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "N_",
    "HumanFormats",
    "LocaleCode",
    "LocaleSpec",
    "_",
    "check_locale",
    "current_formats",
    "current_locale",
    "human_formats",
    "locale_spec",
    "negotiate",
    "ngettext",
    "supported_locales",
    "translate",
    "translate_plural",
    "translations",
    "use_locale",
]
