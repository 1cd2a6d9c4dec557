"""Delivery: finished reports reach people by e-mail and signed webhooks, through an outbox.

Modules: `models` (ReportDelivery, WebhookEndpoint), `planning` (job -> deliveries, committed
with the job), `sender` (claim, send, record, retry), `email` and `webhook` (the channels),
`signing` (Standard Webhooks), `links` (signed delivery links), `recipients` (who may receive
what), `addresses` (what a recipient address may look like), `repository` (every query). SSRF
rules live in `app.common.ssrf`.

How the rest of the application uses it (docs/delivery.md, "How the product uses it"): a
job carries a `DeliveryConfig` (`ReportJob.delivery`, from its schedule or POST /jobs
`notify` / `webhookUrl`); the executor's commit calls `outbox.commit_completed` /
`outbox.commit_failed` (deliveries inserted in the same transaction); the worker runs
`sender.run_sender` once per channel; a pausing schedule calls `outbox.insert_pause_notice`;
pausing or deleting one cancels its runs and calls `repository.revoke_links_for_schedule`
(`schedules.runner.stop_runs`); `router` serves delivery links, resend and webhook endpoints.
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
