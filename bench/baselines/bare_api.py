"""Baseline: a bare FastAPI app with one endpoint doing one `find_one` on report_jobs by id
(the same lookup a job status poll starts with), served by uvicorn like the product API.

    python -m bench.baselines.bare_api --port P
"""

from __future__ import annotations

import argparse
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from bson import ObjectId
from fastapi import FastAPI, HTTPException
from pymongo import AsyncMongoClient

from app.config import get_settings

settings = get_settings()
state: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_url, tz_aware=True)
    state["jobs"] = client[settings.mongodb_db]["report_jobs"]
    yield
    await client.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/jobs/{job_id}")
async def get_job(job_id: str) -> dict[str, Any]:
    doc = await state["jobs"].find_one({"_id": ObjectId(job_id)})
    if doc is None:
        raise HTTPException(404)
    return {"id": str(doc["_id"]), "status": doc.get("status")}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
