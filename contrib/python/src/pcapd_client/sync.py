"""The blocking client: :class:`Client`, one persistent connection per process.

The requests and what their answers mean are :mod:`pcapd_client._calls`'s; this module moves
their bytes over a socket: dialling (TLS pinning, :mod:`pcapd_client._tls`), the connection
re-opened after a fork, the one re-dial of a repeatable call, an upload's data frames.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import struct
import threading
import time
import weakref
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar, Union

from . import _calls, _core
from ._core import FileArg, Progress
from .config import PathLike
from .errors import CallTimeout, ConnectionError, PcapdError, TLSError
from .models import Job, LogInfo, PoolStatus

__all__ = ["Client"]

T = TypeVar("T")

# Clients alive in this process, reset in a forked child (their connections belong to the
# parent, their lock may have been held by a thread that does not exist in the child).
_CLIENTS: "weakref.WeakSet[Client]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _Conn:
    """One connection: a socket (TLS or plain) and what is known about it."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        self.pid = os.getpid()
        self.proven = False  # an OK or ER was received on it: the password is right

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: Union[bytes, memoryview], deadline: Optional[float], limit: float) -> None:
        self.sock.settimeout(_core.time_left(deadline, limit, self.address))
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise CallTimeout(f"sending to pcapd at {self.address} timed out") from None
        except (OSError, ssl.SSLError) as e:
            raise _core.Broken("sending failed", e) from None

    def recv_exact(self, n: int, deadline: Optional[float], limit: float) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            self.sock.settimeout(_core.time_left(deadline, limit, self.address))
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise CallTimeout(
                    f"no answer from pcapd at {self.address} within {limit:g} s"
                ) from None
            except (OSError, ssl.SSLError) as e:
                raise _core.Broken("receiving failed", e) from None
            if k == 0:
                raise _core.Broken("receiving failed", EOFError("the daemon closed the connection"))
            got += k
        return bytes(buf)

    def read_reply(self, deadline: Optional[float], limit: float) -> Tuple[bytes, bytes]:
        """``(status, payload)``; ``KO`` has no payload."""
        status = self.recv_exact(2, deadline, limit)
        _core.check_status(status)
        if status == _core.KO:
            return status, b""
        n = _core.reply_length(self.recv_exact(8, deadline, limit))
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


