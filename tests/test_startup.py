"""Bad configuration stops start-up with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.settings import SESSION_SETTINGS, settings_env

ROOT = Path(__file__).resolve().parents[1]


def _start(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = settings_env(SESSION_SETTINGS, **{"APP_ENV": "local", **env})
    return subprocess.run(
        [sys.executable, "-m", module, "--help" if module == "never" else "--port=18999"]
        if module == "app"
        else [sys.executable, "-m", module],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND"),
        ({"APP_ENV": "production"}, "JWT_SECRET"),
        (
            {
                "MONGODB_URL": "mongodb://127.0.0.1:1/?directConnection=true",
                "MONGODB_TIMEOUT_MS": "500",
            },
            "MongoDB at mongodb://127.0.0.1:1",
        ),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "Redis at redis://127.0.0.1:1/0"),
    ],
)
@pytest.mark.parametrize("module", ["app", "worker"])
def test_bad_configuration_stops_with_one_clear_line(
    module: str, env: dict[str, str], expected: str
) -> None:
    result = _start(module, **env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
