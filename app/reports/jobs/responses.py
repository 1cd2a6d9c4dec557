"""How every endpoint that submits a report request answers: 202 with the new job and its
Location, or 200 with `Idempotent-Replayed: true` when an Idempotency-Key replays an earlier
job (docs/decisions.md)."""

from __future__ import annotations

from fastapi import Response

from app.common.http import with_headers
from app.reports.jobs.requests import Submission
from app.reports.jobs.schemas import JobOut

JOBS_PREFIX = "/api/v1/reports/jobs"

# The OpenAPI entries of the answers: accepted (202 with Location) and, for endpoints that take
# an Idempotency-Key, the replay (200 with Location and Idempotent-Replayed).
ACCEPTED = with_headers({202: ["Location"]})
REPLAYED = with_headers(
    {200: ["Location", "Idempotent-Replayed"]},
    {
        200: {
            "model": JobOut,
            "description": "Replay of an earlier request with the same Idempotency-Key",
        }
    },
)


def job_location(job_id: object) -> str:
    return f"{JOBS_PREFIX}/{job_id}"


def accepted(response: Response, submission: Submission) -> JobOut:
    response.headers["Location"] = job_location(submission.job.id)
    if submission.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return JobOut.from_document(submission.job)
