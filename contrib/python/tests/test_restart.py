"""Connections across daemon restarts: re-dial once when safe, never repeat an upload."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

import pcapd_client as pc
from support import samples


def test_restart_between_two_calls_redials(daemon):
    client = daemon.client()
    job = client.wait(client.submit(samples()[0]).job_id, 60)
    assert client.dials == 1
    daemon.restart()
    # The old connection is dead; status is safe to repeat: one new dial, and it works.
    assert client.status(job.job_id).state == "done"
    assert client.dials == 2
    daemon.restart()
    # An upload is never repeated, but a connection found closed before it starts is
    # replaced first (the daemon's EOF is already there to see).
    assert client.submit(samples()[1]).state == "queued"
    assert client.dials == 3


def test_restart_between_two_calls_redials_async(daemon):
    async def run():
        async with daemon.async_client(max_connections=2) as client:
            await asyncio.gather(client.ping(), client.ping())
            assert client.dials == 2
            daemon.restart()
            await asyncio.sleep(0.1)  # let the loop see the daemon's FIN
            pings = await asyncio.gather(*(client.ping() for _ in range(10)))
            assert all(p["version"] == "0.1.0" for p in pings)
            assert client.dials == 4 and client.open_connections <= 2

    asyncio.run(run())


def test_connection_closed_by_idle_timeout_is_replaced(make_daemon):
    d = make_daemon(extra_global="idle_timeout = 1s")
    client = d.client()
    client.ping()
    time.sleep(1.5)
    assert client.submit(samples()[0]).state == "queued"
    assert client.dials == 2


def _big_file(tmp_path, size=256 << 20):
    path = tmp_path / "big.pcap"
    with open(path, "wb") as f:
        f.truncate(size)
    return path


def test_upload_cut_by_daemon_kill_is_connection_error_and_nothing_stored(daemon, tmp_path):
    client = daemon.client()
    before = client.wait(client.submit(samples()[0]).job_id, 60)
    dirs_before = daemon.job_dirs()
    big = _big_file(tmp_path)
    killed = []

    def progress(sent, total):
        if sent >= 32 << 20 and not killed:
            killed.append(sent)
            daemon.stop(signal.SIGKILL)

    with pytest.raises(pc.ConnectionError) as e:
        client.submit(big, progress=progress)
    assert killed and "not repeated" in str(e.value) and "stored nothing" in str(e.value)
    assert e.value.maybe_stored is False
    assert not isinstance(e.value, pc.CallTimeout)
    daemon.start()
    # The restarted daemon cleaned what the cut upload left: no job, no temp entry.
    assert [j.job_id for j in client.list()] == [before.job_id]
    assert daemon.job_dirs() == dirs_before
    assert client.status(before.job_id).state == "done"


def test_upload_during_graceful_stop_is_refused_and_nothing_stored(daemon, tmp_path):
    """SIGTERM mid-upload: the daemon answers shutting_down, or its [Worker] grace (1 s here)
    runs out first and it closes the connection; either way it keeps nothing. The file is
    large enough that the upload cannot end within the grace."""
    client = daemon.client()
    big = _big_file(tmp_path, 1 << 30)
    signalled = []

    def progress(sent, total):
        if sent >= 16 << 20 and not signalled:
            signalled.append(sent)
            os.kill(daemon.pid, signal.SIGTERM)

    with pytest.raises((pc.ShuttingDown, pc.ConnectionError)) as e:
        client.submit(big, progress=progress)
    assert signalled, e.value
    assert not getattr(e.value, "maybe_stored", False), e.value
    daemon.stop()
    daemon.start()
    assert client.list() == []
    assert daemon.job_dirs() == []
