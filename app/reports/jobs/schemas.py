"""HTTP shapes of report jobs (stored documents never go over HTTP as they are)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from app.common.schemas import ApiInput, ApiModel
from app.error_codes import current_code
from app.errors import ErrorCodeValue
from app.i18n import LocaleCode, supported_locales
from app.lookups.codes import FormatCode, FormatValue, ReportTypeCode, ReportTypeValue
from app.reports.jobs.models import FileOptions, JobStatus, JobStep, ReportJob
from app.reports.types import REPORT_TYPES, AnyReportDefinition
from app.reports.types.bodies import document_bodies, variant_name


class FileOptionsIn(ApiInput):
    csv_bom: bool = Field(
        default=False,
        description="Start a CSV file with a UTF-8 byte-order mark (helps older Excel versions "
        "detect UTF-8)",
    )
    labels: bool = Field(
        default=False,
        description='CSV cells hold labels ("In progress") instead of codes (`in-progress`); '
        "PDF and Excel always print labels",
    )
    csv_delimiter: Literal[",", ";", "\t", "|"] | None = Field(
        default=None,
        description="The CSV field delimiter. Omitted: the locale's (`,` for en, `;` for de)",
    )
    csv_decimal: Literal[".", ","] | None = Field(
        default=None,
        description="The CSV decimal separator. Omitted: the locale's (`.` for en, `,` for de); "
        "it must differ from the delimiter",
    )
    charts: bool = Field(
        default=True,
        description="Draw the report type's charts (GET /api/v1/reports/metadata/report-types/"
        "{key} lists them): vector charts on the PDF's first page, native charts on an Excel "
        '"Charts" sheet, Vega-Lite specifications in the JSON Lines header and the preview. '
        "false: none",
    )


LOCALE_DESCRIPTION = (
    "The language of the file and of its e-mails, and how it formats numbers and dates: one of "
    f"{', '.join(supported_locales())} (another is a 422 listing them). Omitted: the "
    "template's or schedule's, else your platform profile's, else en. The job stores the "
    "locale it resolved to"
)


COLUMNS_DESCRIPTION = (
    "The columns the file shows, by key, in the order it shows them (the report type's "
    "columns: GET /api/v1/reports/metadata/report-types/{key}). Omitted: every column in the "
    "type's order. An unknown or repeated key is a 422 naming `columns[i]`; a grouping type's "
    "group key columns are put first when left out"
)
ColumnKeys = list[Annotated[str, Field(min_length=1, max_length=64)]]


class NotifyIn(ApiInput):
    email: bool = Field(
        default=False, description="E-mail the result to your own address (from the platform)"
    )


class JobCreate(ApiInput):
    """Run a report: `reportType` + `format` + `parameters`, or `templateId` (with optional
    `format` / `parameters` overrides merged over the template's)."""

    template_id: str | None = Field(
        default=None,
        max_length=64,
        description="Run this saved template (your own data scope applies, not its author's)",
    )
    report_type: ReportTypeCode | None = Field(
        default=None, description="A report-type code, e.g. `learner-progress`"
    )
    format: FormatCode | None = Field(default=None, description="csv, xlsx or pdf")
    parameters: dict[str, Any] | None = Field(
        default=None,
        description="Parameters of the report type (see GET /api/v1/reports/metadata/report-types/{key})",
    )
    columns: ColumnKeys | None = Field(
        default=None, max_length=100, description=COLUMNS_DESCRIPTION
    )
    options: FileOptionsIn = Field(default_factory=FileOptionsIn, description="File options")
    locale: LocaleCode | None = Field(default=None, description=LOCALE_DESCRIPTION)
    notify: NotifyIn | None = Field(
        default=None, description='Be told when the report is ready: `{"email": true}`'
    )
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="Call this endpoint (signed, Standard Webhooks) when the report is ready. "
        "It must be one of your endpoints (POST /api/v1/reports/webhooks returns its signing "
        "secret once); SSRF rules apply",
    )

    @model_validator(mode="after")
    def _one_source(self) -> JobCreate:
        if self.template_id:
            if self.report_type:
                raise ValueError("give either templateId or reportType, not both")
            return self
        missing = [
            n for n, v in (("reportType", self.report_type), ("format", self.format)) if not v
        ]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required (or give a templateId)")
        return self

    def file_options(self) -> FileOptions:
        """The file options a job of this body stores."""
        return FileOptions(
            csv_bom=self.options.csv_bom,
            labels=self.options.labels,
            csv_delimiter=self.options.csv_delimiter,
            csv_decimal=self.options.csv_decimal,
            charts=self.options.charts,
        )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "reportType": "learner-progress",
                    "format": "xlsx",
                    "parameters": {
                        "dateRange": {"preset": "last-30-days"},
                        "timezone": "Europe/Berlin",
                        "statuses": ["in-progress", "completed"],
                    },
                },
                {
                    "reportType": "course-completion",
                    "format": "csv",
                    "parameters": {"dateRange": {"preset": "this-quarter"}, "mandatoryOnly": True},
                    "options": {"csvBom": True},
                },
                {
                    "reportType": "course-completion",
                    "format": "pdf",
                    "parameters": {"dateRange": {"preset": "this-quarter"}},
                    "columns": ["courseTitle", "completionRate", "enrolled"],
                },
                {"templateId": "6650f1c2a1b2c3d4e5f60718", "format": "pdf"},
                {
                    "reportType": "learner-progress",
                    "format": "csv",
                    "parameters": {"dateRange": {"preset": "last-7-days"}},
                    "notify": {"email": True},
                    "webhookUrl": "https://hooks.example.com/reports",
                },
            ]
        }
    }


