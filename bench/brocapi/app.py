"""Brocapi-style upload API for bench/brocapi.sh, written from Brocapi's README.

One route, `POST /submit/pcap`: one or more captures as multipart `file[]` and an optional
`tag`. The captures are saved under a new job directory named by a uuid4
(`JOBS_DIR/<job id>/pcaps/<uuid4>.pcap`, beside `logs/bro` and `logs/syslog`), an RQ job
`brocapi_worker.process_job(job_id, tag)` is enqueued, and the answer is Brocapi's body:
`{"status": "job queued", "files": [...], "tag": ..., "job_id": ..., "success": true}`.

Run under gunicorn (the bench uses 4 sync workers, as Brocapi's service file); configured by
environment: BROCAPI_JOBS_DIR, BROCAPI_REDIS_URL, BROCAPI_QUEUE, BROCAPI_JOB_TIMEOUT.
"""

import json
import os
import uuid

from flask import Flask, Response, request
from redis import Redis
from rq import Queue

JOBS_DIR = os.environ["BROCAPI_JOBS_DIR"]
REDIS_URL = os.environ.get("BROCAPI_REDIS_URL", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("BROCAPI_QUEUE", "brocapi")
JOB_TIMEOUT = int(os.environ.get("BROCAPI_JOB_TIMEOUT", "600"))

app = Flask(__name__)
queue = Queue(QUEUE, connection=Redis.from_url(REDIS_URL))


def answer(body, status=200):
    # json.dumps keeps the key order and spacing of Brocapi's answers.
    return Response(json.dumps(body), status=status, mimetype="application/json")


@app.route("/submit/pcap", methods=["POST"])
def submit_pcap():
    uploads = [f for f in request.files.getlist("file[]") if f.filename]
    if not uploads:
        return answer({"status": "no files submitted", "success": False}, 400)
    tag = request.form.get("tag")
    job_id = str(uuid.uuid4())
    job_dir = os.path.join(JOBS_DIR, job_id)
    pcap_dir = os.path.join(job_dir, "pcaps")
    os.makedirs(pcap_dir)
    os.makedirs(os.path.join(job_dir, "logs", "bro"))
    os.makedirs(os.path.join(job_dir, "logs", "syslog"))
    names = []
    for upload in uploads:
        # A new name per capture, so two uploads called the same do not overwrite each other.
        upload.save(os.path.join(pcap_dir, f"{uuid.uuid4()}.pcap"))
        names.append(upload.filename)
    queue.enqueue(
        "brocapi_worker.process_job", job_id, tag, job_id=job_id, job_timeout=JOB_TIMEOUT
    )
    return answer(
        {"status": "job queued", "files": names, "tag": tag, "job_id": job_id, "success": True}
    )