class Client(_core.ClientBase):
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

    _conn: Optional[_Conn]

    # ---- connection ----------------------------------------------------------------

    def _reset(self) -> None:
        self._conn = None
        self._lock = threading.RLock()
        self._pid = os.getpid()
        _CLIENTS.add(self)

    def _forget_after_fork(self) -> None:
        conn = self._conn
        self._reset()
        self.dials = 0
        if conn is not None:
            conn.close()  # closes this process's descriptor only; the parent keeps its TLS session

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
            verify = trust.second_handshake(s.address, der)
            if verify is not None:
                sock.close()
                try:
                    sock = self._dial_once(verify, deadline)
                except ssl.SSLCertVerificationError as e:
                    raise trust.mismatch(s.address, der, e.verify_message or e) from None
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

    # ---- one call ------------------------------------------------------------------

    def _run(self, call: _calls.Call[T], progress: Optional[Progress] = None) -> T:
        """Makes ``call`` and returns its result; sends it once more on a fresh connection
        if the connection broke and the call is safe to repeat."""
        deadline = self._deadline()
        with self._lock:
            for attempt in (0, 1):
                conn, fresh = self._connection()
                try:
                    if call.needs_proof and not conn.proven:
                        self._exchange(conn, _calls.ping(), deadline, None).result()
                    outcome = self._exchange(conn, call, deadline, progress)
                except _core.Broken as e:
                    self._drop()
                    if call.repeatable and not fresh and attempt == 0:
                        continue
                    raise e.during(conn.address, call.func) from None
                except BaseException:
                    self._drop()
                    raise
                if not outcome.keep:
                    self._drop()
                return outcome.result()
        raise AssertionError("unreachable")

    def _exchange(
        self, conn: _Conn, call: _calls.Call[T], deadline: Optional[float], progress: Optional[Progress]
    ) -> "_calls.Outcome[T]":
        limit = self._settings.read_timeout
        body = _core.frame(call.body(self._password()))
        if call.sources:
            status, payload = self._upload(conn, body, call, progress, deadline)
        else:
            conn.send(body, deadline, limit)
            status, payload = conn.read_reply(deadline, limit + call.extra_wait)
        outcome = call.outcome(status, payload, conn.proven)
        conn.proven = outcome.proven
        return outcome

    def _upload(
        self, conn: _Conn, request: bytes, call: _calls.Call[T], progress: Optional[Progress], deadline: Optional[float]
    ) -> Tuple[bytes, bytes]:
        """Sends the request and the data frames, reusing one buffer; the reply."""
        sources, total = call.sources, call.upload_size
        limit = self._settings.read_timeout
        buf = bytearray(8 + min(self._settings.chunk_size, max(total, 1)))
        view = memoryview(buf)
        sent = 0
        try:
            conn.send(request, deadline, limit)
            for src in sources:
                left = src.size
                while left > 0:
                    n = _core.read_chunk_into(src, view[8 : 8 + min(len(buf) - 8, left)])
                    if n <= 0:
                        raise _core.file_shrank(src, left)
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
        except _core.Broken as e:
            # The daemon may have answered and closed while data was still being sent.
            try:
                return conn.read_reply(deadline, min(limit, 2.0))
            except (PcapdError, _core.Broken):
                pass
            raise _core.upload_cut(conn.address, sent, total, e.cause) from None

    def call(self, func: str, kwargs: Optional[Dict[str, Any]] = None) -> Any:
        """Calls any function that answers JSON and returns the decoded answer.

        Repeated on a fresh connection only for the functions known to be safe to repeat.
        """
        return self._run(_calls.call(func, kwargs))

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
            return self._run(_calls.submit(sources, tag, options), progress)
        finally:
            _core.close_sources(sources)

    def submit_paths(
        self,
        paths: Sequence[Union[str, "os.PathLike[str]"]],
        tag: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
    ) -> Job:
        """Submits files already under the daemon's ``spool_dir`` (paths relative to it)."""
        return self._run(_calls.submit_paths(paths, tag, options))

    def status(self, job_id: str) -> Job:
        """The job record."""
        return self._run(_calls.status(job_id))

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """Waits until the job is terminal, or ``timeout`` seconds passed (``None``: no limit).

        Returns the job as it stands then; check ``job.terminal``. The daemon holds each
        ``wait`` call up to 30 s, so this loops for longer waits.
        """
        waiting = _calls.Waiting(job_id, timeout)
        while True:
            job = self._run(waiting.next_call())
            if waiting.finished(job):
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
        return self._run(_calls.list_jobs(state, tag, limit, since))

    def logs(self, job_id: str) -> List[LogInfo]:
        """The logs a job produced (name, bytes, lines)."""
        return self._run(_calls.logs(job_id))

    def files(self, job_id: str) -> List[LogInfo]:
        """The files a job extracted (``extract_files/…``; fetch or save them by that name)."""
        return self._run(_calls.files(job_id))

    def fetch(self, job_id: str, log: str, offset: int = 0, length: Optional[int] = None) -> Iterator[bytes]:
        """The bytes of one log, as an iterator of chunks (each at most ``length`` bytes,
        daemon default and maximum 16 MiB) from ``offset``.

        Each chunk is one call; errors (``JobNotFound``, ``LogNotFound``) come from the
        first ``next()``. ``b"".join(client.fetch(id, "conn.log"))`` reads it whole.
        """
        while True:
            chunk = self._run(_calls.fetch(job_id, log, offset, length))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    def save(self, job_id: str, log: str, dest: Union[PathLike, IO[bytes]]) -> int:
        """Writes a log to ``dest`` (a path, written atomically, or a binary file object);
        returns the number of bytes written."""
        n = 0
        with _core.sink(dest) as f:
            for chunk in self.fetch(job_id, log):
                f.write(chunk)
                n += len(chunk)
        return n

    def cancel(self, job_id: str) -> Job:
        """Cancels a queued or running job; returns the record (terminal jobs unchanged)."""
        return self._run(_calls.cancel(job_id))

    def pool(self) -> PoolStatus:
        """The worker pool: every slot, the queue and the counters."""
        return self._run(_calls.pool())

    def ping(self) -> Dict[str, Any]:
        """``{"version", "uptime", "backend"}``."""
        return self._run(_calls.ping())

    # ---- bui-monitor's functions ---------------------------------------------------

    def monitor_version(self) -> str:
        """pcapd's version as bui-monitor answers it (bare text, e.g. ``"0.1.0"``)."""
        return self._run(_calls.monitor_version())

    def client_version(self) -> Optional[str]:
        """The burp client's version (``backend = burp``); ``None`` when the daemon has none."""
        return self._run(_calls.client_version())

    def server_version(self) -> Optional[str]:
        """The burp server's version (``backend = burp``); ``None`` when not known (yet)."""
        return self._run(_calls.server_version())

    def batch_list_supported(self) -> bool:
        """Whether the burp server is 2.0.48 or newer (bui-monitor's answer)."""
        return self._run(_calls.batch_list_supported())

    def statistics(self) -> Dict[str, Any]:
        """bui-monitor's statistics, plus pcapd's own under ``"pcapd"``."""
        return self._run(_calls.statistics())

    def query(self, query: str, cache: bool = True) -> Optional[bytes]:
        """A burp monitor status query (``backend = burp``): the JSON document burp printed,
        byte for byte, or ``None`` when burp had no answer (the daemon's ``KO``)."""
        return self._run(_calls.query(query, cache))

    def probe(self) -> None:
        """Sends the readiness probe (``RE``) on a connection of its own; raises
        :class:`ConnectionError` or :class:`TLSError` if the daemon cannot be reached."""
        conn = self._dial()
        try:
            conn.send(_core.PROBE, None, self._settings.read_timeout)
        except _core.Broken as e:
            raise ConnectionError(f"probe of pcapd at {conn.address} failed: {e.cause}") from None
        finally:
            conn.close()
