"""The report e-mail as its reader sees it, through a schedule's run against the real servers:
an HTML part laid out for mail programs with a plain-text alternative, the period and filters
in words, the summary figures with what they mean, the link's expiry as a date in the reader's
language and timezone, and the unsubscribe line; then the HTML part in a real browser."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.dates import format_date

from app.common.time import as_utc, utcnow, zone
from app.main import create_app
from app.platform.models import User
from app.reports.deliveries.models import ReportDelivery
from app.reports.deliveries.sender import send_due
from app.runtime.resources import Resources
from tests import factories as f
from tests.helpers.api import api_client
from tests.helpers.browser import chromium
from tests.helpers.deliveries import Mailbox, schedule_body
from tests.helpers.tokens import TokenFactory

SCHEDULES = "/api/v1/reports/schedules"
# Where the screenshots go (set MAIL_SCREENSHOTS to keep them for a look).
SHOTS = os.environ.get("MAIL_SCREENSHOTS")


@pytest.fixture
async def client(delivery_resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(delivery_resources.settings, resources=delivery_resources)
    async with application.router.lifespan_context(application), api_client(application) as c:
        yield c


def requested_by(seen: list[str]) -> Callable[[Any], None]:
    """A page's request listener that notes every URL it asks for."""

    def note(request: Any) -> None:
        seen.append(str(request.url))

    return note


def _part(message: EmailMessage, kind: str) -> str:
    body = message.get_body(preferencelist=(kind,))
    assert body is not None, f"no {kind} part"
    assert body.get_content_type() == f"text/{kind}"
    return str(body.get_content())


async def _run_schedule(
    client: httpx.AsyncClient,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    resources: Resources,
) -> dict[str, ReportDelivery]:
    """A German-speaking platform user and an external address receive a run of a schedule
    filtered to one department; its deliveries by address."""
    finance = await f.department("Finance", code="FIN")
    owner = await f.user("Olga Owner", dept=finance, roles=["admin"], email="olga@example.test")
    greta = await f.user("Greta Gruber", dept=finance, roles=["admin"], email="greta@example.test")
    await User.find_one(User.id == greta.id).update({"$set": {"locale": "de"}})
    learner = await f.user("Lars Learner", dept=finance)
    course = await f.course("FIN-1")
    await f.enrollment(learner, course, enrolled_at=utcnow() - timedelta(days=2))
    headers = auth("admin", sub=str(owner.id), name="Olga Owner")
    created = await client.post(
        SCHEDULES,
        json=schedule_body(
            recipients=[str(greta.id), "partner@example.org"],
            parameters={
                "dateRange": {"preset": "last-7-days"},
                "departmentIds": [str(finance.id)],
                "includeSubDepartments": False,
            },
            timezone="Europe/Berlin",
            delivery="link",
        ),
        headers=headers,
    )
    assert created.status_code == 201, created.text
    run = await client.post(f"{SCHEDULES}/{created.json()['id']}/run-now", headers=headers)
    assert run.status_code == 202, run.text
    await run_worker()
    for _ in range(3):
        await send_due(resources, worker_id="test-sender")
    return {d.recipient.address or "": d for d in await ReportDelivery.find().to_list()}


async def test_the_html_mail_states_period_filters_figures_expiry_and_unsubscribe(
    client: httpx.AsyncClient,
    delivery_resources: Resources,
    auth: TokenFactory,
    run_worker: Callable[..., Any],
    smtp_server: Mailbox,
    tmp_path: Path,
) -> None:
    deliveries = await _run_schedule(client, auth, run_worker, delivery_resources)
    messages = {str(m["To"]): m for m in smtp_server.messages()}
    assert sorted(messages) == ["greta@example.test", "partner@example.org"]

    german = messages["greta@example.test"]
    html, text = _part(german, "html"), _part(german, "plain")
    delivery = deliveries["greta@example.test"]
    assert delivery.link_expires_at is not None
    local = as_utc(delivery.link_expires_at).astimezone(zone("Europe/Berlin"))
    expiry = format_date(local.date(), format="long", locale="de")  # e.g. "11. Dezember 2026"
    figures = delivery.content.figures
    assert figures and all(fig.definition for fig in figures)
    for part in (html, text):
        assert "Zeitraum" in part and "(Letzte 7 Tage)" in part  # the period in words
        assert "Abteilungen" in part and "Finance" in part  # the filter, by name
        assert "Unterabteilungen einbeziehen" in part
        for fig in figures:  # each figure with its one-line definition
            assert fig.label in part and fig.value.replace("\xa0", " ") in part.replace("\xa0", " ")
            assert fig.definition in part
        assert f"gilt bis {expiry}" in part and "(Europe/Berlin)" in part
    unsubscribe = "https://reports.example/api/v1/reports/unsubscribe/"
    assert f"Wenn Sie ihn nicht mehr erhalten möchten: {unsubscribe}" in text
    assert "Wenn Sie ihn nicht mehr erhalten möchten:" in html and ">Abmelden</a>" in html
    # One layout for mail programs: tables, inline styles, no external asset.
    assert '<html lang="de">' in html and "<table" in html and "<style" not in html
    assert "src=" not in html and "<link" not in html and "@import" not in html
    assert "-apple-system" in html and "max-width:600px" in html
    assert f'href="{unsubscribe}' in html
    assert german["Message-ID"] == f"<{delivery.idempotency_id}@school.example>"

    english = messages["partner@example.org"]
    en_html = _part(english, "html")
    assert "Date range" in en_html and "Departments" in en_html and "Last 7 days" in en_html
    en_local = as_utc(deliveries["partner@example.org"].link_expires_at).astimezone(  # type: ignore[arg-type]
        zone("Europe/Berlin")
    )
    assert f"works until {format_date(en_local.date(), format='long', locale='en')}" in en_html

    # The HTML part in a real browser: a narrow phone and a desktop window.
    shots = Path(SHOTS) if SHOTS else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    async with chromium() as browser:
        for name, width in (("desktop", 1000), ("phone", 380)):
            page = await browser.new_page(viewport={"width": width, "height": 900})
            requested: list[str] = []
            page.on("request", requested_by(requested))
            await page.set_content(html)
            await page.screenshot(path=str(shots / f"mail-de-{name}.png"), full_page=True)
            card = await page.evaluate(
                "() => { const t = document.querySelector('table table');"
                " const r = t.getBoundingClientRect(); return [r.width, r.left]; }"
            )
            font = await page.evaluate(
                "() => getComputedStyle(document.querySelector('h1')).fontFamily"
            )
            scroll = await page.evaluate("() => document.documentElement.scrollWidth")
            await page.close()
            assert requested == []  # nothing fetched from anywhere
            assert card[0] <= 600 and scroll <= width  # no sideways scrolling on a phone
            assert "serif" not in font.replace("sans-serif", "")
