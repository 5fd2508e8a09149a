"""The Flask example under gunicorn with 4 workers: 200 uploads at concurrency 32 through
it, every job done, pcapd's process count never above pool + 1, one connection per worker."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import support

UPLOADS = 200
CONCURRENCY = 32
WORKERS = 4


def _post(port: int, body: bytes, ctype: str) -> dict:
    for attempt in range(3):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            conn.request("POST", "/submit/pcap", body=body, headers={"Content-Type": ctype})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 503 and attempt < 2:  # pcapd's queue full: retry, as a client would
                time.sleep(1)
                continue
            assert resp.status == 200, (resp.status, data[:500])
            return json.loads(data)
        finally:
            conn.close()
    raise AssertionError("unreachable")


def test_flask_under_gunicorn_200_uploads(daemon):
    support.need_module("flask")
    gunicorn = support.venv_tool("gunicorn")
    port = support.free_port()
    log_path = daemon.dir / "gunicorn.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [
            gunicorn, "-w", str(WORKERS), "--preload", "-b", f"127.0.0.1:{port}",
            "--backlog", "256", "--timeout", "120", "--log-level", "warning",
            "flask_upload:app",
        ],
        cwd=support.EXAMPLES,
        env={**os.environ, "PCAPD_CONFIG": str(daemon.config)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workers = []
    try:
        support.wait_port(port, 30, proc, "gunicorn")
        deadline = time.monotonic() + 20
        while len(support.children(proc.pid)) < WORKERS:
            assert time.monotonic() < deadline, "gunicorn did not start its workers"
            time.sleep(0.05)
        workers = support.children(proc.pid)
        bodies = []
        for i, sample in enumerate(support.samples()):
            bodies.append(support.multipart({"tag": f"gunicorn{i}"}, [("file[]", sample.name, sample.read_bytes())]))
        client = daemon.client()
        pool = client.pool()
        bound = len(pool.slots) + 1
        with support.ProcessSampler(daemon.pid, 0.01) as sampler:
            started = time.monotonic()
            with ThreadPoolExecutor(CONCURRENCY) as ex:
                answers = list(ex.map(lambda i: _post(port, *bodies[i % len(bodies)]), range(UPLOADS)))
            upload_time = time.monotonic() - started
            jobs = [client.wait(a["job_id"], 120) for a in answers]
        assert len({a["job_id"] for a in answers}) == UPLOADS
        assert all(a["success"] is True and a["state"] == "queued" for a in answers)
        states = [j.state for j in jobs]
        assert states == ["done"] * UPLOADS, {s: states.count(s) for s in set(states)}
        assert sampler.samples > 50
        assert sampler.max <= bound, (sampler.max, sampler.max_pids)
        per_worker = {pid: support.connections_to(pid, daemon.port) for pid in workers}
        master = support.connections_to(proc.pid, daemon.port)
        support.figure(
            f"gunicorn: {UPLOADS} uploads at concurrency {CONCURRENCY} in {upload_time:.1f} s; "
            f"pcapd processes max {sampler.max} (bound {bound}) over {sampler.samples} samples; "
            f"connections per worker {sorted(per_worker.values())}, master {master}"
        )
        assert sorted(per_worker.values()) == [1] * WORKERS, per_worker
        assert master <= 1  # the --preload ping, made before the fork
        assert client.pool().accepted == UPLOADS
    except BaseException:
        log.flush()
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        support.stop_pid(proc, also=workers)
        log.close()
