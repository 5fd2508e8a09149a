"""The sync client against the real daemon: jobs, logs, errors."""

from __future__ import annotations

import io
import socket
import threading
import time

import pytest

import pcapd_client as pc
from support import samples


def test_submit_wait_fetch_every_log_of_every_sample(daemon, tmp_path):
    client = daemon.client()
    jobs = {path.name: client.submit([path], tag="samples") for path in samples()}
    for name, job in jobs.items():
        assert job.state == "queued" and job.tag == "samples"
        assert job.files[0]["name"] == name and len(job.files[0]["sha256"]) == 64
        assert job.raw["success"] is True and job.raw["status"]  # Brocapi's fields kept
    fetched = 0
    for name, submitted in jobs.items():
        job = client.wait(submitted.job_id, timeout=60)
        assert job.state == "done", (name, job.error)
        assert job.terminal and job.done and job.finished_at
        logs = client.logs(job.job_id)
        assert [log.name for log in logs] == job.log_names() and logs, name
        for log in logs:
            on_disk = (daemon.state_dir / "jobs" / job.job_id / "logs" / log.name).read_bytes()
            data = b"".join(client.fetch(job.job_id, log.name))
            assert data == on_disk and len(data) == log.bytes, (name, log.name)
            assert data.count(b"\n") >= log.lines > 0
            # Small chunks: the iterator walks the offsets.
            assert b"".join(client.fetch(job.job_id, log.name, length=999)) == data
            saved = tmp_path / f"{job.job_id}-{log.name}"
            assert client.save(job.job_id, log.name, saved) == len(data)
            assert saved.read_bytes() == data
            fetched += 1
    assert fetched >= len(jobs) * 2
    # One connection did all of it.
    assert client.dials == 1


def test_all_samples_as_one_job_and_file_objects(daemon):
    client = daemon.client()
    paths = samples()
    seen = []
    with open(paths[0], "rb") as f:
        job = client.submit(
            [f, ("second.pcap", io.BytesIO(paths[1].read_bytes())), ("third.pcap", paths[2])],
            tag="objects",
            options={"ignore_checksums": True},
            progress=lambda sent, total: seen.append((sent, total)),
        )
    total = sum(p.stat().st_size for p in paths[:3])
    assert seen and seen[-1] == (total, total)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    assert [f["name"] for f in job.files] == [paths[0].name, "second.pcap", "third.pcap"]
    job = client.wait(job.job_id, 60)
    assert job.state == "done" and job.options == {"ignore_checksums": True}
    assert [f["size"] for f in job.files] == [p.stat().st_size for p in paths[:3]]
    # A stream that cannot seek needs its size.
    class Pipe(io.RawIOBase):
        def readable(self):
            return True

    with pytest.raises(pc.BadRequest, match="size"):
        client.submit([("x.pcap", Pipe())])


def test_functions_and_bui_monitor_functions(daemon):
    client = daemon.client()
    ping = client.ping()
    assert ping["version"] == "0.1.0" and ping["backend"] == "builtin"
    assert client.monitor_version() == "0.1.0"
    assert client.client_version() is None  # KO without backend = burp
    assert client.server_version() is None
    assert client.batch_list_supported() is False
    stats = client.statistics()
    assert stats["alive"] is True and stats["pcapd"]["version"] == "0.1.0"
    with pytest.raises(pc.Unsupported) as e:
        client.query("c:")
    assert e.value.code == "unsupported"
    pool = client.pool()
    assert len(pool.slots) == 2 and len(pool.pids) == 2 and not pool.degraded
    job = client.submit(samples()[0], tag="listed")
    client.wait(job.job_id, 60)
    listed = client.list(tag="listed")
    assert [j.job_id for j in listed] == [job.job_id]
    assert client.list(state="done", limit=1)[0].state == "done"
    assert client.call("status", {"job_id": job.job_id})["job_id"] == job.job_id
    assert client.cancel(job.job_id).state == "done"  # terminal: unchanged
    assert client.pool().accepted == 1
    assert client.dials == 1  # the KO answers above kept the connection


