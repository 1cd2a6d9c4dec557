# syntax=docker/dockerfile:1.7
# One image: the API by default, the worker with `python -m worker` (metrics on 9101), the demo
# data with `python -m scripts.seed_demo`. The worker's health check (compose.yaml) asks its
# metrics endpoint with python: the slim image has no pgrep.

FROM python:3.11-slim-bookworm AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv
WORKDIR /srv
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY app ./app
COPY worker ./worker
COPY scripts ./scripts

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 reports
WORKDIR /srv
COPY --from=build /srv /srv
ENV PATH="/srv/.venv/bin:$PATH" PYTHONUNBUFFERED=1 APP_ENV=production LOCAL_STORAGE_DIR=/srv/files
RUN mkdir -p /srv/files && chown reports /srv/files
USER reports
EXPOSE 8000 9101
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
  CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
CMD ["python", "-m", "app", "--host", "0.0.0.0", "--port", "8000"]
