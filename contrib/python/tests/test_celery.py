"""The celery example: 4 prefork worker processes, a Redis broker, 100 tasks that submit and
wait; all done, pcapd's process count never above pool + 1."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import support

TASKS = 100
CONCURRENCY = 4


@pytest.fixture
def redis_url(tmp_path: Path):
    server = Path("/usr/bin/redis-server")
    if not server.exists():
        support.missing("redis-server (Debian's redis-server)")
    port = support.free_port()
    proc = subprocess.Popen(
        [str(server), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path), "--daemonize", "no", "--loglevel", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        support.wait_port(port, 20, proc, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        support.stop_pid(proc)


def test_celery_prefork_100_tasks(daemon, redis_url, monkeypatch):
    support.need_module("celery")
    support.need_module("redis")
    celery_bin = support.venv_tool("celery")
    env = {**os.environ, "PCAPD_CONFIG": str(daemon.config), "CELERY_BROKER_URL": redis_url}
    for key in ("PCAPD_CONFIG", "CELERY_BROKER_URL"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.syspath_prepend(str(support.EXAMPLES))
    sys.modules.pop("celery_tasks", None)
    tasks = importlib.import_module("celery_tasks")

    log_path = daemon.dir / "celery.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [celery_bin, "-A", "celery_tasks", "worker", "--pool=prefork", f"--concurrency={CONCURRENCY}",
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=support.EXAMPLES,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    workers = []
    try:
        client = daemon.client()
        bound = len(client.pool().slots) + 1
        paths = [str(p) for p in support.samples()]
        with support.ProcessSampler(daemon.pid, 0.01) as sampler:
            started = time.monotonic()
            results = [tasks.analyze.delay([paths[i % len(paths)]], tag=f"celery{i}") for i in range(TASKS)]
            deadline = time.monotonic() + 180
            answers = []
            for r in results:
                answers.append(r.get(timeout=max(1, deadline - time.monotonic())))
            elapsed = time.monotonic() - started
        workers = support.children(proc.pid)
        states = [a["state"] for a in answers]
        assert states == ["done"] * TASKS, {s: states.count(s) for s in set(states)}
        assert len({a["job_id"] for a in answers}) == TASKS
        task_pids = {a["worker_pid"] for a in answers}
        assert task_pids <= set(workers) and len(workers) == CONCURRENCY, (task_pids, workers)
        assert sampler.max <= bound, (sampler.max, sampler.max_pids)
        per_worker = {pid: support.connections_to(pid, daemon.port) for pid in workers}
        support.figure(
            f"celery: {TASKS} tasks on {CONCURRENCY} prefork processes in {elapsed:.1f} s; "
            f"pcapd processes max {sampler.max} (bound {bound}) over {sampler.samples} samples; "
            f"connections per worker process {sorted(per_worker.values())}"
        )
        # Each process that ran tasks holds one connection; none holds more.
        assert all(per_worker[pid] == 1 for pid in task_pids), per_worker
        assert all(n <= 1 for n in per_worker.values()), per_worker
        assert support.connections_to(proc.pid, daemon.port) == 0  # the parent never dialled
        assert client.pool().accepted == TASKS
    except BaseException:
        log.flush()
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        workers = workers or support.children(proc.pid)
        support.stop_pid(proc, timeout=30, also=workers)
        log.close()
