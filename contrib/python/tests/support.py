"""Helpers of the test suite: the real daemon, certificates, process and socket accounting.

Every server started here binds 127.0.0.1 on a port of its own and is stopped by its pid.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set

import pytest

HERE = Path(__file__).resolve().parent
PKG = HERE.parent  # contrib/python
REPO = PKG.parent.parent
EXAMPLES = PKG / "examples"
SAMPLES = REPO / "share" / "pcapd" / "samples"
HINT = "run tests/setup.sh"


#: Measured figures, printed at the end of the run (conftest's pytest_terminal_summary).
FIGURES: List[str] = []


def figure(line: str) -> None:
    """Records a measured figure for the run's summary (and prints it, for ``-s``)."""
    FIGURES.append(line)
    print(line)


def missing(what: str) -> None:
    """A component the tests need is absent: fail (never skip) with the setup hint."""
    pytest.fail(f"{what} is missing: {HINT}", pytrace=False)


def pcapd_bin() -> Path:
    path = Path(os.environ.get("PCAPD_BIN") or REPO / "target" / "debug" / "pcapd")
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the pcapd binary {path} is missing: build it (cargo build --bin pcapd; tests/run does) "
            "or set PCAPD_BIN",
            pytrace=False,
        )
    return path


def venv_tool(name: str) -> str:
    """A console script of the test venv (gunicorn, celery, uvicorn)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            missing(f"{name} (in the test venv {Path(sys.executable).parent.parent})")
        return found  # type: ignore[return-value]
    return str(path)


def need_module(name: str) -> None:
    import importlib.util

    if importlib.util.find_spec(name) is None:
        missing(f"the Python module {name!r} (in the test venv)")


def samples() -> List[Path]:
    found = sorted(SAMPLES.glob("*.pcap")) + sorted(SAMPLES.glob("*.pcapng"))
    assert found, f"no sample captures in {SAMPLES}"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(dir: Path, name: str, *, cn: str = "127.0.0.1", san: str = "IP:127.0.0.1,DNS:localhost") -> Dict[str, Path]:
    """A self-signed certificate (openssl req -x509, marked CA as openssl makes it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("openssl")
    cert, key = dir / f"{name}.pem", dir / f"{name}.key"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-subj", f"/CN={cn}", "-addext", f"subjectAltName={san}", "-days", "30",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(key, 0o600)
    return {"cert": cert, "key": key}


def make_ca_signed(dir: Path, name: str, san: str = "IP:127.0.0.1,DNS:localhost") -> Dict[str, Path]:
    """A CA and a leaf certificate it signed (not self-signed: the verified path)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        missing("openssl")
    ca = make_cert(dir, f"{name}-ca", cn=f"{name} test CA", san=f"DNS:{name}-ca.invalid")
    key, csr, cert = dir / f"{name}.key", dir / f"{name}.csr", dir / f"{name}.pem"
    ext = dir / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    subprocess.run(
        [openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", "/CN=pcapd leaf", "-keyout", str(key), "-out", str(csr)],
        check=True, capture_output=True,
    )
    subprocess.run(
        [openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca["cert"]), "-CAkey", str(ca["key"]),
         "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(cert)],
        check=True, capture_output=True,
    )
    os.chmod(key, 0o600)
    return {"cert": cert, "key": key, "ca": ca["cert"]}


class Daemon:
    """A real ``pcapd serve`` on 127.0.0.1 with TLS, in a directory of its own."""

    def __init__(
        self,
        dir: Path,
        cert: Dict[str, Path],
        *,
        pool: int = 2,
        backend: str = "builtin",
        command: Optional[str] = None,
        extra_global: str = "",
        extra: str = "",
    ) -> None:
        self.dir = dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cert = cert["cert"]
        self.key = cert["key"]
        self.pool = pool
        self.backend = backend
        self.command = command
        self.extra_global = extra_global
        self.extra = extra
        self.password = secrets.token_urlsafe(24)
        self.password_file = dir / "password"
        self.password_file.write_text(self.password + "\n")
        os.chmod(self.password_file, 0o600)
        self.state_dir = dir / "state"
        self.config = dir / "pcapd.cfg"
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.stderr_path = dir / "daemon.stderr"
        self.write_config()

    def write_config(self) -> None:
        command = f"[Command]\ncommand = {self.command}\n" if self.command else ""
        self.config.write_text(
            "[Global]\n"
            f"port = {self.port}\nbind = 127.0.0.1\npool = {self.pool}\nssl = true\n"
            f"sslcert = {self.cert}\nsslkey = {self.key}\npassword_file = {self.password_file}\n"
            f"state_dir = {self.state_dir}\nbackend = {self.backend}\nauth_delay = 200ms\n"
            f"{self.extra_global}\n"
            "[Worker]\ntimeout = 120s\ngrace = 1s\n"
            f"{command}{self.extra}"
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None, "daemon not running"
        return self.proc.pid

    def start(self) -> "Daemon":
        stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [str(pcapd_bin()), "serve", "-c", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "RUST_LOG": "info"},
        )
        stderr.close()
        ready = threading.Event()
        addr: List[str] = []
        out = self.proc.stdout
        assert out is not None

        def drain() -> None:
            for raw in out:
                line = raw.decode("utf-8", "replace")
                if "listening on " in line and not ready.is_set():
                    addr.append(line.split("listening on ", 1)[1].strip())
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(30) or not addr:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"pcapd did not start; stderr:\n{self.stderr()}")
        port = int(addr[0].rsplit(":", 1)[1])
        if self.port == 0:
            # Keep the port: a restart must come back where the clients are.
            self.port = port
            self.write_config()
        assert port == self.port
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signals the daemon by pid and waits for it; returns its exit status."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError(f"pcapd did not stop within {timeout} s after signal {sig}")

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        # SIGKILL leaves the workers to their parent-death signal: wait until they are gone.
        self.start()

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def client(self, **kw):  # -> pcapd_client.Client
        from pcapd_client import Client

        return Client.from_config(self.config, **kw)

    def async_client(self, **kw):
        from pcapd_client import AsyncClient

        return AsyncClient.from_config(self.config, **kw)

    def job_dirs(self) -> List[str]:
        jobs = self.state_dir / "jobs"
        return sorted(os.listdir(jobs)) if jobs.is_dir() else []


# ---- processes -------------------------------------------------------------------------


def children(pid: int) -> List[int]:
    """Direct children of every thread of ``pid``."""
    out: List[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            continue
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def process_tree(pid: int) -> List[int]:
    """``pid`` and all its live descendants."""
    seen: List[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen or not _alive(p):
            continue
        seen.append(p)
        todo.extend(children(p))
    return seen


class ProcessSampler:
    """Counts a process and its descendants every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid = pid
        self.interval = interval
        self.max = 0
        self.samples = 0
        self.max_pids: List[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = process_tree(self.pid)
            self.samples += 1
            if len(tree) > self.max:
                self.max = len(tree)
                self.max_pids = tree
            self._stop.wait(self.interval)

    def __enter__(self) -> "ProcessSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---- sockets ---------------------------------------------------------------------------


def _tcp_table() -> Dict[int, tuple]:
    """socket inode → (local port, remote port, state) of every TCP socket (IPv4 and IPv6)."""
    table: Dict[int, tuple] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, remote, state, inode = parts[1], parts[2], parts[3], int(parts[9])
                    table[inode] = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16), state)
        except OSError:
            continue
    return table


def socket_inodes(pid: int) -> Set[int]:
    inodes: Set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connections_to(pid: int, port: int) -> int:
    """How many established TCP connections process ``pid`` holds to ``port``."""
    table = _tcp_table()
    return sum(
        1
        for inode in socket_inodes(pid)
        if inode in table and table[inode][1] == port and table[inode][2] == "01"
    )


def wait_port(port: int, timeout: float, proc: Optional[subprocess.Popen] = None, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port} within {timeout} s")


def stop_pid(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20, also: Iterable[int] = ()) -> None:
    """Stops a process we started, by pid; then any of ``also`` (its children) still alive."""
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    for pid in also:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def multipart(fields: Dict[str, str], files: List[tuple]) -> tuple:
    """A multipart/form-data body: ``files`` as (field, filename, bytes)."""
    boundary = "pcapd" + secrets.token_hex(12)
    parts: List[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for field, filename, data in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: application/vnd.tcpdump.pcap\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
