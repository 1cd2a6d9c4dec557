"""Calls the API through a client openapi-python-client generated from openapi.json (the
package `client`, on sys.path), as a Python consumer would; prints what came back as JSON.

    python generated_client_call.py BASE_URL TOKEN

Run by tests/test_clients.py with the client tools' interpreter (.tools/openapi-python-client),
so neither the generator nor the generated code touches the service's virtualenv."""

from __future__ import annotations

import datetime
import json
import sys

from client import AuthenticatedClient
from client.api.report_jobs import jobs_create
from client.models import (
    DatePreset,
    DateRange,
    JobOut,
    LearnerProgressJobCreate,
    LearnerProgressJobCreateFormat,
    LearnerProgressParameters,
    Problem,
)


def describe(result: object) -> dict[str, object]:
    if isinstance(result, Problem):
        fields = [e.field for e in result.errors] if isinstance(result.errors, list) else []
        return {"model": "Problem", "status": result.status, "code": result.code, "fields": fields}
    if isinstance(result, JobOut):
        return {"model": "JobOut", "status": result.status.value, "reportType": result.report_type}
    return {"model": type(result).__name__}


def job(start: datetime.date, end: datetime.date) -> LearnerProgressJobCreate:
    return LearnerProgressJobCreate(
        report_type="learner-progress",
        format_=LearnerProgressJobCreateFormat.CSV,
        parameters=LearnerProgressParameters(
            date_range=DateRange(preset=DatePreset.CUSTOM, from_=start, to=end),
        ),
    )


def main() -> None:
    base_url, token = sys.argv[1], sys.argv[2]
    first, last = datetime.date(2026, 1, 1), datetime.date(2026, 6, 30)
    with AuthenticatedClient(base_url=base_url, token=token) as client:
        results = {
            "accepted": jobs_create.sync(client=client, body=job(first, last)),
            "invalid": jobs_create.sync(client=client, body=job(last, first)),
        }
    with AuthenticatedClient(base_url=base_url, token="not-a-token") as stranger:
        results["authentication-required"] = jobs_create.sync(
            client=stranger, body=job(first, last)
        )
    print(json.dumps({name: describe(result) for name, result in results.items()}))


if __name__ == "__main__":
    main()
