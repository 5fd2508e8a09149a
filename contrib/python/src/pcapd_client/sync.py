"""The blocking client: :class:`Client`."""

from __future__ import annotations

import os
import select
import socket
import ssl
import struct
import tempfile
import threading
import time
import weakref
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from . import _core
from ._core import FileArg, Progress
from ._tls import Trust
from .config import DEFAULT_CHUNK, PathLike, Settings, resolve
from .errors import (
    AuthError,
    BadRequest,
    CallTimeout,
    ConnectionError,
    PcapdError,
    ProtocolError,
    TLSError,
    UploadFailed,
)
from .models import Job, LogInfo, PoolStatus

__all__ = ["Client"]

# Clients alive in this process, reset in a forked child (their connections belong to the
# parent, their lock may have been held by a thread that does not exist in the child).
_CLIENTS: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Broken(Exception):
    """The connection failed (reset, EOF, TLS error): the call may be repeated if safe."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {cause}")
        self.cause = cause


class _Conn:
    """One connection: a socket (TLS or plain) and what is known about it."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        self.pid = os.getpid()
        self.authenticated = False  # an OK or ER was received on it: the password is right

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def _timeout(self, deadline: Optional[float], limit: float) -> float:
        if deadline is None:
            return limit
        left = deadline - time.monotonic()
        if left <= 0:
            raise CallTimeout(f"call to pcapd at {self.address} timed out")
        return min(limit, left)

    def send(self, data: Union[bytes, memoryview], deadline: Optional[float], limit: float) -> None:
        self.sock.settimeout(self._timeout(deadline, limit))
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise CallTimeout(f"sending to pcapd at {self.address} timed out") from None
        except (OSError, ssl.SSLError) as e:
            raise _Broken("sending failed", e) from None

    def recv_exact(self, n: int, deadline: Optional[float], limit: float) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            self.sock.settimeout(self._timeout(deadline, limit))
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise CallTimeout(
                    f"no answer from pcapd at {self.address} within {limit:g} s"
                ) from None
            except (OSError, ssl.SSLError) as e:
                raise _Broken("receiving failed", e) from None
            if k == 0:
                raise _Broken("receiving failed", EOFError("the daemon closed the connection"))
            got += k
        return bytes(buf)

    def read_reply(self, deadline: Optional[float], limit: float) -> Tuple[bytes, bytes]:
        """``(status, payload)``; ``KO`` has no payload."""
        status = self.recv_exact(2, deadline, limit)
        _core.check_status(status)
        if status == _core.KO:
            return status, b""
        n = _core.reply_length(status, self.recv_exact(8, deadline, limit))
        return status, self.recv_exact(n, deadline, limit) if n else b""

    def readable(self) -> bool:
        """Whether the daemon sent something unasked (an early answer, or EOF)."""
        try:
            if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
                return True
            r, _, _ = select.select([self.sock], [], [], 0)
            return bool(r)
        except (OSError, ValueError):
            return True


