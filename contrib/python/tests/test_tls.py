"""TLS as the Rust client does it: the configured certificate is the only trust anchor."""

from __future__ import annotations

import asyncio

import pytest

import pcapd_client as pc
import support


def test_certificate_that_does_not_match_is_a_clear_tls_error(daemon, certs):
    other = str(certs["other"]["cert"])
    client = daemon.client(ca=other)
    with pytest.raises(pc.TLSError) as e:
        client.ping()
    msg = str(e.value)
    assert isinstance(e.value, pc.ConnectionError) and e.value.code is None
    assert "not the trusted one" in msg and other in msg and "SHA-256" in msg, msg
    assert "127.0.0.1" in msg

    async def run():
        with pytest.raises(pc.TLSError, match="not the trusted one"):
            await daemon.async_client(ca=other).ping()

    asyncio.run(run())
    # Nothing was sent: the daemon saw no password attempt.
    stats = daemon.client().statistics()
    assert stats["pcapd"]["auth_failures"] == 0


def test_pinned_certificate_is_trusted_whatever_the_name(daemon):
    # As rustls' PinnedOrWebPki: the exact certificate is accepted without a name check.
    assert daemon.client(server_name="not-this-host.example").ping()["version"] == "0.1.0"
    assert daemon.client(host="localhost").ping()["version"] == "0.1.0"


def test_plain_client_against_tls_daemon(daemon):
    with pytest.raises((pc.ProtocolError, pc.ConnectionError)):
        daemon.client(tls=False, read_timeout=5).ping()


def test_ca_signed_certificate_is_verified_with_its_name(make_daemon, tmp_path):
    leaf = support.make_ca_signed(tmp_path, "leaf", san="IP:127.0.0.1,DNS:localhost")
    d = make_daemon("signed", cert=leaf)
    ca = str(leaf["ca"])
    assert d.client(ca=ca).ping()["version"] == "0.1.0"
    assert d.client(ca=ca, server_name="localhost").ping()["version"] == "0.1.0"
    with pytest.raises(pc.TLSError) as e:
        d.client(ca=ca, server_name="elsewhere.example").ping()
    assert "elsewhere.example" in str(e.value)

    async def run():
        async with d.async_client(ca=ca) as c:
            assert (await c.ping())["version"] == "0.1.0"
        with pytest.raises(pc.TLSError):
            await d.async_client(ca=ca, server_name="elsewhere.example").ping()

    asyncio.run(run())
