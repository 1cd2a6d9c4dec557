"""The delivery outbox (`report_deliveries`) and webhook endpoints (`webhook_endpoints`).

A `ReportDelivery` is one message to one recipient: an e-mail address or a webhook endpoint.
State machine: pending -> sending -> sent | pending (retry) | failed; pending -> cancelled.
A `sending` delivery is held by one sender through a lease; an expired lease makes it
claimable again (the sender died between claiming and recording: the message may have gone
out, hence the stable `idempotency_id` every message carries).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from app.common.documents import TimestampedDocument
from app.common.pagination import SortField, Sorting, created_at, sort_indexes
from app.common.time import as_utc
from app.i18n import DEFAULT_LOCALE


class DeliveryChannel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    SLACK = "slack"
    TEAMS = "teams"


class EndpointKind(StrEnum):
    """What an endpoint URL receives: a signed JSON POST (Standard Webhooks), or a message for
    a Slack or Microsoft Teams channel (its incoming-webhook URL, a secret of its own)."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    TEAMS = "teams"

    @property
    def channel(self) -> DeliveryChannel:
        return DeliveryChannel(self.value)

    @property
    def chat(self) -> bool:
        return self is not EndpointKind.WEBHOOK


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DeliveryKind(StrEnum):
    REPORT = "report"  # the finished report: file and / or link
    NOTICE = "notice"  # a short message without a file (no rows, failed run, paused schedule)


class DeliveryMode(StrEnum):
    """How an e-mail carries the file (per schedule)."""

    ATTACH = "attach"  # attached when under the size limit, else a link
    LINK = "link"
    BOTH = "both"  # attached when under the size limit, and a link


class EmptyResultPolicy(StrEnum):
    SEND = "send"
    SKIP = "skip"
    NOTICE = "notice"


class ChangesMode(StrEnum):
    """What a schedule with change reports sends (`changes.mode`)."""

    BOTH = "both"  # the full report, the changes since the last delivered run in the message
    CHANGES = "changes"  # only the changes: the message's file is the list of changed rows


class ChangesConfig(BaseModel):
    """A schedule's change reports (app/reports/schedules/changes/): each run is compared with
    the last delivered run of the same schedule and scope, by the type's row key."""

    mode: ChangesMode = ChangesMode.BOTH
    # Nothing added, left or changed since the last delivered run: `skip` sends nothing,
    # `notice` a short "nothing changed" message, `send` the run as usual.
    unchanged: EmptyResultPolicy = EmptyResultPolicy.NOTICE


class Recipient(BaseModel):
    """Who receives one delivery: an e-mail address (of a platform user or not) or a webhook
    endpoint. The URL is a snapshot; the signing secrets are read from the endpoint at send
    time, so a rotation applies to deliveries already waiting."""

    user_id: str | None = None
    address: str | None = None
    endpoint_id: PydanticObjectId | None = None
    url: str | None = None
    # The language of the e-mail: the platform user's locale when the run was made (None: the
    # job's locale).
    locale: str | None = None

    def key(self) -> str:
        """What a delivery link is issued to (checked when the link is used)."""
        if self.endpoint_id is not None:
            return f"endpoint:{self.endpoint_id}"
        return f"user:{self.user_id}" if self.user_id else f"email:{self.address}"


class Audience(StrEnum):
    """In whose scope a schedule runs for its recipients."""

    OWNER = "owner"  # one run in the owner's scope, sent to every recipient
    RECIPIENT = "recipient"  # each platform-user recipient gets a run in their own scope
    # the managers of a department subtree, found at each run, each in their own scope
    DEPARTMENT_MANAGERS = "department-managers"


class SkippedRecipient(BaseModel):
    """Someone a run did not send to, and why (shown on the run)."""

    user_id: str | None = None
    address: str | None = None
    # `inactive`: deactivated in the platform; `deleted`: no longer a platform user;
    # `no-manager`: a department of a department-managers audience without an active manager
    reason: str
    department_id: str | None = None
    department_name: str | None = None


class DeliveryConfig(BaseModel):
    """What a schedule (or an on-demand job) asks for, stored on the job when it is created;
    recipients already validated (`recipients.validate_recipients`) so each has its address."""

    mode: DeliveryMode = DeliveryMode.BOTH
    empty_result: EmptyResultPolicy = EmptyResultPolicy.SEND
    recipients: list[Recipient] = Field(default_factory=list)
    webhook_endpoint_ids: list[PydanticObjectId] = Field(default_factory=list)
    title: str | None = None  # the messages' report name (the schedule's); else the type's
    notify_owner_on_failure: bool = False  # scheduled runs: a run failing for good is told
    # Who the run did not reach, and why: listed recipients deactivated or deleted since, and
    # (audience department-managers) departments without a manager. Listed on the run.
    skipped_recipients: list[SkippedRecipient] = Field(default_factory=list)
    changes: ChangesConfig | None = None  # a schedule's change reports (None: none)


class Figure(BaseModel):
    label: str
    value: str
    definition: str = ""  # what the figure means, as the file and the metadata API state it


class DeliveryAlert(BaseModel):
    """A message sent because a schedule's alert fired or recovered: said in its subject and
    first lines (e-mail) and as `data.alert` (webhook)."""

    state: str  # fired | recovered
    lines: list[str] = Field(default_factory=list)  # each condition as people read it
    conditions: list[dict[str, Any]] = Field(default_factory=list)  # the same, as data


