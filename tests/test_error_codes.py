"""One registry of error codes (app/error_codes.py): every code the service raises is in it and
named `<noun>-<problem>` in kebab-case, the contract's `Problem.code` enum, the
`/metadata/error-codes` list and docs/errors.md all come from it."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import httpx

import app.main  # noqa: F401 (imports every module, so every AppError subclass exists)
from app.error_codes import ERROR_CODES, current_code, is_kebab, problem_codes
from app.errors import AppError
from scripts.error_docs import render
from tests.helpers.tokens import TokenFactory

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = json.loads((ROOT / "openapi.json").read_text())


def _subclasses(cls: type[AppError]) -> Iterator[type[AppError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


ERROR_CLASSES: set[type[AppError]] = {AppError, *_subclasses(AppError)}
# Calls whose `code=` (or, for the last two, a positional argument) is an error code.
RAISING = {c.__name__ for c in ERROR_CLASSES} | {"problem_body", "problem_response"}
POSITIONAL = {"PermanentJobError": 0, "_rejected": 1}


def _name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _text(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def codes_in(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, code) of every error code written in a module: `code=` of an error or a problem
    body, `code = "..."` (class attributes and the executor's local), `status, code, title =`,
    `{"code": ...}` of a stored job error, the codes of PermanentJobError and of rejected batch
    items, and status → code tables."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _name(node)
            for keyword in node.keywords:
                if keyword.arg == "code" and name in RAISING and (text := _text(keyword.value)):
                    yield node.lineno, text
            position = POSITIONAL.get(name, len(node.args))
            if position < len(node.args) and (text := _text(node.args[position])):
                yield node.lineno, text
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "code" and _text(node.value):
                    yield node.lineno, str(_text(node.value))
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    names = [getattr(t, "id", None) for t in target.elts]
                    index = names.index("code") if "code" in names else None
                    if index is not None and (text := _text(node.value.elts[index])):
                        yield node.lineno, text
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if _text(key) == "code" and (text := _text(value)):
                    yield node.lineno, text  # a stored job error: {"code": ..., "message": ...}
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if keys and all(isinstance(k, int) and 400 <= k < 600 for k in keys):
                for value in node.values:
                    text = _text(value)
                    if text and " " not in text:  # not a description
                        yield node.lineno, text


def raised_codes() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for base in ("app", "worker"):
        for path in sorted((ROOT / base).rglob("*.py")):
            if path.name == "error_codes.py" or path.match("contract/samples.py"):
                continue  # the registry itself; sample bodies (their codes are data)
            for line, code in codes_in(ast.parse(path.read_text())):
                found.setdefault(code, []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def test_every_code_follows_the_naming_rule() -> None:
    for code, entry in ERROR_CODES.items():
        assert is_kebab(entry.noun) and is_kebab(entry.problem), code
        assert code == f"{entry.noun}-{entry.problem}"
        assert entry.title and entry.when.endswith("."), code
        assert entry.status is None or 400 <= entry.status < 600, code
    renamed = [old for entry in ERROR_CODES.values() for old in entry.formerly]
    assert len(renamed) == len(set(renamed)) and not set(renamed) & set(ERROR_CODES)
    assert current_code("report-expired") == "job-expired"
    assert current_code("job-expired") == "job-expired"


def test_every_code_raised_in_the_service_is_registered() -> None:
    found = raised_codes()
    assert len(found) > 40, sorted(found)  # the scan sees the codes
    unregistered = {code: where for code, where in found.items() if code not in ERROR_CODES}
    assert not unregistered, f"register these in app/error_codes.py: {unregistered}"
    unused = set(ERROR_CODES) - set(found)
    assert not unused, f"registered but never raised (remove them): {sorted(unused)}"
    for cls in ERROR_CLASSES:
        entry = ERROR_CODES[cls.code]
        assert entry.status == cls.status, (cls.__name__, cls.code)


def test_the_contract_enumerates_the_codes() -> None:
    schemas = CONTRACT["components"]["schemas"]
    assert schemas["Problem"]["properties"]["code"]["enum"] == problem_codes()
    job_error = schemas["ErrorOut"]["properties"]["code"]["enum"]
    assert job_error == list(ERROR_CODES)


def test_the_docs_list_the_codes() -> None:
    assert (ROOT / "docs" / "errors.md").read_text() == render(), (
        "docs/errors.md differs from the registry: run `make openapi`"
    )
    text = render()
    for code, entry in ERROR_CODES.items():
        assert f"| `{code}` |" in text
        for old in entry.formerly:
            assert f"| `{old}` | `{code}` |" in text


async def test_the_api_lists_the_codes(client: httpx.AsyncClient, auth: TokenFactory) -> None:
    response = await client.get("/api/v1/reports/metadata/error-codes", headers=auth("learner"))
    assert response.status_code == 200
    listed = {item["code"]: item for item in response.json()}
    assert list(listed) == list(ERROR_CODES)
    assert listed["job-not-found"]["status"] == 404
    assert listed["job-interrupted"]["status"] is None
    assert listed["scope-exceeded"]["formerly"] == ["out-of-scope"]
    # And an answer carries a listed code with its registered title.
    missing = await client.get(
        "/api/v1/reports/jobs/6650f1c2a1b2c3d4e5f60718", headers=auth("learner")
    )
    problem = missing.json()
    assert problem["code"] == "job-not-found" and problem["title"] == "Job not found"
    assert problem["type"].endswith("/job-not-found")
