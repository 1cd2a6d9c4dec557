"""docs/errors.md, written from the error-code registry (app/error_codes.py) by
`make openapi`; tests/test_error_codes.py fails when the committed file differs."""

from __future__ import annotations

from app.error_codes import ERROR_CODES

INTRO = """\
# Error codes

<!-- Generated from app/error_codes.py by `make openapi`; do not edit by hand. -->

Every error answer is `application/problem+json` (RFC 9457):

```json
{
  "type": "https://errors.report-system.dev/template-version-mismatch",
  "title": "Template changed",
  "status": 412,
  "code": "template-version-mismatch",
  "detail": "The template is at version 4, not 3: someone changed it since you read it. …",
  "instance": "/api/v1/reports/templates/6650f1c2a1b2c3d4e5f60718",
  "requestId": "4b1d0c9e8f7a4d2b9c3e5f6a7b8c9d0e",
  "currentVersion": 4
}
```

`code` is stable and names what the error is about, then what is wrong with it:
`<noun>-<problem>` in kebab-case (`job-not-found`, `scope-exceeded`). `title` is the same for
every answer with a code; `detail` says what happened this time. The same list is served by
`GET /api/v1/reports/metadata/error-codes`, and `Problem.code` in `openapi.json` is an enum of
the codes with a status, so a generated client can switch over them exhaustively.

A 422 (`validation-failed`) lists **every** problem found in `errors` — the shape of the body,
lookup codes, the rules between fields, date bounds, schedule rules and ids outside the
caller's data scope — each with its `field` (`body.parameters.dateRange.from`), a kebab-case
`code` (`missing`, `string-too-short`, `lookup-code`, `scope-exceeded`, …; `type` is the same
code as first published) and a `message` for people. On `POST /jobs`, `POST /preview`,
`POST`/`PATCH /schedules` and `POST`/`PATCH /templates` a body whose shape fails (a malformed
date, a wrong type, an unknown code or field) still gets the endpoint's own checks on the parts
that parsed, in the same 422: the shape errors first, then the others, each once. A part that
depends on a field with a shape error (the parameters on the report type, a schedule's timing
on its frequency) is judged once that field is right. A request whose only problem is its data
scope stays a 403 `scope-exceeded`; a refusal (a role that may not do it) comes once the input
is valid.

Codes without a status never answer a request: they are a failed job's `error.code` (which can
also be any code of a problem raised while the job ran) or a rejected learning event's `code`
in a batch answer.
"""


def _row(code: str) -> str:
    entry = ERROR_CODES[code]
    status = str(entry.status) if entry.status is not None else "—"
    return f"| `{code}` | {status} | {entry.title} | {entry.when} |"


def render() -> str:
    with_status = sorted(
        (c for c, e in ERROR_CODES.items() if e.status is not None),
        key=lambda c: (ERROR_CODES[c].status or 0, c),
    )
    without = sorted(c for c, e in ERROR_CODES.items() if e.status is None)
    lines = [INTRO, "## Problem codes", "", "| code | status | title | when |", "|---|---|---|---|"]
    lines += [_row(c) for c in with_status]
    lines += ["", "## Codes of failed jobs and rejected batch items", ""]
    lines += ["| code | status | title | when |", "|---|---|---|---|"]
    lines += [_row(c) for c in without]
    renamed = sorted((old, c) for c, e in ERROR_CODES.items() for old in e.formerly)
    lines += [
        "",
        "## Renamed codes",
        "",
        "When the naming rule was applied everywhere these codes got their current names. Jobs "
        "stored with an old code are shown with the new one.",
        "",
        "| was | now |",
        "|---|---|",
    ]
    lines += [f"| `{old}` | `{new}` |" for old, new in renamed]
    return "\n".join(lines) + "\n"
