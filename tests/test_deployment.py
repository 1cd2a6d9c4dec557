"""The Docker files' structure (the image cannot be built here): what a user of `docker compose
up` relies on — links a browser can follow, health checks the slim image can run, demo data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_presigned_links_use_the_published_minio_port() -> None:
    compose = _compose()
    services = compose["services"]
    assert "9000:9000" in services["minio"]["ports"]
    env = services["api"]["environment"]
    assert env["S3_ENDPOINT_URL"] == "http://minio:9000"
    assert env["S3_PUBLIC_ENDPOINT_URL"] == "${S3_PUBLIC_ENDPOINT_URL:-http://localhost:9000}"
    assert services["worker"]["environment"] == env  # one environment for both


def test_the_worker_health_check_needs_nothing_the_slim_image_lacks() -> None:
    worker = _compose()["services"]["worker"]
    test = worker["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    assert "pgrep" not in " ".join(test)
    assert "http://127.0.0.1:9101/metrics" in test[-1]
    env = worker["environment"]
    assert env["WORKER_METRICS_PORT"] == "9101" and env["WORKER_METRICS_HOST"] == "0.0.0.0"
    assert "9101:9101" in worker["ports"]


def test_a_seed_profile_loads_the_demo_data_once() -> None:
    seed = _compose()["services"]["seed"]
    assert seed["profiles"] == ["seed"]
    assert seed["command"][:3] == ["python", "-m", "scripts.seed_demo"]
    assert "--if-empty" in seed["command"]
    assert seed["depends_on"]["mongo"]["condition"] == "service_healthy"
    assert seed["image"] == _compose()["services"]["api"]["image"]


def test_the_dockerfile_builds_one_image_for_api_worker_and_seeding() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
    assert stages == ["python:3.11-slim-bookworm", "python:3.11-slim-bookworm"]
    assert "uv sync --frozen --no-dev" in text
    for copied in ("COPY app ./app", "COPY worker ./worker", "COPY scripts ./scripts"):
        assert copied in text
    assert "USER reports" in text and "EXPOSE 8000 9101" in text
    assert 'CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]' in text


def test_make_test_enforces_a_coverage_floor_and_leaves_shared_servers_alone() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text()
    floor = re.search(r'COVERAGE_FLOOR="\$\{COVERAGE_FLOOR:-(\d+)\}"', script)
    assert floor and int(floor.group(1)) >= 92
    assert '--cov-fail-under="$COVERAGE_FLOOR"' in script
    # The tests start their own servers: the script neither starts nor stops any.
    assert "servers.sh" not in script


def test_a_scale_profile_runs_a_three_member_replica_set_and_three_workers() -> None:
    services = _compose()["services"]
    members = [services[f"mongo-{n}"] for n in (1, 2, 3)]
    assert all(m["profiles"] == ["scale"] and "rs1" in m["command"] for m in members)
    assert len({m["volumes"][0] for m in members}) == 3  # each member its own data
    init = services["mongo-init"]
    script = init["command"][-1]
    assert "rs.initiate" in script and all(f"mongo-{n}:27017" in script for n in (1, 2, 3))
    assert all(
        init["depends_on"][f"mongo-{n}"]["condition"] == "service_healthy" for n in (1, 2, 3)
    )
    worker = services["worker-scale"]
    assert worker["profiles"] == ["scale"] and worker["deploy"]["replicas"] == 3
    assert "ports" not in worker  # three workers cannot publish one port
    env = worker["environment"]
    assert env == services["api-scale"]["environment"]
    assert env["MONGODB_URL"].endswith("/?replicaSet=rs1") and env["MONGODB_URL"].count(",") == 2
    assert env["REPORT_READ_PREFERENCE"] == "secondaryPreferred"
    assert env["REDIS_URL"] == services["api"]["environment"]["REDIS_URL"]
    assert worker["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
    assert "scale" not in services["worker"].get("profiles", [])  # the default stack unchanged
