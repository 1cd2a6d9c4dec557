"""A person who opens a delivery link that no longer works in a browser gets a short page that
says what happened and whom to ask; an API client gets the problem+json as before."""

from __future__ import annotations

from datetime import timedelta

import httpx

from app.common.time import utcnow
from app.config import Settings
from app.platform.models import User
from app.reports.deliveries.links import issue_link_token
from app.reports.deliveries.models import (
    DeliveryChannel,
    DeliveryContent,
    Recipient,
    ReportDelivery,
)
from app.reports.deliveries.pages import wants_html
from tests import factories

LINKS = "/api/v1/reports/deliveries"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


async def _link(settings: Settings, *, expires_in: timedelta, revoked: bool = False) -> str:
    owner = await User.find_one({"email": "maria@example.org"}) or await factories.user(
        "Maria Keller", roles=["manager"], email="maria@example.org"
    )
    recipient = Recipient(address="team@example.org")
    delivery = ReportDelivery(
        owner_user_id=str(owner.id),
        channel=DeliveryChannel.EMAIL,
        recipient=recipient,
        content=DeliveryContent(
            report_name="Weekly progress",
            report_type="learner-progress",
            format="csv",
            job_status="completed",
        ),
        idempotency_id="delivery-page-test",
        next_attempt_at=utcnow(),
        link_revoked_at=utcnow() if revoked else None,
    )
    await delivery.insert()
    token = issue_link_token(
        settings,
        delivery_id=str(delivery.id),
        recipient=recipient.key(),
        expires_at=utcnow() + expires_in,
    )
    return f"{LINKS}/{token}"


async def test_a_browser_reads_what_happened_and_whom_to_ask(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    expired = await _link(settings, expires_in=timedelta(days=-1))
    page = await client.get(expired, headers=BROWSER)
    assert page.status_code == 410
    assert page.headers["content-type"].startswith("text/html")
    assert "This link has expired" in page.text
    assert "Maria Keller" in page.text and "mailto:maria@example.org" in page.text
    assert page.headers["x-request-id"] in page.text  # a reference to quote

    revoked = await _link(settings, expires_in=timedelta(days=1), revoked=True)
    page = await client.get(revoked, headers=BROWSER)
    assert page.status_code == 410 and "schedule was paused or deleted" in page.text

    unknown = await client.get(f"{LINKS}/not-a-link", headers=BROWSER)
    assert unknown.status_code == 404 and "This link does not work" in unknown.text
    assert "Ask the person or team who sent you the link" in unknown.text


async def test_an_api_client_still_gets_the_problem(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    expired = await _link(settings, expires_in=timedelta(days=-1))
    for accept in (None, "application/json", "application/problem+json, text/html;q=0.5"):
        headers = {"Accept": accept} if accept else {}
        response = await client.get(expired, headers=headers)
        assert response.status_code == 410
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "delivery-link-expired"
        assert "Maria Keller" not in response.text


def test_who_wants_a_page() -> None:
    assert wants_html(BROWSER["Accept"])
    assert wants_html("text/html")
    assert not wants_html(None) and not wants_html("*/*")
    assert not wants_html("application/json, text/html;q=0.1")
    assert not wants_html("text/html;q=0")
