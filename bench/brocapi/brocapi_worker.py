"""The RQ job of the Brocapi-style pipeline (bench/brocapi.sh), written from Brocapi's README.

`process_job(job_id, tag)` runs the analyzer command on the job's captures into
`JOBS_DIR/<job id>/logs/bro`, then opens one syslog connection and sends every line of every
log (header lines starting with `#` skipped) as RFC 3164 with LF framing:
`<29>Mmm dd hh:mm:ss HOSTNAME PREFIX%LOG: LINE`, HOSTNAME being the job's tag (this host's
name when there is none) and the program name `BROCAPI_SYSLOG_PREFIX % log name`
(`bro25_%s` gives `bro25_conn`). Each line carries the time it is sent.

Configured by environment: BROCAPI_JOBS_DIR, BROCAPI_COMMAND (a shell command template with
`{pcaps}`, the quoted capture paths, and `{out}`, the log directory: the same template as
pcapd's `[Command] command`), BROCAPI_SYSLOG_HOST, BROCAPI_SYSLOG_PORT, BROCAPI_SYSLOG_PROTO
(tcp or udp), BROCAPI_SYSLOG_PREFIX.
"""

import glob
import os
import shlex
import socket
import subprocess
import time

JOBS_DIR = os.environ["BROCAPI_JOBS_DIR"]
COMMAND = os.environ["BROCAPI_COMMAND"]
SYSLOG_HOST = os.environ.get("BROCAPI_SYSLOG_HOST", "127.0.0.1")
SYSLOG_PORT = int(os.environ.get("BROCAPI_SYSLOG_PORT", "514"))
SYSLOG_PROTO = os.environ.get("BROCAPI_SYSLOG_PROTO", "tcp")
SYSLOG_PREFIX = os.environ.get("BROCAPI_SYSLOG_PREFIX", "bro25_%s")
PRI = 29  # facility daemon (3), severity notice (5), as Brocapi


class Syslog:
    """One syslog connection (TCP) or socket (UDP) for a job's lines."""

    def __init__(self):
        kind = socket.SOCK_STREAM if SYSLOG_PROTO == "tcp" else socket.SOCK_DGRAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.connect((SYSLOG_HOST, SYSLOG_PORT))
        self._second = None
        self._stamp = ""

    def timestamp(self):
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now))
        return self._stamp

    def send(self, hostname, program, line):
        message = f"<{PRI}>{self.timestamp()} {hostname} {program}: {line}"
        if SYSLOG_PROTO == "tcp":
            self.sock.sendall(message.encode() + b"\n")
        else:
            self.sock.send(message.encode())

    def close(self):
        self.sock.close()


def process_job(job_id, tag):
    job_dir = os.path.join(JOBS_DIR, job_id)
    pcaps = sorted(glob.glob(os.path.join(job_dir, "pcaps", "*.pcap")))
    out = os.path.join(job_dir, "logs", "bro")
    command = COMMAND.replace("{pcaps}", " ".join(shlex.quote(p) for p in pcaps)).replace(
        "{out}", shlex.quote(out)
    )
    subprocess.run(command, shell=True, check=True, stdout=subprocess.DEVNULL)
    logs = sorted(name for name in os.listdir(out) if name.endswith(".log"))
    if not logs:
        return 0
    hostname = tag or socket.gethostname()
    syslog = Syslog()
    sent = 0
    try:
        for name in logs:
            program = SYSLOG_PREFIX % name[: -len(".log")]
            with open(os.path.join(out, name), encoding="utf-8", errors="replace") as log:
                for line in log:
                    if line.startswith("#"):
                        continue
                    syslog.send(hostname, program, line.rstrip("\n"))
                    sent += 1
    finally:
        syslog.close()
    return sent
