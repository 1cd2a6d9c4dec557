"""Realistic sample values for the contract's examples: one per response schema that a
generated example would say too little about (tests/test_contract_examples.py validates each
against its schema, so they follow the models)."""

from __future__ import annotations

from typing import Any

JOB_ID = "6650f1c2a1b2c3d4e5f60718"
TEMPLATE_ID = "6650f1c2a1b2c3d4e5f60720"
SCHEDULE_ID = "6650f1c2a1b2c3d4e5f60730"
DELIVERY_ID = "6650f1c2a1b2c3d4e5f60740"
WEBHOOK_ID = "6650f1c2a1b2c3d4e5f60750"
USER_ID = "64b7f0c2a1b2c3d4e5f60718"
DEPARTMENT_ID = "64b7f0c2a1b2c3d4e5f60001"
OTHER_DEPARTMENT_ID = "64b7f0c2a1b2c3d4e5f60002"
COURSE_ID = "64b7f0c2a1b2c3d4e5f60101"
REQUEST_ID = "4b1d0c9e8f7a4d2b9c3e5f6a7b8c9d0e"
CURSOR = "eyJjIjoiMjAyNi0wMy0wMlQwNzozMDowMFoiLCJpIjoiNjY1MGYxYzJhMWIyYzNkNGU1ZjYwNzE4In0"
PATH_VALUES = {
    "job_id": JOB_ID,
    "template_id": TEMPLATE_ID,
    "schedule_id": SCHEDULE_ID,
    "delivery_id": DELIVERY_ID,
    "endpoint_id": WEBHOOK_ID,
    "key": "learner-progress",
    "category": "enrollment-status",
    "code": "in-progress",
    "kind": "courses",
    "token": "dl_3q2-7wVfQ1m0c2Vd8s9aZk",
}

_PARAMETERS = {
    "dateRange": {"preset": "last-month"},
    "timezone": "Europe/Berlin",
    "statuses": ["in-progress", "completed"],
}
_OWNER = {"userId": USER_ID, "name": "Maria Keller"}
_COLUMNS = ["departmentName", "learnerName", "courseTitle", "status", "progressPercent"]

