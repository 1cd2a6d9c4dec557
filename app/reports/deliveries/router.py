"""Delivery endpoints: the deliveries of a caller's reports, downloading through a delivery
link, resending a failed delivery, and a caller's webhook endpoints (register, list, rotate the
signing secret)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from app.audit import AuditAction, record
from app.common.schemas import Page
from app.deps import ResourcesDep, SettingsDep
from app.errors import Gone, NotFound, problem_responses, read_request_id
from app.reports.deliveries import listing, service
from app.reports.deliveries.models import (
    DELIVERY_SORTS,
    WEBHOOK_SORTS,
    DeliveryChannel,
    DeliveryStatus,
)
from app.reports.deliveries.pages import link_problem_page, wants_html, with_page
from app.reports.deliveries.schemas import DeliveryOut, WebhookCreate, WebhookOut
from app.reports.formats import compresses, file_response
from app.reports.schedules.in_use import refuse_webhook_in_use
from app.runtime.downloads import StoredFile, serve_file
from app.security import CurrentPrincipal

router = APIRouter(prefix="/api/v1/reports", tags=["report-deliveries"])


@router.get(
    "/deliveries",
    name="deliveries_list",
    summary="The deliveries of your reports (admins: all)",
    description=(
        "Every e-mail, webhook call and notice planned for the jobs you requested and the "
        "schedules you own, with its status, attempts and last error; filter by job, schedule, "
        "status or channel. Newest first unless `sort` says otherwise. Pages: pass "
        "`nextCursor` back as `cursor` with the same filters and sort; `total` counts the "
        "matching deliveries when that is cheap, else it is null and `totalAtLeast` a lower "
        "bound."
    ),
    response_model=Page[DeliveryOut],
    responses=problem_responses(401, 422),
)
async def list_deliveries(
    principal: CurrentPrincipal,
    job_id: Annotated[str | None, Query(alias="jobId", max_length=64)] = None,
    schedule_id: Annotated[str | None, Query(alias="scheduleId", max_length=64)] = None,
    status: DeliveryStatus | None = None,
    channel: DeliveryChannel | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, DELIVERY_SORTS.query()] = DELIVERY_SORTS.default,
) -> Page[DeliveryOut]:
    listed = await listing.list_deliveries(
        listing.DeliveryFilters(
            job_id=job_id, schedule_id=schedule_id, status=status, channel=channel
        ),
        DELIVERY_SORTS.request(sort, cursor, limit),
        user_id=principal.user_id,
        is_admin=principal.is_admin,
    )
    return listed.page(DeliveryOut.from_document)


@router.get(
    "/deliveries/{token}",
    name="deliveries_download",
    summary="Download a report through a delivery link (the link is the credential)",
    description=(
        "The signed, expiring link of one recipient's delivery (sent by e-mail or in a "
        "webhook's payload); no bearer token. 404 for a link that is not valid, 410 once it "
        "expired, its schedule was paused or deleted, or the file passed its retention. A "
        "browser (`Accept: text/html`) gets a short page saying what happened and whom to "
        "ask instead of the problem. `Range`, `If-Range` and `Accept-Encoding: gzip` work as "
        "on a job's download (206, 416; CSV and JSON Lines compressed)."
    ),
    responses={
        **file_response(),
        **with_page(problem_responses(404, 410)),
        **problem_responses(416),
    },
    response_class=Response,
)
async def download(token: str, request: Request, resources: ResourcesDep) -> Response:
    try:
        return await _download(token, request, resources)
    except (NotFound, Gone) as exc:
        if not wants_html(request.headers.get("accept")):
            raise
        contact = await service.link_contact(resources.settings, token)
        page = link_problem_page(exc.code, contact, read_request_id(request))
        return HTMLResponse(page, status_code=exc.status, headers={"Cache-Control": "no-store"})


async def _download(token: str, request: Request, resources: ResourcesDep) -> Response:
    delivery, content = await service.open_link(resources.settings, token)
    assert content.storage_key is not None and content.file_name is not None
    await record(
        AuditAction.DELIVERY_LINK_USED,
        None,
        object_type="delivery",
        object_id=delivery.id,
        details={"recipient": delivery.recipient.key(), "jobId": str(delivery.job_id)},
    )
    file = StoredFile(
        key=content.storage_key,
        file_name=content.file_name,
        content_type=content.content_type or "application/octet-stream",
        size_bytes=content.size_bytes,
        checksum_sha256=content.checksum_sha256,
        modified_at=delivery.created_at,
        compressible=compresses(content.format),
    )
    try:
        return await serve_file(resources.storage, request.headers, file)
    except FileNotFoundError as exc:
        raise Gone("The report file is no longer available.", code="job-file-missing") from exc


@router.post(
    "/deliveries/{delivery_id}/resend",
    name="deliveries_resend",
    summary="Send a failed delivery again (its owner or an admin)",
    description=(
        "A failed or cancelled delivery goes back to the outbox with a fresh attempt budget and "
        "the same idempotency id (a receiver that got it already drops the copy)."
    ),
    status_code=202,
    response_model=DeliveryOut,
    responses=problem_responses(401, 403, 404, 409),
)
async def resend(
    delivery_id: str, settings: SettingsDep, principal: CurrentPrincipal
) -> DeliveryOut:
    delivery = await service.resend(
        settings, delivery_id, user_id=principal.user_id, is_admin=principal.is_admin
    )
    await record(AuditAction.DELIVERY_RESENT, principal, object_id=delivery.id)
    return DeliveryOut.from_document(delivery)


@router.post(
    "/webhooks",
    name="webhooks_create",
    summary="Register a webhook endpoint for on-demand jobs (its secret is shown once)",
    description=(
        "The URL is checked against SSRF rules (no loopback, private, link-local or metadata "
        "address unless WEBHOOK_ALLOWED_NETWORKS permits it; https in production). The answer "
        "holds the signing secret, once: keep it to verify the `webhook-signature` header "
        "(Standard Webhooks). A job's `webhookUrl` must be one of your endpoints."
    ),
    status_code=201,
    response_model=WebhookOut,
    responses=problem_responses(401, 422),
)
async def create_webhook(
    body: WebhookCreate, settings: SettingsDep, principal: CurrentPrincipal
) -> WebhookOut:
    endpoint, secret = await service.register_endpoint(
        settings, principal.user_id, body.url, body.description
    )
    await record(AuditAction.WEBHOOK_CREATED, principal, object_id=endpoint.id)
    return WebhookOut.from_document(endpoint, secret)


@router.get(
    "/webhooks",
    name="webhooks_list",
    summary="Your webhook endpoints (secrets are not shown again)",
    description=(
        "Newest first unless `sort` says otherwise. Pages: pass `nextCursor` back as `cursor` "
        "with the same sort; `total` counts your endpoints."
    ),
    response_model=Page[WebhookOut],
    responses=problem_responses(401, 422),
)
async def list_webhooks(
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    sort: Annotated[str, WEBHOOK_SORTS.query()] = WEBHOOK_SORTS.default,
) -> Page[WebhookOut]:
    listed = await listing.list_webhooks(
        principal.user_id, WEBHOOK_SORTS.request(sort, cursor, limit)
    )
    return listed.page(WebhookOut.from_document)


@router.post(
    "/webhooks/{endpoint_id}/rotate",
    name="webhooks_rotate",
    summary="Rotate an endpoint's signing secret (the old one signs during the overlap)",
    description=(
        "The new secret (in the answer, once) signs from now on; the previous one keeps "
        "signing for WEBHOOK_SECRET_OVERLAP_HOURS, so the header carries both signatures "
        "meanwhile and a receiver can switch without missing a call. A Slack or Teams endpoint "
        "is not signed (409 `webhook-unsigned`)."
    ),
    response_model=WebhookOut,
    responses=problem_responses(401, 404, 409),
)
async def rotate_webhook(
    endpoint_id: str, settings: SettingsDep, principal: CurrentPrincipal
) -> WebhookOut:
    endpoint, secret = await service.rotate_secret(
        settings, endpoint_id, user_id=principal.user_id, is_admin=principal.is_admin
    )
    await record(AuditAction.WEBHOOK_ROTATED, principal, object_id=endpoint.id)
    return WebhookOut.from_document(endpoint, secret)


@router.delete(
    "/webhooks/{endpoint_id}",
    name="webhooks_delete",
    summary="Delete a webhook endpoint (its owner or an admin)",
    description=(
        "Deliveries still waiting for it are cancelled. 409 while a schedule calls it: the "
        "problem names the schedules (remove the endpoint from their `webhooks` first)."
    ),
    status_code=204,
    response_class=Response,
    responses=problem_responses(401, 404, 409),
)
async def delete_webhook(endpoint_id: str, principal: CurrentPrincipal) -> Response:
    endpoint = await service.delete_endpoint(
        endpoint_id,
        user_id=principal.user_id,
        is_admin=principal.is_admin,
        in_use=lambda e: refuse_webhook_in_use(principal, e),
    )
    await record(
        AuditAction.WEBHOOK_DELETED, principal, object_id=endpoint.id, details={"url": endpoint.url}
    )
    return Response(status_code=204)