class DeliveryChanges(BaseModel):
    """What changed since the last delivered run of the schedule and scope, said in the
    e-mail's first lines and as `data.changes` (webhook, Slack, Teams)."""

    first_run: bool = False  # no delivered run before: this run is the baseline
    since: datetime | None = None  # when the compared run was made
    counts: dict[str, int] = Field(default_factory=dict)  # added, left, changed, unchanged
    transitions: dict[str, int] = Field(default_factory=dict)  # e.g. newly-overdue: 7
    summary: str = ""  # the counts in words: "7 newly overdue, 3 completed, 2 enrolled"
    lines: list[str] = Field(default_factory=list)  # the first changed rows, before → after


class Parameter(BaseModel):
    """One line of the report's Parameters block, in words (`Departments: Finance`)."""

    label: str
    value: str


class DeliveryContent(BaseModel):
    """What the message says, fixed when the job finishes (the job may expire later)."""

    report_name: str
    report_type: str
    format: str
    job_status: str
    # The language the message is written in (the recipient's, else the job's): its texts,
    # figures, dates and numbers.
    locale: str = DEFAULT_LOCALE
    period_start: datetime | None = None
    period_end: datetime | None = None
    # The same period as the file states it: first and last local day, both included.
    period_first_day: str | None = None
    period_last_day: str | None = None
    timezone: str = "UTC"
    figures: list[Figure] = Field(default_factory=list)
    file_name: str | None = None
    content_type: str | None = None
    size_bytes: int | None = None
    row_count: int | None = None
    checksum_sha256: str | None = None
    storage_key: str | None = None
    file_expires_at: datetime | None = None
    subject: str | None = None  # notices: their own subject and text
    text: str | None = None
    alert: DeliveryAlert | None = None  # sent because an alert fired or recovered
    changes: DeliveryChanges | None = None  # a change report's counts and first rows
    # The period and filters in words, as the file's Parameters block states them.
    parameters: list[Parameter] = Field(default_factory=list)
    # A message of a schedule's run to one of its recipients: it carries List-Unsubscribe.
    unsubscribe: bool = False


DELIVERY_SORTS = Sorting(
    (
        created_at("the delivery (when its job finished)"),
        SortField(
            "sentAt",
            "sent_at",
            "datetime",
            "when it was sent (not sent: first ascending, last descending)",
            nullable=True,
        ),
    ),
    default="-createdAt",
)
WEBHOOK_SORTS = Sorting(
    (
        created_at("the endpoint"),
        SortField("url", "url", "string", "its URL, by code point"),
    ),
    default="-createdAt",
)


class ReportDelivery(TimestampedDocument):
    job_id: PydanticObjectId | None = None
    schedule_id: PydanticObjectId | None = None
    owner_user_id: str | None = None  # the schedule's owner / the requester (resend rights)
    channel: DeliveryChannel
    kind: DeliveryKind = DeliveryKind.REPORT
    mode: DeliveryMode = DeliveryMode.BOTH
    recipient: Recipient
    content: DeliveryContent
    # Derived from the id, the same on every attempt: e-mail Message-ID <id@domain>, webhook-id
    # msg_<id>. Receivers drop duplicates by it.
    idempotency_id: str

    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: int = 0
    max_attempts: int = 8
    next_attempt_at: datetime
    lease_owner: str | None = None
    lease_token: str | None = None
    lease_expires_at: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    provider_message_id: str | None = None  # the SMTP server's answer to DATA
    http_status: int | None = None
    response_excerpt: str | None = None  # at most 200 characters of the webhook's answer
    link_expires_at: datetime | None = None
    link_revoked_at: datetime | None = None

    class Settings:
        name = "report_deliveries"
        indexes = [
            # The sender's claim, one lane per channel: due pending deliveries, and sending ones
            # whose lease expired.
            IndexModel(
                [("channel", ASCENDING), ("status", ASCENDING), ("next_attempt_at", ASCENDING)]
            ),
            IndexModel(
                [("channel", ASCENDING), ("status", ASCENDING), ("lease_expires_at", ASCENDING)]
            ),
            IndexModel([("job_id", ASCENDING)]),
            IndexModel([("recipient.endpoint_id", ASCENDING), ("status", ASCENDING)]),
            # The list: the owner's deliveries (everyone's for admins), or one schedule's (a
            # job's few are read through `job_id` and sorted as they come).
            *sort_indexes(DELIVERY_SORTS, ("owner_user_id",), ("schedule_id",), ()),
        ]


class EndpointSecret(BaseModel):
    secret: str  # whsec_<base64>; kept in clear: signing needs it
    created_at: datetime
    expires_at: datetime | None = None  # set when rotated away: signs until then


class WebhookEndpoint(TimestampedDocument):
    """A URL a user registered, with its signing secrets. Gone (HTTP 410) disables it."""

    owner_user_id: str
    url: str
    kind: EndpointKind = EndpointKind.WEBHOOK
    description: str | None = None
    secrets: list[EndpointSecret] = Field(default_factory=list)
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    class Settings:
        name = "webhook_endpoints"
        indexes = sort_indexes(WEBHOOK_SORTS, ("owner_user_id",))

    def live_secrets(self, now: datetime) -> list[EndpointSecret]:
        """The secrets that sign now: the newest first, then any still in its overlap window."""
        live = [s for s in self.secrets if s.expires_at is None or as_utc(s.expires_at) > now]
        live.sort(key=lambda s: as_utc(s.created_at), reverse=True)
        return live

    def signing_secrets(self, now: datetime) -> list[str]:
        return [s.secret for s in self.live_secrets(now)]


DELIVERY_DOCUMENTS: list[Any] = [ReportDelivery, WebhookEndpoint]
