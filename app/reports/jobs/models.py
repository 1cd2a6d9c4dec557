"""ReportJob (API-ISS-026): one run of a report, from request to stored file.

State machine: queued -> running -> completed | failed | cancelled; completed -> expired.
A running job is held by exactly one worker through a lease (`lease_token`, `lease_expires_at`);
only the holder of the current lease can move it on.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from beanie import PydanticObjectId
from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer
from pymongo import ASCENDING, IndexModel

from app.common.documents import TimestampedDocument
from app.common.pagination import SortField, Sorting, created_at, sort_indexes
from app.i18n import DEFAULT_LOCALE
from app.reports.deliveries.models import DeliveryConfig
from app.reports.jobs.evaluation import RunEvaluation


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
RETRYABLE_STATUSES = (JobStatus.FAILED, JobStatus.CANCELLED)
FINAL_STATUSES = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.EXPIRED)


class JobStep(StrEnum):
    QUEUED = "queued"
    RESOLVE = "resolve"
    COUNT = "count"
    FETCH = "fetch"
    RENDER = "render"
    STORE = "store"
    FINISH = "finish"


class Requester(BaseModel):
    user_id: str
    name: str
    email: str | None = None
    roles: list[str] = Field(default_factory=list)
    department_ids: list[str] = Field(default_factory=list)


class JobProgress(BaseModel):
    step: JobStep = JobStep.QUEUED
    percent: float = 0.0
    rows_processed: int = 0
    rows_total: int | None = None


class JobError(BaseModel):
    code: str
    message: str
    transient: bool = False


class JobResult(BaseModel):
    file_name: str
    content_type: str
    size_bytes: int
    row_count: int
    checksum_sha256: str
    storage_key: str
    truncated: bool = False
    total_rows: int | None = None
    # Where every 1,000th row of a CSV or JSON Lines file starts (stored beside the file; None
    # for other formats and for files made before the index existed).
    row_index_key: str | None = None
    # The CSV / JSON Lines file of a change report's run ends each row with its `change` mark.
    change_column: bool = False


def row_index_key(storage_key: str) -> str:
    """The storage key of a file's row index: beside it, under the same attempt's prefix."""
    return f"{storage_key}.rows-index.json"


class FileOptions(BaseModel):
    csv_bom: bool = False
    labels: bool = False  # CSV cells hold labels instead of codes (PDF and Excel always do)
    # The CSV field delimiter and decimal separator; None: the job's locale's.
    csv_delimiter: str | None = None
    csv_decimal: str | None = None
    charts: bool = True  # the type's charts in PDF, Excel and the JSON Lines header

    @model_serializer(mode="wrap")
    def _without_default_labels(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # `labels` is left out while false (and the CSV separators while unset), so the
        # idempotency hash and the stored form of every request that does not ask for them
        # stay what they were before they existed.
        data: dict[str, Any] = handler(self)
        if not self.labels:
            data.pop("labels", None)
        for name in ("csv_delimiter", "csv_decimal"):
            if getattr(self, name) is None:
                data.pop(name, None)
        if self.charts:  # likewise the charts while on (the default)
            data.pop("charts", None)
        return data


FINISHED_AT = SortField(
    "finishedAt",
    "finished_at",
    "datetime",
    "when it completed, failed or was cancelled (none yet: first ascending, last descending)",
    nullable=True,
)
JOB_SORTS = Sorting(
    (
        created_at("the job"),
        FINISHED_AT,
        SortField("status", "status", "string", "its status code, alphabetically"),
        SortField("reportType", "report_type", "string", "its report type key, alphabetically"),
    ),
    default="-createdAt",
)
# The jobs a schedule created (`GET /schedules/{id}/runs`).
RUN_SORTS = Sorting(
    (
        created_at("the job"),
        SortField(
            "scheduledFor",
            "scheduled_for",
            "datetime",
            "the timetable slot it ran for (run-now jobs and retries have none: first "
            "ascending, last descending)",
            nullable=True,
        ),
        FINISHED_AT,
    ),
    default="-createdAt",
)


class ReportJob(TimestampedDocument):
    report_type: str
    format: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    options: FileOptions = Field(default_factory=FileOptions)
    # The language and formats of the file and of its e-mails, resolved when the job was
    # created (the request's, its template's or schedule's, the requester's, else the default),
    # so a retry or a re-run makes the same file.
    locale: str = DEFAULT_LOCALE
    resolved_parameters: dict[str, Any] | None = None
    # The columns the file shows, in its order, resolved when the job was created (the
    # request's choice with the group key columns it left out first; every column of the run
    # when it chose none). None: stored before columns could be chosen (every column).
    columns: list[str] | None = None
    scope: dict[str, Any] | None = None
    requested_by: Requester
    template_id: PydanticObjectId | None = None
    template_version: int | None = None
    schedule_id: PydanticObjectId | None = None
    scheduled_for: datetime | None = None
    retry_of_job_id: PydanticObjectId | None = None
    request_id: str | None = None
    # Who is told when it ends (schedule recipients, on-demand notify / webhook): planned into
    # the delivery outbox by the job's final commit.
    delivery: DeliveryConfig | None = None
    # A schedule's test send (POST /schedules/{id}/test): delivered to the caller only, not a
    # run of the schedule (no alert state, no failure count).
    test_run: bool = False
    # A scheduled run's alert state, written by its completing commit (jobs/evaluation.py).
    evaluation: RunEvaluation | None = None

    status: JobStatus = JobStatus.QUEUED
    progress: JobProgress = Field(default_factory=JobProgress)
    attempt: int = 0
    max_attempts: int = 3
    available_at: datetime | None = None  # not claimable before (retry back-off)
    dispatch_count: int = 0
    dispatched_at: datetime | None = None
    lease_token: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False

    error: JobError | None = None
    result: JobResult | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None

    def attempt_budget(self, cap: int) -> int:
        """The attempts this job may spend: its own budget (raised by stalls), never above
        `cap` (JOB_ATTEMPTS_CAP), whatever a document says."""
        return min(self.max_attempts, cap)

    class Settings:
        name = "report_jobs"
        indexes = [
            IndexModel([("status", ASCENDING), ("lease_expires_at", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("dispatched_at", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("expires_at", ASCENDING)]),
            IndexModel([("template_id", ASCENDING)]),
            # Exactly one job per (schedule, scheduled time); run-now jobs have no scheduledFor.
            IndexModel(
                [("schedule_id", ASCENDING), ("scheduled_for", ASCENDING)],
                unique=True,
                name="one_job_per_schedule_slot",
                partialFilterExpression={"scheduled_for": {"$type": "date"}},
            ),
            # The lists: a user's jobs (everyone's for admins), a schedule's runs.
            *sort_indexes(JOB_SORTS, ("requested_by.user_id",), ()),
            *sort_indexes(RUN_SORTS, ("schedule_id",)),
        ]


class IdempotencyRecord(TimestampedDocument):
    """Maps (user, Idempotency-Key) to the job it created and the request it answered."""

    user_id: str
    key: str
    request_hash: str
    job_id: PydanticObjectId

    class Settings:
        name = "idempotency_keys"
        indexes = [
            IndexModel([("user_id", ASCENDING), ("key", ASCENDING)], unique=True),
            IndexModel([("created_at", ASCENDING)], expireAfterSeconds=24 * 3600),
        ]
