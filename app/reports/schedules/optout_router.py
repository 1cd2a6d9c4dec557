"""Self-service and governance of recipients: the unsubscribe link of every schedule e-mail
(a confirmation page on GET, the one-click POST of RFC 8058) and, for admins, what one person
receives."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from app.deps import SettingsDep
from app.errors import NotFound, problem_responses
from app.reports.deliveries.pages import wants_html
from app.reports.schedules import optout
from app.reports.schedules.optout_pages import confirm_page, done_page, invalid_page
from app.reports.schedules.subscriptions import SubscriptionsOut, subscriptions_of
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports", tags=["report-schedules"])
NO_STORE = {"Cache-Control": "no-store"}


def _html(description: str) -> dict[int | str, dict[str, Any]]:
    page = {"text/html": {"schema": {"type": "string"}}}
    return {200: {"description": description, "content": page}}


def _not_a_link() -> dict[int | str, dict[str, Any]]:
    """The 404: a problem, or for a browser a short page."""
    response = problem_responses(404)[404]
    page = {"text/html": {"schema": {"type": "string"}}}
    return {404: {**response, "content": {**response.get("content", {}), **page}}}


def _invalid(request: Request, exc: NotFound) -> HTMLResponse:
    if not wants_html(request.headers.get("accept")):
        raise exc
    return HTMLResponse(invalid_page(), status_code=404, headers=NO_STORE)


@router.get(
    "/unsubscribe/{token}",
    name="unsubscribe_page",
    summary="The page behind an e-mail's unsubscribe link (changes nothing)",
    description=(
        "The signed link of one recipient of one schedule, as its e-mails carry it (the link "
        "is the credential; no bearer token). Shows what unsubscribing does and a button that "
        "POSTs to the same URL: opening the link never unsubscribes, because mail scanners "
        "follow links. 404 for a link this service did not sign (a browser gets a short page)."
    ),
    response_class=Response,
    responses={**_html("The confirmation page"), **_not_a_link()},
)
async def unsubscribe_page(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        claims = optout.token_claims(settings, token)
        seen = await optout.looked_up(settings, token)
    except NotFound as exc:
        return _invalid(request, exc)
    page = confirm_page(claims.locale, seen.schedule_name, seen.address)
    return HTMLResponse(page, headers=NO_STORE)


@router.post(
    "/unsubscribe/{token}",
    name="unsubscribe",
    summary="Unsubscribe from a schedule's e-mails (RFC 8058 one-click)",
    description=(
        "What a mail program's unsubscribe button sends (`List-Unsubscribe=One-Click` as a form "
        "body; any body is accepted) and what the confirmation page's button does. Takes the "
        "link's recipient off the schedule: its next runs do not send to them, the schedule "
        "lists them under `unsubscribed`, the owner is told in a daily summary, and listing "
        "them again needs `reinvite`. Idempotent: a second POST changes nothing. Recorded in "
        "the audit trail (`schedule.unsubscribed`). 404 for a link this service did not sign."
    ),
    response_class=Response,
    responses={**_html("Unsubscribed (or already)"), **_not_a_link()},
)
async def unsubscribe(token: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    try:
        claims = optout.token_claims(settings, token)
        done = await optout.unsubscribe(settings, token)
    except NotFound as exc:
        return _invalid(request, exc)
    return HTMLResponse(done_page(claims.locale, done.schedule_name), headers=NO_STORE)


@router.get(
    "/recipients/{recipient}/subscriptions",
    name="recipients_subscriptions",
    summary="What one person receives (admins)",
    description=(
        "`recipient` is a platform user id or an e-mail address. Lists every schedule that "
        "sends to them (listed by user id or by address, either way), with the channel, the "
        "audience, the schedule's status and next run, and the schedules they left through an "
        "unsubscribe link. A platform user who is not active is shown with `active: false`: "
        "their schedules skip them at every run. 403 `admin-required` for anyone else; 404 "
        "`recipient-not-found` for an unknown user id or a value that is not an address."
    ),
    response_model=SubscriptionsOut,
    responses=problem_responses(401, 403, 404),
)
async def subscriptions(recipient: str, principal: CurrentPrincipal) -> SubscriptionsOut:
    return await subscriptions_of(principal, recipient)
