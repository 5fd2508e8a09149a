"""The upload API of flask_upload.py with FastAPI and the asyncio client.

    POST /submit/pcap                 multipart ``file[]`` parts and ``tag`` → the job
    GET  /jobs/{job_id}?wait=SECONDS  the job record
    GET  /jobs/{job_id}/logs/{name}   the log, streamed

Run it (``pip install fastapi uvicorn python-multipart``):

    PCAPD_CONFIG=/etc/pcapd/pcapd.cfg uvicorn fastapi_upload:app --host 127.0.0.1 --port 8000

One AsyncClient per process lends a few persistent connections (``max_connections``) to
all concurrent requests.
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from typing import List, Optional

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse

from pcapd_client import (
    AsyncClient,
    BadRequest,
    NotFound,
    PcapdError,
    QueueFull,
    ShuttingDown,
    UploadTooLarge,
)

pcapd = AsyncClient(config=os.environ.get("PCAPD_CONFIG"), max_connections=4, call_timeout=600)


@asynccontextmanager
async def lifespan(_app: FastAPI):
    yield
    await pcapd.close()


app = FastAPI(title="pcapd upload API", lifespan=lifespan)


def _status(e: PcapdError) -> int:
    if isinstance(e, (QueueFull, ShuttingDown)):
        return 503
    if isinstance(e, UploadTooLarge):
        return 413
    if isinstance(e, NotFound):
        return 404
    if isinstance(e, BadRequest):
        return 400
    return 502


@app.exception_handler(PcapdError)
async def pcapd_error(_request, e: PcapdError) -> JSONResponse:
    headers = {"Retry-After": "5"} if isinstance(e, (QueueFull, ShuttingDown)) else None
    return JSONResponse(
        {"success": False, "error": e.code or type(e).__name__, "message": e.message},
        status_code=_status(e),
        headers=headers,
    )


@app.post("/submit/pcap")
async def submit_pcap(files: List[UploadFile] = File(..., alias="file[]"), tag: Optional[str] = Form(None)):
    # UploadFile.file is a spooled temporary file: read in chunks, in a worker thread.
    job = await pcapd.submit([(os.path.basename(f.filename or "capture.pcap"), f.file) for f in files], tag=tag)
    return job.to_dict()


@app.get("/jobs/{job_id}")
async def job_status(job_id: str, wait: float = 0):
    job = await pcapd.wait(job_id, timeout=min(wait, 300)) if wait > 0 else await pcapd.status(job_id)
    return job.to_dict()


@app.get("/jobs/{job_id}/logs/{name}")
async def job_log(job_id: str, name: str):
    chunks = pcapd.fetch(job_id, name).__aiter__()
    try:
        first = await chunks.__anext__()
    except StopAsyncIteration:
        first = b""

    async def body():
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), media_type="text/plain")
