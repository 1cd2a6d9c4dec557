"""The supported locales: one registry, read by the API (what a `locale` may be), the renderers
(how numbers, dates and CSV files look) and the message catalogs (which `.po` files exist).

A locale here is a language code (`en`, `de`): numbers, percents and dates are formatted with
Babel's data for it (CLDR), texts come from its message catalog
(`app/i18n/locale/<code>/LC_MESSAGES/messages.po`). `en` is the source language: the
messages are written in English in the code, so it has no catalog of its own. How to add one:
docs/i18n.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema


@dataclass(frozen=True)
class LocaleSpec:
    """How a locale's files and messages look, besides what Babel knows about it."""

    code: str  # the language code the API takes (`de`), also Babel's locale identifier
    name: str  # its own name ("Deutsch")
    english_name: str
    # CSV: the field delimiter and the decimal separator of numbers (a decimal comma needs
    # another delimiter than the comma); a job's file options may override both.
    csv_delimiter: str
    csv_decimal: str
    # Human formats (PDF, e-mail): a Babel format name ("medium") or a CLDR pattern.
    date_format: str
    time_format: str
    # How a date and a time join ("{1} {0}": date, space, time); None: the locale's own.
    datetime_join: str | None
    # Excel number formats of date and datetime cells (the cells stay dates).
    excel_date: str
    excel_datetime: str


DEFAULT_LOCALE = "en"

LOCALES: dict[str, LocaleSpec] = {
    spec.code: spec
    for spec in (
        # English keeps the ISO 8601 dates its files always printed (unambiguous across
        # English-speaking countries), with the comma as thousands separator.
        LocaleSpec(
            code="en",
            name="English",
            english_name="English",
            csv_delimiter=",",
            csv_decimal=".",
            date_format="yyyy-MM-dd",
            time_format="HH:mm",
            datetime_join="{1} {0}",
            excel_date="yyyy-mm-dd",
            excel_datetime="yyyy-mm-dd hh:mm",
        ),
        # German: Excel set to German reads `;`-separated files with decimal commas.
        LocaleSpec(
            code="de",
            name="Deutsch",
            english_name="German",
            csv_delimiter=";",
            csv_decimal=",",
            date_format="medium",  # 01.07.2026
            time_format="short",  # 14:30
            datetime_join=None,  # 01.07.2026, 14:30
            excel_date="dd.mm.yyyy",
            excel_datetime="dd.mm.yyyy hh:mm",
        ),
    )
}


def supported_locales() -> list[str]:
    """The locale codes a request may name, the default first."""
    return list(LOCALES)


def locale_spec(code: str) -> LocaleSpec:
    """The spec of a supported locale (`KeyError` otherwise: check requests with
    `check_locale`)."""
    return LOCALES[code]


def check_locale(value: Any) -> str:
    """`value` if it is a supported locale code, else a validation error listing them (a 422
    naming the field, with `allowed`)."""
    if isinstance(value, str) and value in LOCALES:
        return value
    allowed = supported_locales()
    raise PydanticCustomError(
        "locale",
        "'{value}' is not a supported locale; supported: {allowed_text}",
        {"value": value, "allowed": allowed, "allowed_text": ", ".join(allowed)},
    )


@dataclass(frozen=True)
class _LocaleSchema:
    """The JSON Schema of a locale field: the supported codes."""

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": supported_locales()}


if TYPE_CHECKING:
    LocaleCode = str
else:
    LocaleCode = Annotated[str, AfterValidator(check_locale), _LocaleSchema()]
"""A locale field of a request: one of the supported codes (a 422 listing them otherwise)."""


def negotiate(accept_language: str | None) -> str | None:
    """The supported locale an `Accept-Language` header prefers most (highest q, then order;
    `de-AT` matches `de`), or None when it names none of them."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:50]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = tag.strip().replace("_", "-").split("-")[0].lower()
        if quality > 0 and language in LOCALES:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else None
