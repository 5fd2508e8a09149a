"""A client used before a fork opens its own connection in the child (gunicorn --preload,
celery prefork), and the parent's connection is left intact."""

from __future__ import annotations

import asyncio
import os

import support


def test_fork_reopens_the_connection_in_the_child(daemon):
    client = daemon.client()
    assert client.ping()["version"] == "0.1.0"
    parent_port_conns = support.connections_to(os.getpid(), daemon.port)
    assert parent_port_conns == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, never return into pytest
        code = 1
        try:
            ok = client.ping()["version"] == "0.1.0" and client.dials == 1
            ok = ok and client.submit(support.samples()[0]).state == "queued"
            os.write(w, b"ok" if ok else b"bad")
            code = 0
        except BaseException as e:  # noqa: BLE001
            os.write(w, repr(e).encode()[:500])
        finally:
            os._exit(code)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    said = os.read(r, 1000)
    os.close(r)
    assert said == b"ok" and status == 0, said
    # The parent's TLS session was not disturbed by the child.
    assert client.ping()["version"] == "0.1.0" and client.dials == 1
    assert len(client.list()) == 1


def test_async_client_in_a_new_event_loop_opens_new_connections(daemon):
    client = daemon.async_client()
    assert asyncio.run(client.ping())["version"] == "0.1.0"
    assert asyncio.run(client.ping())["version"] == "0.1.0"  # another loop
    assert client.dials == 2