JOB = {
    "id": JOB_ID,
    "reportType": "learner-progress",
    "format": "xlsx",
    "locale": "en",
    "status": "completed",
    "parameters": _PARAMETERS,
    "columns": _COLUMNS,
    "options": {"csvBom": False},
    "resolvedParameters": {
        "reportType": "learner-progress",
        "timezone": "Europe/Berlin",
        "now": "2026-03-02T07:30:00Z",
        "dateRange": {
            "preset": "last-month",
            "from": "2026-02-01",
            "to": "2026-02-28",
            "start": "2026-01-31T23:00:00Z",
            "end": "2026-02-28T23:00:00Z",
        },
        "departmentIds": None,
        "courseIds": None,
        "statuses": ["in-progress", "completed"],
    },
    "scope": {
        "departmentIds": [DEPARTMENT_ID],
        "courseIds": None,
        "userId": None,
        "description": "departments managed by the caller, with their sub-departments",
    },
    "requestedBy": _OWNER,
    "templateId": None,
    "scheduleId": None,
    "scheduledFor": None,
    "retryOfJobId": None,
    "progress": {"step": "finish", "percent": 100.0, "rowsProcessed": 1842, "rowsTotal": 1842},
    "attempt": 1,
    "maxAttempts": 3,
    "cancelRequested": False,
    "error": None,
    "result": {
        "fileName": "learner-progress_2026-03-02_0730.xlsx",
        "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "sizeBytes": 184320,
        "rowCount": 1842,
        "checksumSha256": "9f2c4e1b7a3d5f60c8e2b1a4d7f9e3c5b6a8d0f2e4c6b8a1d3f5e7c9b0a2d4f6",
        "truncated": False,
        "totalRows": 1842,
        "downloadUrl": f"/api/v1/reports/jobs/{JOB_ID}/download",
    },
    "createdAt": "2026-03-02T07:30:00Z",
    "updatedAt": "2026-03-02T07:30:09Z",
    "startedAt": "2026-03-02T07:30:01Z",
    "finishedAt": "2026-03-02T07:30:09Z",
    "expiresAt": "2026-04-01T07:30:09Z",
}
QUEUED_JOB = {
    **JOB,
    "status": "queued",
    "resolvedParameters": JOB["resolvedParameters"],
    "progress": {"step": "queued", "percent": 0.0, "rowsProcessed": 0, "rowsTotal": None},
    "result": None,
    "updatedAt": "2026-03-02T07:30:00Z",
    "startedAt": None,
    "finishedAt": None,
    "expiresAt": None,
}
TEMPLATE = {
    "id": TEMPLATE_ID,
    "name": "Monthly progress, my teams",
    "description": "Sent to the team leads on the first working day",
    "reportType": "learner-progress",
    "format": "xlsx",
    "locale": None,
    "parameters": _PARAMETERS,
    "columns": _COLUMNS,
    "visibility": "department",
    "owner": _OWNER,
    "ownerDepartmentIds": [DEPARTMENT_ID],
    "version": 3,
    "latestVersion": 3,
    "archived": False,
    "canEdit": True,
    "createdAt": "2026-01-12T09:14:00Z",
    "updatedAt": "2026-02-20T16:02:00Z",
}
WEBHOOK = {
    "id": WEBHOOK_ID,
    "url": "https://hooks.example.com/reports",
    "description": "Data warehouse import",
    "createdAt": "2026-01-05T09:00:00Z",
    "disabled": False,
    "disabledReason": None,
    "secret": None,
}
SCHEDULE = {
    "id": SCHEDULE_ID,
    "name": "Weekly compliance, Monday 07:30",
    "description": None,
    "templateId": None,
    "reportType": "compliance-status",
    "format": "xlsx",
    "locale": None,
    "parameters": {"timezone": "Europe/Berlin"},
    "columns": None,
    "frequency": "weekly",
    "timeOfDay": "07:30",
    "dayOfWeek": 1,
    "dayOfMonth": None,
    "cronExpression": None,
    "timezone": "Europe/Berlin",
    "startDate": None,
    "endDate": None,
    "status": "active",
    "pausedReason": None,
    "pausedAt": None,
    "owner": _OWNER,
    "recipients": [USER_ID, "team@example.org"],
    "delivery": "both",
    "emptyResult": "notice",
    "audience": "owner",
    "webhooks": [WEBHOOK],
    "missedRunPolicy": "run-once",
    "nextRunAt": "2026-03-09T06:30:00Z",
    "nextRuns": [
        {"local": f"2026-03-{day:02d}T07:30:00+{offset}", "utc": f"2026-03-{day:02d}T{utc}Z"}
        for day, offset, utc in (
            (9, "01:00", "06:30:00"),
            (16, "01:00", "06:30:00"),
            (23, "01:00", "06:30:00"),
            (30, "02:00", "05:30:00"),
        )
    ]
    + [{"local": "2026-04-06T07:30:00+02:00", "utc": "2026-04-06T05:30:00Z"}],
    "lastRunAt": "2026-03-02T06:30:02Z",
    "lastJobId": JOB_ID,
    "lastScheduledFor": "2026-03-02T06:30:00Z",
    "consecutiveFailures": 0,
    "missedRuns": 0,
    "createdAt": "2026-01-05T10:00:00Z",
    "updatedAt": "2026-03-02T06:30:02Z",
    "error": None,
}
DELIVERY = {
    "id": DELIVERY_ID,
    "jobId": JOB_ID,
    "scheduleId": SCHEDULE_ID,
    "createdAt": "2026-03-02T06:30:40Z",
    "channel": "email",
    "kind": "report",
    "recipient": "team@example.org",
    "status": "sent",
    "attempts": 1,
    "maxAttempts": 8,
    "nextAttemptAt": None,
    "lastError": None,
    "sentAt": "2026-03-02T06:30:41Z",
    "failedAt": None,
    "httpStatus": None,
    "idempotencyId": f"delivery-{DELIVERY_ID}",
}

