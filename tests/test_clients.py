"""Clients generated from the committed openapi.json are typed end to end: a TypeScript
program using openapi-fetch typechecks with `tsc --strict` (error bodies are `Problem`s, each
report type's parameters are known), and an openapi-python-client client returns the `Problem`
model for an error from a running API.

The generators live in .tools (scripts/install.sh puts them there), never in the service's
dependencies."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.error_codes import problem_codes
from app.runtime.resources import Resources
from tests.helpers.api_server import running_api
from tests.helpers.tokens import TokenFactory

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "openapi.json"
CLIENTS = Path(__file__).resolve().parent / "clients"
NODE_TOOLS = ROOT / ".tools" / "node" / "node_modules"
PYTHON_TOOLS = ROOT / ".tools" / "openapi-python-client" / "bin"


def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run scripts/install.sh (make install)")
    return str(path)


def run(argv: list[str], cwd: Path, timeout: float = 180) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv[:2])} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def typecheck(program: Path) -> subprocess.CompletedProcess[str]:
    """`tsc --strict` on `program` (no output files), as a frontend's build would run it."""
    tsc = [tool(NODE_TOOLS / ".bin" / "tsc"), "--strict", "--noEmit", "--pretty", "false"]
    options = ["--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext"]
    return subprocess.run(
        [*tsc, *options, program.name],
        cwd=program.parent,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_typescript_client_typechecks_strictly(tmp_path: Path) -> None:
    run(
        [tool(NODE_TOOLS / ".bin" / "openapi-typescript"), str(CONTRACT), "-o", "api.d.ts"],
        tmp_path,
    )
    shutil.copy(CLIENTS / "typed_client.ts", tmp_path)
    (tmp_path / "node_modules").symlink_to(NODE_TOOLS)
    types = (tmp_path / "api.d.ts").read_text()
    assert '"application/problem+json": components["schemas"]["Problem"]' in types
    assert "HTTPValidationError" not in types
    typechecked = typecheck(tmp_path / "typed_client.ts")
    assert typechecked.returncode == 0 and "error" not in typechecked.stdout, typechecked.stdout

    # The check has teeth: a report type's parameters are typed, so a wrong one is an error.
    program = (CLIENTS / "typed_client.ts").read_text()
    wrong = program.replace('"in-progress"', '"half-done"')
    (tmp_path / "typed_client.ts").write_text(wrong)
    refused = typecheck(tmp_path / "typed_client.ts")
    assert refused.returncode != 0 and '"half-done"' in refused.stdout, refused.stdout


@pytest.mark.parametrize(
    ("case", "never_again"),
    [
        ('    case "expired":\n      return { label: "Expired", busy: false };\n', '"expired"'),
        ('    case "webhook-in-use":\n', '"webhook-in-use"'),
        ('    case "job-not-ready":\n', '"job-not-ready"'),
    ],
)
def test_the_switches_over_job_status_and_problem_code_are_exhaustive(
    tmp_path: Path, case: str, never_again: str
) -> None:
    """typed_client.ts handles every job status and every problem code (the build above
    passes); leaving one out is a `never` error naming it, as in a frontend's build."""
    run(
        [tool(NODE_TOOLS / ".bin" / "openapi-typescript"), str(CONTRACT), "-o", "api.d.ts"],
        tmp_path,
    )
    (tmp_path / "node_modules").symlink_to(NODE_TOOLS)
    program = (CLIENTS / "typed_client.ts").read_text()
    assert case in program
    (tmp_path / "typed_client.ts").write_text(program.replace(case, "", 1))
    refused = typecheck(tmp_path / "typed_client.ts")
    assert refused.returncode != 0, refused.stdout
    assert "not assignable to type 'never'" in refused.stdout and never_again in refused.stdout


def test_the_problem_code_switch_lists_the_registry() -> None:
    """The switch's cases are the contract's problem codes (so adding a code means handling
    it, and a code that no longer exists is an error too)."""
    program = (CLIENTS / "typed_client.ts").read_text()
    switch = program[program.index("export function reactTo") :]
    cases = re.findall(r'case "([a-z0-9-]+)":', switch[: switch.index("default:")])
    assert sorted(cases) == sorted(problem_codes())


async def test_a_generated_python_client_returns_problems(
    tmp_path: Path, settings: Settings, resources: Resources, auth: TokenFactory
) -> None:
    (tmp_path / "generator.yaml").write_text("post_hooks: []\n")  # no formatter needed
    generate = [tool(PYTHON_TOOLS / "openapi-python-client"), "generate", "--path", str(CONTRACT)]
    options = ["--meta", "none", "--output-path", "client", "--config", "generator.yaml"]
    output = run([*generate, *options], tmp_path)
    assert "Warning" not in output, output
    shutil.copy(CLIENTS / "generated_client_call.py", tmp_path)
    token = auth("admin")["Authorization"].removeprefix("Bearer ")
    with running_api(settings) as url:
        printed = run(
            [tool(PYTHON_TOOLS / "python"), "generated_client_call.py", url, token], tmp_path
        )
    results: dict[str, Any] = json.loads(printed)
    assert results["accepted"] == {
        "model": "JobOut",
        "status": "queued",
        "reportType": "learner-progress",
    }
    invalid = results["invalid"]
    assert invalid["model"] == "Problem" and invalid["status"] == 422
    assert invalid["code"] == "validation-failed"
    assert invalid["fields"] and all(
        f.startswith("parameters.dateRange") for f in invalid["fields"]
    )
    assert results["authentication-required"] == {
        "model": "Problem",
        "status": 401,
        "code": "authentication-required",
        "fields": [],
    }
