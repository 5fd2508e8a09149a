"""Extracted files through the client: ``files`` lists what the daemon's ``[Extract]`` wrote
under the job's ``extract_files/``, and ``fetch``/``save`` take those names."""

from __future__ import annotations

import pcapd_client as pc
import pytest
from support import samples


def test_files_lists_and_fetches_extracted_files(make_daemon, tmp_path):
    daemon = make_daemon(extra="[Extract]\nmime = *\nlayout = mime\n")
    client = daemon.client()
    http = next(p for p in samples() if p.name == "http.pcap")
    job = client.wait(client.submit([http]).job_id, timeout=60)
    assert job.state == "done", job.error
    files = client.files(job.job_id)
    assert files, "http.pcap carries HTTP bodies"
    logs = daemon.state_dir / "jobs" / job.job_id / "logs"
    for f in files:
        assert f.name.startswith("extract_files/text/") or f.name.startswith("extract_files/")
        on_disk = (logs / f.name).read_bytes()
        assert b"".join(client.fetch(job.job_id, f.name)) == on_disk and len(on_disk) == f.bytes
        saved = tmp_path / "saved"
        assert client.save(job.job_id, f.name, saved) == f.bytes
    # files.log names each of them.
    files_log = (logs / "files.log").read_text()
    for f in files:
        assert f.name.split("/")[-1] in files_log
    with pytest.raises(pc.BadRequest):
        list(client.fetch(job.job_id, "extract_files/../job.json"))


def test_no_extract_section_means_no_files(daemon):
    client = daemon.client()
    http = next(p for p in samples() if p.name == "http.pcap")
    job = client.wait(client.submit([http]).job_id, timeout=60)
    assert job.state == "done"
    assert client.files(job.job_id) == []
