"""Request-scoped access to the shared adapters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Query, Request, Response

from app.config import Settings
from app.i18n import DEFAULT_LOCALE, LocaleCode, negotiate
from app.runtime.resources import Resources


def get_resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with (`create_app(settings)`), not the process's."""
    settings: Settings = request.app.state.settings
    return settings


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]


LOCALE_QUERY_DESCRIPTION = (
    "The language of the labels and descriptions: a supported locale code (another is a 422 "
    "listing them). Omitted: the best match of Accept-Language, else en"
)


def request_locale(
    response: Response,
    locale: Annotated[
        LocaleCode | None, Query(description=LOCALE_QUERY_DESCRIPTION, examples=["de"])
    ] = None,
    accept_language: Annotated[
        str | None,
        Header(
            max_length=500,
            description="Used when `locale` is not given: the supported locale it prefers most",
        ),
    ] = None,
) -> str:
    """The locale a metadata answer is written in (`?locale=`, else Accept-Language), also
    sent back as Content-Language."""
    chosen = locale or negotiate(accept_language) or DEFAULT_LOCALE
    response.headers["Content-Language"] = chosen
    response.headers["Vary"] = "Accept-Language"
    return chosen


RequestLocale = Annotated[str, Depends(request_locale)]