def test_wrong_password_is_auth_error(daemon):
    bad = daemon.client(password="not-the-password")
    with pytest.raises(pc.AuthError) as e:
        bad.ping()
    assert isinstance(e.value, pc.PcapdError) and "wrong password" in str(e.value)
    # A version function's KO is not "no result" on an unproven connection.
    with pytest.raises(pc.AuthError):
        bad.client_version()
    with pytest.raises(pc.AuthError):
        bad.submit(samples()[0])
    assert daemon.client().list() == []


def test_unknown_job_and_log_and_bad_requests(daemon):
    client = daemon.client()
    ghost = "3f0c9a51-0000-4000-8000-000000000000"
    for call in (client.status, client.wait, client.logs, client.cancel):
        with pytest.raises(pc.JobNotFound) as e:
            call(ghost)
        assert e.value.code == "not_found" and ghost in e.value.message
    with pytest.raises(pc.JobNotFound):
        next(client.fetch(ghost, "conn.log"))
    job = client.wait(client.submit(samples()[0]).job_id, 60)
    with pytest.raises(pc.LogNotFound) as e:
        next(client.fetch(job.job_id, "nosuch.log"))
    assert e.value.code == "not_found" and isinstance(e.value, pc.NotFound)
    with pytest.raises(pc.BadRequest) as e:
        client.status("not-a-job-id")
    assert e.value.code == "bad_request"
    with pytest.raises(pc.BadRequest) as e:
        client.submit(samples()[0], tag="has spaces")
    # protocol.md says bad_tag; the daemon's router answers bad_request (reported): either
    # is a BadRequest to the caller.
    assert e.value.code in ("bad_tag", "bad_request") and "tag" in e.value.message
    with pytest.raises(pc.BadRequest) as e:
        client.call("no_such_function")
    assert e.value.code == "unknown_function"
    with pytest.raises(pc.Unsupported):
        client.submit_paths(["a.pcap"])  # no spool_dir
    assert client.ping()["version"] == "0.1.0"
    assert [j.job_id for j in client.list()] == [job.job_id]


def test_queue_full_cancel_and_nothing_stored(make_daemon):
    d = make_daemon(
        pool=1,
        backend="command",
        command="sleep 3; touch {out}/x.log; : {pcaps}",
        extra_global="max_queue = 1",
    )
    client = d.client()
    sample = samples()[0]
    running = client.submit(sample)
    deadline = time.monotonic() + 10
    while client.status(running.job_id).state != "running":
        assert time.monotonic() < deadline, "first job never started"
        time.sleep(0.02)
    queued = client.submit(sample)
    # wait() returns the job as it stands when its timeout runs out.
    assert client.wait(running.job_id, timeout=0.3).state == "running"
    with pytest.raises(pc.QueueFull) as e:
        client.submit(sample, tag="refused")
    assert e.value.code == "queue_full" and "try again later" in e.value.hint
    with pytest.raises(pc.QueueFull):
        client.submit_paths(["x"])  # also refused before anything else is looked at
    assert {j.job_id for j in client.list()} == {running.job_id, queued.job_id}
    assert client.pool().rejected >= 1
    assert client.cancel(queued.job_id).state == "cancelled"
    done = client.wait(running.job_id, 30)
    assert done.state == "done" and done.log_names() == ["x.log"]
    # The refused upload cost the connection (the daemon closes it), not the client.
    assert client.submit(sample).state == "queued"


def test_upload_too_large(make_daemon):
    d = make_daemon(extra_global="max_upload = 1000")
    client = d.client()
    with pytest.raises(pc.UploadTooLarge) as e:
        client.submit(samples()[0])
    assert e.value.code == "upload_too_large"
    assert client.submit([("tiny.pcap", io.BytesIO(b"\0" * 10))]).state == "queued"
    assert len(client.list()) == 1


def test_read_and_call_timeouts_against_a_silent_server():
    """A peer that accepts and never answers: each read and the whole call are bounded."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held = []

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    try:
        for kw in ({"read_timeout": 0.3}, {"read_timeout": 30, "call_timeout": 0.3}):
            client = pc.Client("127.0.0.1", port, "pw", tls=False, **kw)
            started = time.monotonic()
            with pytest.raises(pc.CallTimeout):
                client.ping()
            assert time.monotonic() - started < 3, kw
            assert isinstance(pc.CallTimeout("x"), pc.ConnectionError)
    finally:
        listener.close()
        for conn in held:
            conn.close()
