"""The requests and answer rules both clients share (``pcapd_client._calls``), without a
daemon: the bytes of docs/protocol.md's examples, and what each reply means for the call
and for the connection."""

from __future__ import annotations

import pytest

import pcapd_client as pc
from pcapd_client import _calls, _core


def test_request_bytes_are_the_protocol_documents():
    # docs/protocol.md, "Byte-level examples": ping with password s3cret is 57 bytes.
    body = _calls.ping().body("s3cret")
    assert body == b'{"password":"s3cret","func":"ping","args":[],"kwargs":{}}' and len(body) == 57
    assert _core.frame(body)[:8] == bytes.fromhex("0000000000000039")
    upload = _calls.submit([_core.Source("a.pcap", None, 10, False)], "sensor1", None)
    assert upload.body("s3cret") == (
        b'{"password":"s3cret","func":"submit","args":[],"kwargs":'
        b'{"files":[{"name":"a.pcap","size":10}],"options":{},"tag":"sensor1"}}'
    )
    assert upload.upload_size == 10 and not upload.repeatable
    assert _calls.query("c:nosuch", False).body("s3cret") == (
        b'{"password":"s3cret","query":"c:nosuch\\n","cache":false}'
    )
    # Arguments left as None are the daemon's defaults: not sent.
    assert _calls.list_jobs(None, "t", None, None).envelope["kwargs"] == {"tag": "t"}
    assert _calls.fetch("j", "conn.log", 5, None).envelope["kwargs"] == {"job_id": "j", "log": "conn.log", "offset": 5}
    assert _calls.submit_paths("a.pcap", None, {"x": 1}).envelope["kwargs"] == {"paths": ["a.pcap"], "options": {"x": 1}}
    assert _calls.wait("j", 7.0).extra_wait == 7.0


def test_answers_become_results_and_errors():
    job = _calls.status("j").outcome(b"OK", b'{"job_id":"j","state":"done","new_field":1}', False)
    assert job.keep and job.proven and job.result().state == "done" and job.result().extra == {"new_field": 1}
    jobs = _calls.list_jobs(None, None, None, None).outcome(b"OK", b'{"jobs":[{"job_id":"a","state":"queued"}]}', True)
    assert [j.job_id for j in jobs.result()] == ["a"]
    assert _calls.monitor_version().outcome(b"OK", b"0.1.0\n", True).result() == "0.1.0"
    assert _calls.batch_list_supported().outcome(b"OK", b"true", True).result() is True
    with pytest.raises(pc.ProtocolError, match="not JSON"):
        _calls.status("j").outcome(b"OK", b"<html>", True)
    with pytest.raises(pc.ProtocolError, match="no jobs list"):
        _calls.list_jobs(None, None, None, None).outcome(b"OK", b"{}", True)

    missing = _calls.status("j").outcome(b"ER", b'{"error":"not_found","message":"no job j"}', False)
    assert isinstance(missing.error, pc.JobNotFound) and missing.keep and missing.proven
    with pytest.raises(pc.JobNotFound):
        missing.result()
    no_log = _calls.fetch("j", "x.log", 0, None).outcome(b"ER", b'{"error":"not_found","message":"job j has no log x.log"}', True)
    assert isinstance(no_log.error, pc.LogNotFound)
    # Framing errors close the connection; so does any refusal of an upload.
    assert not _calls.status("j").outcome(b"ER", b'{"error":"request_too_large","message":"m"}', True).keep
    upload = _calls.submit([_core.Source("a.pcap", None, 1, False)], None, None)
    full = upload.outcome(b"ER", b'{"error":"queue_full","message":"try again later"}', True)
    assert not full.keep and isinstance(full.error, pc.QueueFull) and full.error.hint == "try again later"


def test_ko_is_a_wrong_password_unless_the_password_is_proven():
    for call in (_calls.ping(), _calls.status("j"), _calls.monitor_version()):
        out = call.outcome(b"KO", b"", True)
        assert isinstance(out.error, pc.AuthError) and not out.keep and not call.needs_proof
    for call, no_result in ((_calls.client_version(), None), (_calls.batch_list_supported(), False), (_calls.query("c:", True), None)):
        assert call.needs_proof
        proven = call.outcome(b"KO", b"", True)
        assert proven.keep and proven.result() is no_result
        unproven = call.outcome(b"KO", b"", False)
        assert isinstance(unproven.error, pc.AuthError) and not unproven.keep
