"""A celery task that submits captures to pcapd and waits for the job, with a Redis broker.

Run a worker (4 prefork processes; each opens its own connection to pcapd on its first
task, and pcapd's process count stays pool + 1 however many workers run):

    export PCAPD_CONFIG=/etc/pcapd/pcapd.cfg CELERY_BROKER_URL=redis://127.0.0.1:6379/0
    celery -A celery_tasks worker --pool=prefork --concurrency=4

and queue work from anywhere that can import this module:

    from celery_tasks import analyze
    result = analyze.delay(["/data/capture.pcap"], tag="sensor1")
    print(result.get(timeout=900))   # {"job_id": …, "state": "done", "logs": [...], …}

The captures are read by the worker from its own file system and uploaded to pcapd (use
``pcapd.submit_paths`` instead when pcapd's ``spool_dir`` is shared). A full queue or a
draining daemon is retried with backoff: nothing was stored, so a retry is safe.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from celery import Celery

from pcapd_client import Client, QueueFull, ShuttingDown

broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
app = Celery("pcapd_tasks", broker=broker, backend=os.environ.get("CELERY_RESULT_BACKEND", broker))
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_acks_late=True,  # a worker killed mid-task gives the task back
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
)

# Made at import, in the parent; it dials lazily, so each prefork child gets a connection of
# its own (and would even if the parent had used it: the client re-opens after a fork).
pcapd = Client(config=os.environ.get("PCAPD_CONFIG"))


@app.task(
    bind=True,
    autoretry_for=(QueueFull, ShuttingDown),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=10,
)
def analyze(self, paths: List[str], tag: Optional[str] = None, timeout: float = 900) -> Dict[str, Any]:
    """Uploads ``paths`` as one job, waits up to ``timeout`` seconds, returns the record."""
    job = pcapd.submit(paths, tag=tag)
    job = pcapd.wait(job.job_id, timeout=timeout)
    return {
        "job_id": job.job_id,
        "state": job.state,
        "logs": [log.to_dict() for log in job.logs],
        "packets": job.packets,
        "error": job.error,
        "worker_pid": os.getpid(),
    }
