"""Swagger UI and ReDoc work offline: in headless Chromium, with every request to another host
refused, both render the API from the app's own assets; the Authorize dialog says how to get a
local token; each report type's job schema is listed."""

from __future__ import annotations

from playwright.async_api import Page, Route

from app.config import Settings
from tests.helpers.api_server import running_api
from tests.helpers.browser import chromium


async def offline_page(page: Page, origin: str) -> list[str]:
    """Refuses every request leaving `origin`; returns the list they are recorded in."""
    elsewhere: list[str] = []

    async def only_the_api(route: Route) -> None:
        if route.request.url.startswith(origin):
            await route.continue_()
        else:
            elsewhere.append(route.request.url)
            await route.abort()

    await page.route("**/*", only_the_api)
    return elsewhere


async def test_swagger_ui_and_redoc_render_offline(settings: Settings) -> None:
    with running_api(settings) as api:
        async with chromium() as browser:
            page = await browser.new_page()
            elsewhere = await offline_page(page, api)
            await page.goto(f"{api}/")  # redirected to the docs
            assert page.url == f"{api}/docs"
            await page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert settings.app_name in await page.inner_text(".swagger-ui .info .title")
            await page.wait_for_selector("section.models", timeout=30_000)
            models = await page.inner_text("section.models")
            assert "LearnerProgressJobCreate" in models and "ComplianceStatusParameters" in models
            await page.click("button.authorize")
            dialog = await page.inner_text(".modal-ux", timeout=10_000)
            assert "make run" in dialog and "scripts.mint_token" in dialog

            redoc = await browser.new_page()
            elsewhere += await offline_page(redoc, api)
            await redoc.goto(f"{api}/redoc")
            await redoc.locator("h2", has_text="Run a report").wait_for(timeout=30_000)
            assert settings.app_name in await redoc.inner_text("h1")
    assert elsewhere == []
