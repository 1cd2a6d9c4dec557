"""The test session's settings, built as an object: the database and Redis are the session's
own servers (`tests.helpers.servers`); the environment is read for nothing else and never
changed.

Child processes (a worker, `python -m app`, a script) get their settings the only way a process
can: as their environment, built from a `Settings` object by `settings_env`."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

from app.config import Settings
from tests.helpers.servers import SESSION_SERVERS

SESSION_RUN = uuid.uuid4().hex[:10]
"""Names this session's database and queues, so concurrent runs never meet."""

SESSION_TMP = Path(tempfile.mkdtemp(prefix=f"reports-test-{SESSION_RUN}-"))


def _defaults() -> dict[str, Any]:
    return {
        name: field.get_default(call_default_factory=True)
        for name, field in Settings.model_fields.items()
    }


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_UNUSED_PORT = _unused_port()


def make_settings(**overrides: Any) -> Settings:
    """Settings with every field given explicitly (defaults, then the test session's values,
    then `overrides`), so no environment variable or `.env` file changes them."""
    values: dict[str, Any] = {
        **_defaults(),
        "app_env": "test",
        "mongodb_url": SESSION_SERVERS.mongodb_url,
        "redis_url": SESSION_SERVERS.redis_url,
        "mongodb_db": f"test_reports_{SESSION_RUN}",
        "queue_name": f"test:{SESSION_RUN}:reports",
        "scheduler_queue_name": f"test:{SESSION_RUN}:scheduler",
        "storage_backend": "local",
        "local_storage_dir": SESSION_TMP / "files",
        "log_level": os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        "job_retry_backoff_seconds": 0,
        "worker_metrics_port": 0,  # many workers per session: a test that scrapes one sets it
        # Nothing listens here: a worker that sends mail without a test's own SMTP server must
        # never reach the one `make run` keeps on 1025 (its sends fail and are retried).
        "smtp_port": _UNUSED_PORT,
        # Schedules in the tests send to these (platform users are on example.test).
        "allowed_recipient_domains": "example.org,example.com,example.test",
        **overrides,
    }
    return Settings(_env_file=None, **values)


SESSION_SETTINGS = make_settings()


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment for a child process running on `settings` (plus `extra` variables):
    the parent's variables minus any setting, then every setting that has a value."""
    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[name.upper()] = value if isinstance(value, str) else json.dumps(value)
    env.update(extra)
    return env
