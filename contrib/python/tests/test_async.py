"""The asyncio client: many concurrent calls over a few connections; FastAPI end to end."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import time

import pytest

import pcapd_client as pc
import support


def test_500_concurrent_status_calls_over_a_handful_of_connections(daemon):
    async def run():
        async with daemon.async_client(max_connections=4) as client:
            jobs = [await client.submit(p, tag="async") for p in support.samples()]
            done = await asyncio.gather(*(client.wait(j.job_id, 60) for j in jobs))
            assert all(j.state == "done" for j in done)
            peak = 0

            async def status(i):
                nonlocal peak
                job = await client.status(jobs[i % len(jobs)].job_id)
                if i % 50 == 0:  # reading /proc is slower than a status call
                    peak = max(peak, support.connections_to(os.getpid(), daemon.port))
                return job

            started = time.monotonic()
            results = await asyncio.gather(*(status(i) for i in range(500)))
            support.figure(
                f"asyncio: 500 concurrent status calls in {time.monotonic() - started:.2f} s over "
                f"{client.dials} connections (at most {peak} seen open at once)"
            )
            assert len(results) == 500 and all(r.state == "done" for r in results)
            assert {r.job_id for r in results} == {j.job_id for j in jobs}
            assert client.dials <= 4 and client.open_connections <= 4 and 1 <= peak <= 4, (client.dials, peak)
            # The async generator, errors and bui-monitor functions too.
            log = done[0].logs[0].name
            data = b"".join([c async for c in client.fetch(done[0].job_id, log, length=1000)])
            assert len(data) == done[0].logs[0].bytes
            with pytest.raises(pc.JobNotFound):
                await client.status("3f0c9a51-0000-4000-8000-000000000000")
            assert await client.client_version() is None
            assert await client.monitor_version() == "0.1.0"
            assert (await client.pool()).accepted == len(jobs)
            return client.dials

    dials = asyncio.run(run())
    assert dials <= 4

    async def bad():
        with pytest.raises(pc.AuthError):
            await daemon.async_client(password="wrong").status("x")
    asyncio.run(bad())


def test_async_queue_full_and_upload_from_file_objects(make_daemon):
    d = make_daemon(pool=1, backend="command", command="sleep 3; : {pcaps}", extra_global="max_queue = 1")

    async def run():
        async with d.async_client() as client:
            first = await client.submit(support.samples()[0])
            for _ in range(500):
                if (await client.status(first.job_id)).state == "running":
                    break
                await asyncio.sleep(0.02)
            with open(support.samples()[1], "rb") as f:
                second = await client.submit([f], progress=lambda s, t: None)
            with pytest.raises(pc.QueueFull):
                await client.submit(support.samples()[2])
            assert len(await client.list()) == 2
            await client.cancel(second.job_id)
            await client.cancel(first.job_id)

    asyncio.run(run())


def test_fastapi_example_end_to_end(daemon):
    support.need_module("fastapi")
    support.need_module("python_multipart")
    uvicorn = support.venv_tool("uvicorn")
    port = support.free_port()
    log = open(daemon.dir / "uvicorn.log", "wb")
    proc = subprocess.Popen(
        [uvicorn, "fastapi_upload:app", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=support.EXAMPLES,
        env={**os.environ, "PCAPD_CONFIG": str(daemon.config)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        support.wait_port(port, 30, proc, "uvicorn")
        sample = support.samples()[0]
        body, ctype = support.multipart({"tag": "fastapi"}, [("file[]", sample.name, sample.read_bytes())])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/submit/pcap", body=body, headers={"Content-Type": ctype})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        assert resp.status == 200, answer
        assert answer["success"] is True and answer["tag"] == "fastapi" and answer["files"] == [sample.name]
        conn.request("GET", f"/jobs/{answer['job_id']}?wait=30")
        resp = conn.getresponse()
        job = json.loads(resp.read())
        assert resp.status == 200 and job["state"] == "done", job
        log_name = job["logs"][0]["name"]
        conn.request("GET", f"/jobs/{answer['job_id']}/logs/{log_name}")
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200 and len(data) == job["logs"][0]["bytes"]
        conn.request("GET", "/jobs/3f0c9a51-0000-4000-8000-000000000000")
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["error"] == "not_found"
        conn.close()
    except BaseException:
        log.flush()
        print((daemon.dir / "uvicorn.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        support.stop_pid(proc)
        log.close()