SAMPLES: dict[str, Any] = {
    "JobOut": JOB,
    "ScheduleRunOut": {**JOB, "scheduleId": SCHEDULE_ID, "deliveries": [DELIVERY]},
    "TemplateOut": TEMPLATE,
    "ScheduleOut": SCHEDULE,
    "WebhookOut": WEBHOOK,
    "DeliveryOut": DELIVERY,
    "AuditEventOut": {
        "id": "6650f1c2a1b2c3d4e5f60790",
        "at": "2026-03-02T07:31:12Z",
        "action": "job.downloaded",
        "outcome": "allowed",
        "reason": None,
        "actor": {
            "userId": USER_ID,
            "name": "Maria Keller",
            "role": "manager",
            "roles": ["manager"],
            "departmentIds": [DEPARTMENT_ID],
        },
        "objectType": "job",
        "objectId": JOB_ID,
        "scope": JOB["scope"],
        "parameters": None,
        "details": {"reportType": "learner-progress", "format": "xlsx"},
        "requestId": REQUEST_ID,
        "clientAddress": "203.0.113.24",
        "method": "GET",
        "path": f"/api/v1/reports/jobs/{JOB_ID}/download",
    },
    "LearningEventOut": {
        "id": "6650f1c2a1b2c3d4e5f607a0",
        "type": "quiz-submitted",
        "userId": USER_ID,
        "courseId": COURSE_ID,
        "departmentId": DEPARTMENT_ID,
        "enrollmentId": "6650f1c2a1b2c3d4e5f607b0",
        "occurredAt": "2026-03-02T09:12:44Z",
        "payload": {"score": 82, "maxScore": 100, "attempt": 1},
        "createdAt": "2026-03-02T09:12:45Z",
    },
    "BatchResult": {
        "accepted": 1,
        "rejected": 1,
        "results": [
            {"index": 0, "status": "accepted", "id": "6650f1c2a1b2c3d4e5f607a0"},
            {
                "index": 1,
                "status": "rejected",
                "code": "validation-failed",
                "reason": "events.1.courseId: unknown course 64b7f0c2a1b2c3d4e5f60999",
                "errors": [
                    {
                        "field": "events.1.courseId",
                        "message": "unknown course 64b7f0c2a1b2c3d4e5f60999",
                        "type": "unknown-course",
                        "code": "unknown-course",
                    }
                ],
            },
        ],
    },
    "ReportTypeSummary": {
        "key": "learner-progress",
        "name": "Learner progress",
        "description": "One row per enrollment: who is where in which course",
        "formats": ["csv", "xlsx", "pdf"],
        "defaultSort": ["departmentName", "learnerName", "courseTitle"],
    },
    "ColumnOut": {
        "key": "progressPercent",
        "label": "Progress %",
        "type": "percent",
        "description": "Share of the course's lessons completed (0-100)",
    },
    "FormatOut": {
        "code": "xlsx",
        "label": "Excel",
        "description": "Excel workbook",
        "contentType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "fileExtension": "xlsx",
        "maxRows": 1000000,
        "truncates": False,
    },
    "Limits": {
        "maxRowsPerFormat": {"csv": 5000000, "xlsx": 1000000, "pdf": 10000},
        "maxDateRangeDays": 1100,
        "maxFilterIds": 500,
    },
    "LookupCategoryOut": {
        "category": "enrollment-status",
        "label": "Enrollment status",
        "count": 5,
    },
    "LookupValueOut": {
        "code": "in-progress",
        "label": "In progress",
        "description": None,
        "sortOrder": 2,
        "isActive": True,
        "metadata": {},
    },
    "DatePresetOut": {
        "preset": "last-month",
        "label": "Last month",
        "from": "2026-02-01",
        "to": "2026-02-28",
        "start": "2026-01-31T23:00:00Z",
        "end": "2026-02-28T23:00:00Z",
        "timezone": "Europe/Berlin",
    },
    "DatePresetList": {
        "timezone": "Europe/Berlin",
        "now": "2026-03-02T07:30:00Z",
        "items": None,  # filled with DatePresetOut's sample
    },
    "FilterOption": {
        "id": COURSE_ID,
        "label": "Fire safety basics",
        "description": "FS-101",
    },
    "OptionOut": {"code": "link", "description": "a signed, expiring download link only"},
    "Health": {"status": "ok"},
    "Readiness": {
        "status": "ready",
        "checks": {"mongodb": "ok", "redis": "ok", "storage": "ok"},
        "workers": [
            {
                "workerId": "worker-7f3a",
                "host": "reports-worker-1",
                "pid": 4211,
                "queues": ["reports"],
                "lastSeenAt": "2026-03-02T07:29:55Z",
            }
        ],
    },
}
SAMPLES["DatePresetList"]["items"] = [SAMPLES["DatePresetOut"]]