TEMPLATE_JOB = "TemplateJobCreate"


def job_variant_name(definition: AnyReportDefinition) -> str:
    """`learner-progress` → `LearnerProgressJobCreate`."""
    return variant_name(definition, "JobCreate")


def document_job_bodies(openapi: dict[str, Any]) -> None:
    """Declares the body of POST /jobs as one schema per registered report type (its
    `reportType`, the formats it offers and its own parameters schema) or a template run, so
    clients and the docs see each type's fields. What the API accepts is still `JobCreate`,
    whose `parameters` each report type checks (naming `parameters.<field>` in its 422s); this
    only describes it more closely."""
    document_bodies(
        openapi,
        REPORT_TYPES,
        "JobCreate",
        what=lambda definition: f"Run the {definition.name} report.",
        template_variant=TEMPLATE_JOB,
        template_description="Run a saved template, optionally with another format or "
        "parameters merged over its own.",
    )


class RequesterOut(ApiModel):
    user_id: str
    name: str


class ProgressOut(ApiModel):
    step: JobStep
    percent: float
    rows_processed: int
    rows_total: int | None = None


class ErrorOut(ApiModel):
    code: ErrorCodeValue = Field(
        description="Why the job failed (GET /api/v1/reports/metadata/error-codes)"
    )
    message: str


class ResultOut(ApiModel):
    file_name: str
    content_type: str
    size_bytes: int
    row_count: int
    checksum_sha256: str
    truncated: bool = Field(description="True when a PDF holds only the first rows (see totalRows)")
    total_rows: int | None = None
    download_url: str


class JobOut(ApiModel):
    id: str
    report_type: ReportTypeValue
    format: FormatValue
    status: JobStatus
    parameters: dict[str, Any]
    options: dict[str, Any] = Field(default_factory=dict)
    locale: str = Field(description="The locale the file is made in (resolved when created)")
    resolved_parameters: dict[str, Any] | None = None
    columns: list[str] | None = Field(
        default=None,
        description="The columns the file shows, in its order, as resolved when the job was "
        "created (the choice with any group key columns put first; every column when none was "
        "chosen); null for jobs made before columns could be chosen",
    )
    scope: dict[str, Any] | None = Field(
        default=None, description="The data scope the report ran with"
    )
    requested_by: RequesterOut
    template_id: str | None = None
    template_version: int | None = Field(
        default=None, description="The version of the template the job ran (with templateId)"
    )
    schedule_id: str | None = None
    test: bool = Field(
        default=False,
        description="A schedule's test send: delivered to whoever asked for it only, not a run",
    )
    scheduled_for: datetime | None = None
    retry_of_job_id: str | None = None
    progress: ProgressOut
    attempt: int
    max_attempts: int
    cancel_requested: bool
    error: ErrorOut | None = None
    result: ResultOut | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None

    @classmethod
    def from_document(cls, job: ReportJob) -> JobOut:
        job_id = str(job.id)
        result = None
        if job.result:
            result = ResultOut(
                file_name=job.result.file_name,
                content_type=job.result.content_type,
                size_bytes=job.result.size_bytes,
                row_count=job.result.row_count,
                checksum_sha256=job.result.checksum_sha256,
                truncated=job.result.truncated,
                total_rows=job.result.total_rows,
                download_url=f"/api/v1/reports/jobs/{job_id}/download",
            )
        return cls(
            id=job_id,
            report_type=job.report_type,
            format=job.format,
            status=job.status,
            parameters=job.parameters,
            options={
                "csvBom": job.options.csv_bom,
                **({"labels": True} if job.options.labels else {}),
                **(
                    {"csvDelimiter": job.options.csv_delimiter} if job.options.csv_delimiter else {}
                ),
                **({"csvDecimal": job.options.csv_decimal} if job.options.csv_decimal else {}),
            },
            locale=job.locale,
            resolved_parameters=job.resolved_parameters,
            columns=job.columns,
            scope=job.scope,
            requested_by=RequesterOut(user_id=job.requested_by.user_id, name=job.requested_by.name),
            template_id=str(job.template_id) if job.template_id else None,
            template_version=job.template_version if job.template_id else None,
            schedule_id=str(job.schedule_id) if job.schedule_id else None,
            test=job.test_run,
            scheduled_for=job.scheduled_for,
            retry_of_job_id=str(job.retry_of_job_id) if job.retry_of_job_id else None,
            progress=ProgressOut(
                step=job.progress.step,
                percent=round(job.progress.percent, 1),
                rows_processed=job.progress.rows_processed,
                rows_total=job.progress.rows_total,
            ),
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            cancel_requested=job.cancel_requested,
            error=ErrorOut(code=current_code(job.error.code), message=job.error.message)
            if job.error
            else None,
            result=result,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            expires_at=job.expires_at,
        )


class JobFilters(ApiModel):
    status: JobStatus | None = None
    report_type: str | None = None
    format: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    user_id: str | None = None
