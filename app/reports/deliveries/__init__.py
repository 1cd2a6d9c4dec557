"""Delivery: finished reports reach people by e-mail and signed webhooks, through an outbox.

Modules: `models` (ReportDelivery, WebhookEndpoint), `planning` (job -> deliveries, committed
with the job), `sender` (claim, send, record, retry), `email` and `webhook` (the channels),
`signing` (Standard Webhooks), `links` (signed delivery links), `recipients` (who may receive
what), `repository` (every query). SSRF rules live in `app.common.ssrf`.

How the rest of the application uses it (see docs/delivery.md, "Integration"):

1. Start-up: `app.db.all_documents()` includes `*DELIVERY_DOCUMENTS` (from `.models`).
2. Schedule create / update: `recipients.validate_recipients(values, settings,
   field="body.recipients")` and `recipients.validate_webhook_url(settings, url,
   field="body.webhooks.0.url")`; the schedule stores a `planning.DeliveryConfig`-shaped
   `delivery` (mode, empty_result, recipients, webhook_endpoint_ids).
3. The executor, when a job with deliveries completes: `deliveries =
   planning.plan_deliveries(job, config, endpoints, settings, report_name=...,
   figures=summarizer.figures())` with `job.status`, `job.result` and `job.expires_at` set to
   what the commit stores, then `await planning.commit_with_deliveries(client,
   lambda session: <its fenced update, passed session>, deliveries)` instead of the bare
   fenced update. A scheduled run that fails for good: `planning.plan_notice(...)` to the
   owner, in the same way.
4. The worker: a loop calling `await sender.send_due(resources, worker_id=...)` every few
   seconds (and at once after a commit that planned deliveries).
5. Schedule paused or deleted: `await repository.revoke_links_for_schedule(schedule_id)`.
6. `GET /api/v1/reports/deliveries/{token}`: `links.verify_link_token(settings, token)`, then
   the delivery (not revoked) and its job's file, streamed as the job download does.
"""

from app.reports.deliveries.models import (
    DELIVERY_DOCUMENTS,
    DeliveryChannel,
    DeliveryKind,
    DeliveryMode,
    DeliveryStatus,
    EmptyResultPolicy,
    Recipient,
    ReportDelivery,
    WebhookEndpoint,
)

__all__ = [
    "DELIVERY_DOCUMENTS",
    "DeliveryChannel",
    "DeliveryKind",
    "DeliveryMode",
    "DeliveryStatus",
    "EmptyResultPolicy",
    "Recipient",
    "ReportDelivery",
    "WebhookEndpoint",
]