class Client:
    """A blocking pcapd client holding one persistent connection.

    The connection is opened on the first call, kept for the next ones, and opened again
    after a fork (gunicorn ``--preload``, celery prefork: each process gets its own). A
    connection found broken is dialled again once for calls that are safe to repeat
    (everything but ``submit``). Calls from several threads take turns on the connection.

    Args:
        host, port, password: where the daemon is and the password; each overrides the
            config file and the ``PCAPD_HOST``/``PCAPD_PORT``/``PCAPD_PASSWORD`` variables.
        config: the daemon's INI file (``[Global]`` bind, port, password or password_file,
            ssl, sslcert). Without it: ``/etc/pcapd/pcapd.cfg`` if present, else the
            embedded defaults' state directory, as the ``pcapd`` CLI.
        ca: PEM file with the certificate to trust (``PCAPD_CA``; default the config's
            ``sslcert``).
        server_name: name the certificate is checked for when it is not the trusted
            certificate itself (default: ``host``).
        tls: force TLS on (``True``) or off (``False``); default the config's ``ssl``.
        connect_timeout: seconds for TCP connect plus TLS handshake.
        read_timeout: seconds any single read or write may block.
        call_timeout: seconds a whole call may take (``None``: no limit).
        chunk_size: bytes per upload data frame.
        settings: ready :class:`~pcapd_client.config.Settings` (then the rest is ignored).

    Example::

        with Client.from_config("/etc/pcapd/pcapd.cfg") as pcapd:
            job = pcapd.submit(["capture.pcap"], tag="sensor1")
            job = pcapd.wait(job.job_id, timeout=600)
            pcapd.save(job.job_id, "conn.log", "conn.log")
    """

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        password: Optional[str] = None,
        *,
        config: Optional[PathLike] = None,
        ca: Optional[PathLike] = None,
        server_name: Optional[str] = None,
        tls: Optional[bool] = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        call_timeout: Optional[float] = None,
        chunk_size: int = DEFAULT_CHUNK,
        settings: Optional[Settings] = None,
    ) -> None:
        if settings is None:
            settings = resolve(
                config,
                host=host,
                port=port,
                password=password,
                ca=ca,
                server_name=server_name,
                tls=tls,
                connect_timeout=connect_timeout,
                read_timeout=read_timeout,
                call_timeout=call_timeout,
                chunk_size=chunk_size,
            )
        if settings.chunk_size < 1:
            raise BadRequest("chunk_size must be at least 1")
        self._settings = settings
        self._trust = Trust(settings.ca, settings.server_name or settings.host) if settings.ca else None
        self._conn: Optional[_Conn] = None
        self._lock = threading.RLock()
        self._pid = os.getpid()
        #: Connections dialled so far by this process (for tests and metrics).
        self.dials = 0
        _CLIENTS.add(self)

    @classmethod
    def from_config(cls, path: PathLike, **overrides: Any) -> "Client":
        """A client for the daemon configured by ``path`` (the daemon's own INI file).

        Keyword arguments (``host``, ``port``, ``password``, ``ca``, timeouts, …) override it.
        """
        return cls(config=path, **overrides)

    @property
    def settings(self) -> Settings:
        """The resolved connection settings."""
        return self._settings

    # ---- connection ----------------------------------------------------------------

    def _forget_after_fork(self) -> None:
        self._lock = threading.RLock()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()  # closes this process's descriptor only; the parent keeps its TLS session
        self._pid = os.getpid()
        self.dials = 0

    def close(self) -> None:
        """Closes the connection (the next call opens a new one)."""
        with self._lock:
            self._drop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None and conn.pid == os.getpid():
            conn.close()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _dial_once(self, ctx: Optional[ssl.SSLContext], deadline: float) -> socket.socket:
        s = self._settings
        left = max(0.001, deadline - time.monotonic())
        try:
            sock = socket.create_connection((s.host, s.port), timeout=left)
        except socket.timeout:
            raise CallTimeout(f"connection to pcapd at {s.address} timed out") from None
        except OSError as e:
            raise ConnectionError(f"cannot connect to pcapd at {s.address}: {e.strerror or e}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if ctx is None:
            return sock
        assert self._trust is not None
        try:
            tls = ctx.wrap_socket(sock, server_hostname=self._trust.sni(), do_handshake_on_connect=False)
        except (OSError, ValueError) as e:
            sock.close()
            raise TLSError(f"TLS setup for {s.address} failed: {e}") from None
        try:
            tls.settimeout(max(0.001, deadline - time.monotonic()))
            tls.do_handshake()
        except socket.timeout:
            tls.close()
            raise CallTimeout(f"TLS handshake with pcapd at {s.address} timed out") from None
        except ssl.SSLCertVerificationError:
            tls.close()
            raise
        except (OSError, ssl.SSLError) as e:
            tls.close()
            raise TLSError(f"TLS handshake with pcapd at {s.address} failed: {e}") from None
        return tls

    def _dial(self) -> _Conn:
        s = self._settings
        deadline = time.monotonic() + s.connect_timeout
        trust = self._trust
        if trust is None:
            sock = self._dial_once(None, deadline)
        else:
            sock = self._dial_once(trust.pin_context, deadline)
            assert isinstance(sock, ssl.SSLSocket)
            der = sock.getpeercert(binary_form=True)
            if not trust.is_pinned(der):
                sock.close()
                if trust.verify_context is None:
                    raise TLSError(trust.mismatch_message(s.address, der, "the trusted file holds no usable CA"))
                try:
                    sock = self._dial_once(trust.verify_context, deadline)
                except ssl.SSLCertVerificationError as e:
                    raise TLSError(trust.mismatch_message(s.address, der, e.verify_message or e)) from None
        self.dials += 1
        return _Conn(sock, s.address)

    def _connection(self) -> Tuple[_Conn, bool]:
        """The connection to use and whether it was dialled just now."""
        if self._pid != os.getpid():
            self._forget_after_fork()
        conn = self._conn
        if conn is not None and conn.readable():
            # The daemon closed it (idle_timeout, restart) or sent something unasked.
            self._drop()
            conn = None
        if conn is not None:
            return conn, False
        self._conn = self._dial()
        return self._conn, True

    def _deadline(self) -> Optional[float]:
        t = self._settings.call_timeout
        return None if t is None else time.monotonic() + t

    def _exchange(
        self,
        func: str,
        body: bytes,
        *,
        deadline: Optional[float],
        extra_wait: float = 0.0,
        ko_is_none: bool = False,
    ) -> Optional[bytes]:
        """Sends one request and returns the ``OK`` payload (``None`` for ``KO`` when
        ``ko_is_none``); repeats it once on a fresh connection if that is safe."""
        retry = func in _core.IDEMPOTENT
        limit = self._settings.read_timeout
        with self._lock:
            for attempt in (0, 1):
                conn, fresh = self._connection()
                try:
                    if ko_is_none and not conn.authenticated:
                        self._authenticate(conn, deadline)
                    conn.send(_core.frame(body), deadline, limit)
                    status, payload = conn.read_reply(deadline, limit + extra_wait)
                except _Broken as e:
                    self._drop()
                    if retry and not fresh and attempt == 0:
                        continue
                    raise ConnectionError(
                        f"connection to pcapd at {conn.address} broke during {func}: {e.cause}"
                    ) from None
                except BaseException:
                    self._drop()
                    raise
                return self._outcome(conn, status, payload, ko_is_none)
        raise AssertionError("unreachable")

    def _outcome(self, conn: _Conn, status: bytes, payload: bytes, ko_is_none: bool) -> Optional[bytes]:
        if status == _core.OK:
            conn.authenticated = True
            return payload
        if status == _core.KO:
            if ko_is_none and conn.authenticated:
                return None
            self._drop()
            raise _core.auth_error()
        conn.authenticated = True
        error = _core.error_for(payload)
        if error.code in _core.CLOSING_CODES:
            self._drop()
        raise error

    def _authenticate(self, conn: _Conn, deadline: Optional[float]) -> None:
        """A ``ping`` first, so that a later ``KO`` can only mean "no result"."""
        limit = self._settings.read_timeout
        conn.send(_core.frame(_core.call_body(self._settings.get_password(), "ping", {})), deadline, limit)
        status, payload = conn.read_reply(deadline, limit)
        if status == _core.KO:
            self._drop()
            raise _core.auth_error()
        conn.authenticated = True

    def _call_raw(self, func: str, kwargs: Dict[str, Any], *, extra_wait: float = 0.0) -> bytes:
        body = _core.call_body(self._settings.get_password(), func, kwargs)
        out = self._exchange(func, body, deadline=self._deadline(), extra_wait=extra_wait)
        assert out is not None
        return out

    def call(self, func: str, kwargs: Optional[Dict[str, Any]] = None) -> Any:
        """Calls any function that answers JSON and returns the decoded answer.

        Repeated on a fresh connection only for the functions known to be safe to repeat.
        """
        return _core.decode_json(func, self._call_raw(func, dict(kwargs or {})))

    # ---- pcapd's functions ---------------------------------------------------------

    def submit(
        self,
        files: Union[FileArg, Iterable[FileArg]],
        tag: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
        progress: Optional[Progress] = None,
    ) -> Job:
        """Uploads capture files as one job and returns it (state ``queued``).

        Each file is streamed in ``chunk_size`` data frames, never held in memory whole.

        Args:
            files: paths, binary file objects (read from their current position to the
                end), ``(name, path_or_fileobj)`` or ``(name, fileobj, size)`` tuples (the
                size is needed for a stream that cannot seek), or a single one of these.
                Together they are one capture, merged in time order by the daemon.
            tag: printable ASCII without spaces, at most 64 characters.
            options: job options, e.g. ``{"ignore_checksums": True}``.
            progress: called as ``progress(sent, total)`` after every chunk.

        Raises:
            QueueFull: the queue is full, nothing was stored.
            UploadTooLarge: a file is over the daemon's ``max_upload``.
            ConnectionError: the connection broke during the upload; it is not repeated
                (the caller decides). Nothing was stored unless ``maybe_stored`` is set (every
                byte had been sent, the answer had not come).
        """
        sources = _core.open_sources(files)
        try:
            declared = [{"name": src.name, "size": src.size} for src in sources]
            body = _core.call_body(
                self._settings.get_password(), "submit", _core.submit_kwargs(declared, tag, options)
            )
            with self._lock:
                conn, _ = self._connection()
                try:
                    status, payload = self._upload(conn, body, sources, progress)
                except BaseException:
                    self._drop()
                    raise
                try:
                    out = self._outcome(conn, status, payload, False)
                except PcapdError:
                    self._drop()  # the daemon closes after refusing an upload
                    raise
        finally:
            for src in sources:
                src.close()
        assert out is not None
        return Job.from_dict(_core.expect_dict("submit", _core.decode_json("submit", out)))

    def _upload(
        self, conn: _Conn, body: bytes, sources: List[_core.Source], progress: Optional[Progress]
    ) -> Tuple[bytes, bytes]:
        deadline = self._deadline()
        limit = self._settings.read_timeout
        total = sum(src.size for src in sources)
        chunk = self._settings.chunk_size
        buf = bytearray(8 + min(chunk, max(total, 1)))
        view = memoryview(buf)
        sent = 0
        try:
            conn.send(_core.frame(body), deadline, limit)
            for src in sources:
                left = src.size
                while left > 0:
                    want = min(len(buf) - 8, left)
                    n = _core.read_chunk_into(src, view[8 : 8 + want])
                    if n <= 0:
                        raise UploadFailed(
                            f"{src.name}: the file ended after {src.size - left} of {src.size} bytes "
                            "(it shrank while uploading); nothing was stored"
                        )
                    struct.pack_into("!Q", buf, 0, n)
                    conn.send(view[: 8 + n], deadline, limit)
                    left -= n
                    sent += n
                    if progress is not None:
                        progress(sent, total)
                    if conn.readable():
                        # The daemon answered before the end: a refusal (queue_full, …).
                        return conn.read_reply(deadline, limit)
            return conn.read_reply(deadline, limit)
        except _Broken as e:
            # The daemon may have answered and closed while data was still being sent.
            try:
                return conn.read_reply(deadline, min(limit, 2.0))
            except (PcapdError, _Broken):
                pass
            raise _core.upload_cut(conn.address, sent, total, e.cause) from None

    def submit_paths(
        self,
        paths: Sequence[Union[str, "os.PathLike[str]"]],
        tag: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
    ) -> Job:
        """Submits files already under the daemon's ``spool_dir`` (paths relative to it)."""
        value = self.call("submit", _core.paths_kwargs(paths, tag, options))
        return Job.from_dict(_core.expect_dict("submit", value))

    def status(self, job_id: str) -> Job:
        """The job record."""
        return Job.from_dict(_core.expect_dict("status", self.call("status", {"job_id": job_id})))

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """Waits until the job is terminal, or ``timeout`` seconds passed (``None``: no limit).

        Returns the job as it stands then; check ``job.terminal``. The daemon holds each
        ``wait`` call up to 30 s, so this loops for longer waits.
        """
        start = time.monotonic()
        while True:
            step = 30.0 if timeout is None else max(0.0, min(30.0, timeout - (time.monotonic() - start)))
            raw = self._call_raw("wait", {"job_id": job_id, "timeout": step}, extra_wait=step)
            job = Job.from_dict(_core.expect_dict("wait", _core.decode_json("wait", raw)))
            if job.terminal or (timeout is not None and time.monotonic() - start >= timeout):
                return job

    def list(
        self,
        state: Optional[str] = None,
        tag: Optional[str] = None,
        limit: Optional[int] = None,
        since: Optional[str] = None,
    ) -> List[Job]:
        """Jobs, newest first: filtered by ``state``, ``tag``, ``since`` (RFC 3339); at most
        ``limit`` (daemon default 100)."""
        value = self.call("list", _core.list_kwargs(state, tag, limit, since))
        return [Job.from_dict(j) for j in _core.jobs_of("list", value)]

    def logs(self, job_id: str) -> List[LogInfo]:
        """The logs a job produced (name, bytes, lines)."""
        value = _core.expect_dict("logs", self.call("logs", {"job_id": job_id}))
        return [LogInfo.from_dict(x) for x in value.get("logs") or [] if isinstance(x, dict)]

    def fetch(self, job_id: str, log: str, offset: int = 0, length: Optional[int] = None) -> Iterator[bytes]:
        """The bytes of one log, as an iterator of chunks (each at most ``length`` bytes,
        daemon default and maximum 16 MiB) from ``offset``.

        Each chunk is one call; errors (``JobNotFound``, ``LogNotFound``) come from the
        first ``next()``. ``b"".join(client.fetch(id, "conn.log"))`` reads it whole.
        """
        while True:
            chunk = self._call_raw("fetch", _core.fetch_kwargs(job_id, log, offset, length))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def save(self, job_id: str, log: str, dest: Union[PathLike, IO[bytes]]) -> int:
        """Writes a log to ``dest`` (a path, written atomically, or a binary file object);
        returns the number of bytes written."""
        if hasattr(dest, "write"):
            n = 0
            for chunk in self.fetch(job_id, log):
                dest.write(chunk)
                n += len(chunk)
            return n
        path = os.fspath(dest)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".pcapd-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                n = self.save(job_id, log, f)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return n

    def cancel(self, job_id: str) -> Job:
        """Cancels a queued or running job; returns the record (terminal jobs unchanged)."""
        return Job.from_dict(_core.expect_dict("cancel", self.call("cancel", {"job_id": job_id})))

    def pool(self) -> PoolStatus:
        """The worker pool: every slot, the queue and the counters."""
        return PoolStatus.from_dict(_core.expect_dict("pool", self.call("pool", {})))

    def ping(self) -> Dict[str, Any]:
        """``{"version", "uptime", "backend"}``."""
        return _core.expect_dict("ping", self.call("ping", {}))

    # ---- bui-monitor's functions ---------------------------------------------------

    def _text(self, func: str, ko_is_none: bool) -> Optional[bytes]:
        body = _core.call_body(self._settings.get_password(), func, {})
        return self._exchange(func, body, deadline=self._deadline(), ko_is_none=ko_is_none)

    def monitor_version(self) -> str:
        """pcapd's version as bui-monitor answers it (bare text, e.g. ``"0.1.0"``)."""
        out = self._text("monitor_version", False)
        return _core.decode_text("monitor_version", out or b"")

    def client_version(self) -> Optional[str]:
        """The burp client's version (``backend = burp``); ``None`` when the daemon has none."""
        out = self._text("client_version", True)
        return None if out is None else _core.decode_text("client_version", out)

    def server_version(self) -> Optional[str]:
        """The burp server's version (``backend = burp``); ``None`` when not known (yet)."""
        out = self._text("server_version", True)
        return None if out is None else _core.decode_text("server_version", out)

    def batch_list_supported(self) -> bool:
        """Whether the burp server is 2.0.48 or newer (bui-monitor's answer)."""
        out = self._text("batch_list_supported", True)
        return False if out is None else _core.decode_bool("batch_list_supported", out)

    def statistics(self) -> Dict[str, Any]:
        """bui-monitor's statistics, plus pcapd's own under ``"pcapd"``."""
        out = self._text("statistics", False)
        return _core.expect_dict("statistics", _core.decode_json("statistics", out or b""))

    def query(self, query: str, cache: bool = True) -> Optional[bytes]:
        """A burp monitor status query (``backend = burp``): the JSON document burp printed,
        byte for byte, or ``None`` when burp had no answer (the daemon's ``KO``)."""
        if not query.endswith("\n"):
            query += "\n"
        body = _core.query_body(self._settings.get_password(), query, cache)
        return self._exchange("query", body, deadline=self._deadline(), ko_is_none=True)

    def probe(self) -> None:
        """Sends the readiness probe (``RE``) on a connection of its own; raises
        :class:`ConnectionError` or :class:`TLSError` if the daemon cannot be reached."""
        conn = self._dial()
        try:
            conn.send(_core.PROBE, None, self._settings.read_timeout)
        except _Broken as e:
            raise ConnectionError(f"probe of pcapd at {conn.address} failed: {e.cause}") from None
        finally:
            conn.close()
