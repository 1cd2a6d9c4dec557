"""Settings, read once from environment variables (see `.env.example`)."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.common.ssrf import parse_networks

DEFAULT_JWT_SECRET = "local-development-secret-change-me"
# A delivery's lease outlasts its attempt's deadline by this much: the time to record the outcome.
DELIVERY_LEASE_MARGIN_SECONDS = 5
PDF_ROW_CAP = 50_000  # PDF_MAX_ROWS may go up to this (a stated cap, see pdf_max_rows)
# Where a frontend's dev server usually runs (Vite, its preview, Create React App / Next.js,
# Angular, Vue CLI / webpack): allowed by default outside production.
LOCAL_DEV_ORIGINS = tuple(
    f"http://{host}:{port}"
    for host in ("localhost", "127.0.0.1")
    for port in (5173, 4173, 3000, 4200, 8080)
)


class Environment(StrEnum):
    LOCAL = "local"
    TEST = "test"
    PRODUCTION = "production"


class StorageBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class ReportReadPreference(StrEnum):
    """Where report reads go (MongoDB read preference modes)."""

    PRIMARY = "primary"
    PRIMARY_PREFERRED = "primaryPreferred"
    SECONDARY = "secondary"
    SECONDARY_PREFERRED = "secondaryPreferred"
    NEAREST = "nearest"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    app_env: Environment = Environment.LOCAL
    app_name: str = "Report System"
    log_level: str = "INFO"
    log_format: str = Field(
        default="auto", description="json, console or auto (json outside local)"
    )
    public_base_url: str = "http://127.0.0.1:8000"

    mongodb_url: str = "mongodb://127.0.0.1:27017/?directConnection=true"
    mongodb_db: str = "report_system"
    mongodb_timeout_ms: int = 5000
    # Report reads only (the rows, counts and joins of a report, previews): jobs, schedules,
    # the outbox and everything written stay on the primary (docs/scaling.md).
    report_read_preference: ReportReadPreference = ReportReadPreference.PRIMARY
    report_max_staleness_seconds: int = Field(
        default=-1,
        ge=-1,
        description="a secondary further behind the primary is not read from; -1: no bound, "
        "else at least 90 (MongoDB's minimum); not with primary",
    )

    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_name: str = "reports:queue"
    scheduler_queue_name: str = "reports:scheduler"

    storage_backend: StorageBackend = StorageBackend.LOCAL
    local_storage_dir: Path = Path(".data/files")
    s3_bucket: str = "reports"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_part_size_mb: int = Field(default=8, ge=5, le=512)
    s3_create_bucket: bool = False
    presigned_url_ttl_seconds: int = Field(default=300, ge=30, le=3600)

    jwt_algorithm: str = Field(default="HS256", pattern="^(HS256|RS256)$")
    jwt_secret: str = DEFAULT_JWT_SECRET
    jwt_public_key: str | None = None
    jwt_private_key: str | None = Field(default=None, description="only for scripts/mint_token.py")
    jwt_issuer: str = "learning-platform"
    jwt_audience: str = "report-system"
    jwt_leeway_seconds: int = 30

    job_max_attempts: int = Field(default=3, ge=1, le=10)
    job_attempts_cap: int = Field(
        default=6,
        ge=1,
        le=30,
        description=(
            "the most attempts any job gets: an attempt given back after a stall (the worker "
            "still alive) never takes a job's budget past this"
        ),
    )
    job_lease_seconds: int = Field(default=60, ge=5)
    job_heartbeat_seconds: float = Field(default=5.0, gt=0)
    job_progress_seconds: float = Field(
        default=1.0,
        gt=0,
        description=(
            "How often a running job's progress is saved when it has moved (the lease is "
            "renewed every job_heartbeat_seconds)"
        ),
    )
    job_retry_backoff_seconds: float = Field(default=10.0, ge=0)
    job_dispatch_grace_seconds: int = Field(default=30, ge=1)
    max_active_jobs_per_user: int = Field(default=5, ge=1)
    worker_concurrency: int = Field(default=4, ge=1)
    worker_heartbeat_seconds: float = Field(default=5.0, gt=0)
    worker_poll_seconds: float = Field(
        default=1.0,
        gt=0,
        le=5,
        description=(
            "How often an idle worker looks for due jobs; new jobs wake it at once, so this only "
            "bounds how late a deferred retry (or a lost wake-up) is picked up"
        ),
    )
    render_processes: int = Field(default=2, ge=1)
    fetch_batch_size: int = Field(default=2000, ge=100)

    report_retention_days: int = Field(default=7, ge=1)
    # A PDF's most detail rows (past it: the first rows and a notice pointing to CSV / Excel);
    # the cap by default (50,000 rows: ~500 MB for the worker and its render processes).
    pdf_max_rows: int = Field(default=PDF_ROW_CAP, ge=1, le=PDF_ROW_CAP)
    # The most rows one render process lays out at a time, rounded down to whole pages.
    pdf_chunk_rows: int = Field(default=200, ge=50)
    # Detail-table chunks after page one's by the PDF's own table writer (rendering/pdf/direct/;
    # WeasyPrint still for a tree or text it cannot show); off: WeasyPrint for every chunk.
    pdf_direct_tables: bool = True
    xlsx_max_rows: int = Field(default=5_000_000, ge=1)
    csv_max_rows: int = Field(default=10_000_000, ge=1)
    json_max_rows: int = Field(default=10_000_000, ge=1)
    preview_budget_ms: int = Field(
        default=1500,
        ge=1,
        le=60_000,
        description=(
            "time a preview may spend reading (every database call carries what is left of "
            "it); past it the preview is refused with preview-too-large"
        ),
    )
    preview_max_depth: int = Field(
        default=10_000,
        ge=1,
        description="rows a preview pages into at most (deeper: run a job and read its rows)",
    )
    preview_rate_per_minute: int = Field(
        default=30, ge=1, description="previews one user may ask for per minute (all replicas)"
    )
    max_date_range_days: int = Field(default=3660, ge=1)
    max_filter_ids: int = Field(default=500, ge=1)
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024)
    learning_events_batch_max: int = Field(default=500, ge=1)

    schedule_max_consecutive_failures: int = Field(default=3, ge=1)

    # Delivery (app/reports/deliveries): e-mail over SMTP and signed webhooks, from an outbox.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_tls: bool = Field(default=False, description="implicit TLS from the first byte (465)")
    smtp_starttls: bool = Field(default=False, description="upgrade with STARTTLS (587)")
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    mail_from: str = "Report System <reports@example.com>"
    delivery_attachment_max_mb: float = Field(default=10.0, ge=0)
    delivery_link_ttl_days: int = Field(default=7, ge=1)
    delivery_link_secret: str | None = Field(
        default=None, description="HMAC key of delivery links; JWT_SECRET when empty"
    )
    delivery_max_recipients: int = Field(default=50, ge=1)
    # Audience department-managers: the managers a run sends to, its distinct scopes (runs).
    burst_max_recipients: int = Field(default=500, ge=1)
    burst_max_scopes: int = Field(default=100, ge=1)
    allowed_recipient_domains: str = Field(
        default="",
        description="comma-separated; empty: the domains of existing platform users",
    )
    webhook_allowed_networks: str = Field(
        default="",
        description=(
            "comma-separated IPs / CIDRs a webhook may reach although they are private, "
            "loopback or link-local (e.g. 127.0.0.1/32 for local development)"
        ),
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_secret_overlap_hours: int = Field(default=24, ge=0)
    delivery_max_attempts: int = Field(default=8, ge=1, le=30)
    delivery_backoff_seconds: float = Field(default=30.0, ge=0)
    delivery_backoff_max_seconds: float = Field(default=3600.0, ge=0)
    delivery_lease_seconds: int = Field(default=120, ge=5)
    delivery_attempt_deadline_seconds: float = Field(
        default=15.0,
        gt=0,
        le=300,
        description=(
            "the whole of one delivery attempt (connect, send, every read of the answer): a "
            "receiver that answers slowly is cut off here, whatever the per-read timeouts"
        ),
    )

    # Operations: audit trail, metrics, logs, live lookups, public links.
    audit_retention_days: int = Field(
        default=400, ge=1, description="audit events older than this are removed (TTL index)"
    )
    audit_probe_limit: int = Field(
        default=20,
        ge=1,
        description=(
            "denied probes (another user's object answered 404) recorded per caller per window; "
            "past it they are counted, not recorded"
        ),
    )
    audit_probe_window_seconds: int = Field(
        default=600, ge=10, le=86400, description="the window of AUDIT_PROBE_LIMIT"
    )
    trusted_proxies: str = Field(
        default="127.0.0.1",
        description=(
            "comma-separated IPs / CIDRs of reverse proxies whose X-Forwarded-For is believed "
            "for the client address (audit trail and access log; only IP addresses are taken)"
        ),
    )
    access_log: bool = True  # uvicorn's access log (JSON with the request id in production)
    worker_metrics_port: int = Field(
        default=9101, ge=0, le=65535, description="the worker's Prometheus port; 0 turns it off"
    )
    worker_metrics_host: str = "127.0.0.1"
    lookup_refresh_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="how stale a process's copy of the lookup table may become",
    )
    s3_public_endpoint_url: str | None = Field(
        default=None,
        description=(
            "the S3 endpoint as a browser reaches it, for presigned links "
            "(S3_ENDPOINT_URL when empty)"
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        parse_networks(value)  # a ValueError naming the bad entry
        return value

    # Browser frontends on other origins (CORS).
    cors_allow_origins: str | None = Field(
        default=None,
        description=(
            "comma-separated origins (`*` for any) a browser page may call the API from; "
            "unset: the usual local dev-server origins outside production, none in production"
        ),
    )

    # Crash safety (docs/reliability.md).
    redis_connect_timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    redis_socket_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="how long a queue call in a request waits for a hung Redis before giving up",
    )
    reaper_batch_size: int = Field(default=100, ge=1)  # jobs the reaper requeues per run at most
    temp_sweep_minutes: float = Field(default=10.0, gt=0)  # sweeps of dead workers' temp files
    max_request_header_bytes: int = Field(default=65_536, ge=4096)  # line + headers; else 431
    request_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "how long a request's own work may take before its first byte (a download keeps "
            "streaming after it); later: 503 service-busy with Retry-After, nothing stored"
        ),
    )

    # Storing files as they are produced (docs/architecture.md, storage).
    stale_upload_hours: float = Field(
        default=24.0,
        gt=0,
        description=(
            "unfinished uploads (S3 multipart uploads, local partial files) older than this are "
            "aborted by the worker's hourly sweep: what a killed worker left behind"
        ),
    )
    report_scratch_max_mb: int = Field(
        default=4096,
        ge=16,
        description=(
            "temporary disk space one Excel or PDF file may take while it is written before "
            "its upload (CSV goes to storage as it is written and takes none)"
        ),
    )

    @model_validator(mode="after")
    def _check_attempts(self) -> Settings:
        if self.job_attempts_cap < self.job_max_attempts:
            raise ValueError(
                f"JOB_ATTEMPTS_CAP ({self.job_attempts_cap}) must be at least "
                f"JOB_MAX_ATTEMPTS ({self.job_max_attempts})"
            )
        return self

    @model_validator(mode="after")
    def _check_report_reads(self) -> Settings:
        staleness = self.report_max_staleness_seconds
        if staleness == -1:
            return self
        if self.report_read_preference == ReportReadPreference.PRIMARY:
            raise ValueError(
                "REPORT_MAX_STALENESS_SECONDS needs a REPORT_READ_PREFERENCE other "
                "than primary (the primary is never stale)"
            )
        if staleness < 90:
            raise ValueError(
                f"REPORT_MAX_STALENESS_SECONDS ({staleness}) must be -1 or at "
                "least 90, MongoDB's smallest maxStalenessSeconds"
            )
        return self

    @model_validator(mode="after")
    def _check_delivery(self) -> Settings:
        if self.smtp_tls and self.smtp_starttls:
            raise ValueError("SMTP_TLS and SMTP_STARTTLS exclude each other: choose one")
        if (
            self.app_env == Environment.PRODUCTION
            and self.jwt_algorithm == "RS256"
            and self.jwt_public_key  # without one, _refuse_default_secrets names it
            and not self.delivery_link_secret
        ):
            # Delivery links fall back to JWT_SECRET, which RS256 deployments do not set.
            raise ValueError("DELIVERY_LINK_SECRET is required when JWT_ALGORITHM=RS256")
        least = self.delivery_attempt_deadline_seconds + DELIVERY_LEASE_MARGIN_SECONDS
        if self.delivery_lease_seconds < least:
            # An attempt outliving its lease is claimed again while it still runs: a copy.
            raise ValueError(
                f"DELIVERY_LEASE_SECONDS ({self.delivery_lease_seconds}) must be at least "
                f"DELIVERY_ATTEMPT_DEADLINE_SECONDS ({self.delivery_attempt_deadline_seconds:g}) "
                f"+ {DELIVERY_LEASE_MARGIN_SECONDS} s, so that no attempt outlives its lease"
            )
        return self

    @property
    def is_local(self) -> bool:
        return self.app_env in (Environment.LOCAL, Environment.TEST)

    @property
    def cors_origins(self) -> list[str]:
        if self.cors_allow_origins is None:
            return [] if self.app_env == Environment.PRODUCTION else list(LOCAL_DEV_ORIGINS)
        return [o.strip().rstrip("/") for o in self.cors_allow_origins.split(",") if o.strip()]

    @property
    def json_logs(self) -> bool:
        if self.log_format == "auto":
            return not self.is_local
        return self.log_format == "json"

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.app_env == Environment.PRODUCTION:
            if self.jwt_algorithm == "HS256" and (
                self.jwt_secret == DEFAULT_JWT_SECRET or len(self.jwt_secret) < 32
            ):
                raise ValueError(
                    "JWT_SECRET must be set to a secret of at least 32 characters "
                    "when APP_ENV=production (the local default is refused)"
                )
            if self.jwt_algorithm == "RS256" and not self.jwt_public_key:
                raise ValueError("JWT_PUBLIC_KEY is required when JWT_ALGORITHM=RS256")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()


def describe_config_error(exc: Exception) -> str:
    """One line naming each bad setting (by its environment variable) and why."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            parts.append(f"{loc}: {err['msg']}")
        return "; ".join(parts)
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
