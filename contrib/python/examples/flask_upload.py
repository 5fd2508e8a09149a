"""A Flask upload API in Brocapi's role, in front of one pcapd.

    POST /submit/pcap           multipart: one or more ``file[]`` parts, optional ``tag``
                                → Brocapi's answer (status, files, tag, job_id, success)
                                  plus pcapd's state and sha256
    GET  /jobs/<job_id>         the job record (``?wait=SECONDS`` waits for the end)
    GET  /jobs/<job_id>/logs/<name>   the log, streamed
    GET  /health                pcapd's ping

Run it under gunicorn with 4 workers (each worker process holds one connection to pcapd;
pcapd's process count stays pool + 1 however many workers there are):

    PCAPD_CONFIG=/etc/pcapd/pcapd.cfg gunicorn -w 4 --preload -b 127.0.0.1:8000 flask_upload:app
    curl -F 'file[]=@capture.pcap' -F tag=sensor1 http://127.0.0.1:8000/submit/pcap

``PCAPD_CONFIG`` is the daemon's own config file (host, port, password, certificate); or
set ``PCAPD_HOST``, ``PCAPD_PORT``, ``PCAPD_PASSWORD``, ``PCAPD_CA``. With ``--preload`` the
app is imported (and pcapd pinged) once in the gunicorn master; each worker then opens its
own connection on its first request.
"""

from __future__ import annotations

import os

from flask import Flask, Response, jsonify, request

from pcapd_client import (
    AuthError,
    BadRequest,
    Client,
    ConnectionError,
    NotFound,
    PcapdError,
    QueueFull,
    ShuttingDown,
    UploadTooLarge,
)

pcapd = Client(config=os.environ.get("PCAPD_CONFIG"), call_timeout=600)
pcapd.ping()  # fail at start, not on the first upload, when pcapd cannot be reached

app = Flask(__name__)


@app.errorhandler(PcapdError)
def pcapd_error(e: PcapdError):
    """pcapd's errors as HTTP statuses a caller can act on (Brocapi answered 500 to all)."""
    if isinstance(e, (QueueFull, ShuttingDown)):
        status = 503
    elif isinstance(e, UploadTooLarge):
        status = 413
    elif isinstance(e, NotFound):
        status = 404
    elif isinstance(e, BadRequest):
        status = 400
    elif isinstance(e, (ConnectionError, AuthError)):
        status = 502  # our side's problem with pcapd, not the caller's
    else:
        status = 500
    response = jsonify({"success": False, "error": e.code or type(e).__name__, "message": e.message})
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response


@app.post("/submit/pcap")
def submit_pcap():
    uploads = request.files.getlist("file[]")
    if not uploads:
        return jsonify({"success": False, "error": "bad_request", "message": "no file[] part"}), 400
    tag = request.form.get("tag") or None
    # Each part is a seekable stream (memory or a temporary file): the client reads it in
    # chunks while sending, never whole.
    files = [(os.path.basename(u.filename or "capture.pcap"), u.stream) for u in uploads]
    job = pcapd.submit(files, tag=tag)
    return jsonify(job.to_dict())


@app.get("/jobs/<job_id>")
def job_status(job_id: str):
    wait = request.args.get("wait", type=float)
    job = pcapd.wait(job_id, timeout=min(wait, 300)) if wait else pcapd.status(job_id)
    return jsonify(job.to_dict())


@app.get("/jobs/<job_id>/logs/<name>")
def job_log(job_id: str, name: str):
    chunks = pcapd.fetch(job_id, name)
    first = next(chunks, b"")  # errors (404) surface here, before the response starts

    def body():
        yield first
        yield from chunks

    return Response(body(), mimetype="text/plain")


@app.get("/health")
def health():
    return jsonify(pcapd.ping())


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
