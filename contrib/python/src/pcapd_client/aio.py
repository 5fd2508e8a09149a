"""The asyncio client: :class:`AsyncClient`, a few persistent connections lent to calls.

The requests and what their answers mean are :mod:`pcapd_client._calls`'s; this module moves
their bytes over asyncio streams: dialling (TLS pinning, :mod:`pcapd_client._tls`), lending
connections, the one re-dial of a repeatable call, an upload's data frames read while the
answer is awaited.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from typing import IO, Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar, Union

from . import _calls, _core
from ._core import FileArg, Progress
from .config import PathLike
from .errors import BadRequest, CallTimeout, ConnectionError, PcapdError, TLSError
from .models import Job, LogInfo, PoolStatus

__all__ = ["AsyncClient"]

T = TypeVar("T")


class _AConn:
    """One connection over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        self.reader = reader
        self.writer = writer
        self.address = address
        self.proven = False  # an OK or ER was received on it: the password is right

    def usable(self) -> bool:
        """False when the daemon closed it (idle_timeout, restart) or sent something unasked."""
        return not (
            self.writer.is_closing()
            or self.reader.at_eof()
            or self.reader.exception() is not None
            or len(getattr(self.reader, "_buffer", b"")) > 0
        )

    def close(self) -> None:
        try:
            self.writer.close()
        except (OSError, RuntimeError):
            pass

    async def send(self, data: bytes, deadline: Optional[float], limit: float, more: bytes = b"") -> None:
        try:
            self.writer.write(data)
            if more:
                self.writer.write(more)
            await asyncio.wait_for(self.writer.drain(), _core.time_left(deadline, limit, self.address))
        except asyncio.TimeoutError:
            raise CallTimeout(f"sending to pcapd at {self.address} timed out") from None
        except (OSError, ssl.SSLError, RuntimeError) as e:
            raise _core.Broken("sending failed", e) from None

    async def recv_exact(self, n: int, deadline: Optional[float], limit: Optional[float]) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.readexactly(n), _core.time_left(deadline, limit, self.address))
        except asyncio.TimeoutError:
            raise CallTimeout(f"no answer from pcapd at {self.address} in time") from None
        except asyncio.IncompleteReadError:
            raise _core.Broken("receiving failed", EOFError("the daemon closed the connection")) from None
        except (OSError, ssl.SSLError) as e:
            raise _core.Broken("receiving failed", e) from None

    async def read_reply(self, deadline: Optional[float], limit: Optional[float]) -> Tuple[bytes, bytes]:
        """``(status, payload)``; ``KO`` has no payload."""
        status = await self.recv_exact(2, deadline, limit)
        _core.check_status(status)
        if status == _core.KO:
            return status, b""
        n = _core.reply_length(await self.recv_exact(8, deadline, limit))
        return status, (await self.recv_exact(n, deadline, limit)) if n else b""


class AsyncClient(_core.ClientBase):
    """The asyncio client, with the same methods as :class:`~pcapd_client.Client`.

    It keeps up to ``max_connections`` persistent connections (default 4) and lends one to
    each call, so many concurrent calls from one event loop share a handful of connections;
    calls beyond that wait for a free one. Connections are opened when needed, and forgotten
    when the process forked or the client is used from another event loop. A connection
    found broken is dialled again once for calls safe to repeat (never an upload).

    Arguments are those of :class:`~pcapd_client.Client` (all but ``host``, ``port`` and
    ``password`` by keyword), plus ``max_connections``.

    Example::

        async with AsyncClient.from_config("/etc/pcapd/pcapd.cfg") as pcapd:
            job = await pcapd.submit(["capture.pcap"])
            job = await pcapd.wait(job.job_id)
            async for chunk in pcapd.fetch(job.job_id, "conn.log"):
                ...
    """

    _idle: List[_AConn]
    _open: int
    _sem: Optional[asyncio.Semaphore]
    _loop: Optional[asyncio.AbstractEventLoop]

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        password: Optional[str] = None,
        *,
        max_connections: int = 4,
        **options: Any,
    ) -> None:
        if max_connections < 1:
            raise BadRequest("max_connections must be at least 1")
        self.max_connections = max_connections
        super().__init__(host, port, password, **options)

    @property
    def open_connections(self) -> int:
        """Connections currently open (idle or lent to a call)."""
        return self._open

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the idle connections (those lent to calls close when the calls end)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._open -= 1
        for conn in idle:
            try:
                await asyncio.wait_for(conn.writer.wait_closed(), 1.0)
            except (asyncio.TimeoutError, OSError, ssl.SSLError, RuntimeError):
                pass

    # ---- connections ---------------------------------------------------------------

    def _reset(self) -> None:
        # The old connections are not ours to use (nor to close: their transports belong to
        # the parent process or to another event loop).
        self._idle = []
        self._open = 0
        self._sem = None
        self._loop = None
        self._pid = os.getpid()

    def _check_process_and_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():
            self._reset()
            self.dials = 0
        if self._loop is not loop:
            self._reset()
            self._loop = loop
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.max_connections)
        return self._sem

    async def _dial_once(self, ctx: Optional[ssl.SSLContext], deadline: float) -> Tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        s = self._settings
        left = max(0.001, deadline - time.monotonic())
        kwargs: Dict[str, Any] = {}
        if ctx is not None:
            assert self._trust is not None
            kwargs = {"ssl": ctx, "server_hostname": self._trust.sni(), "ssl_handshake_timeout": left}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(s.host, s.port, limit=1 << 20, **kwargs), left
            )
        except asyncio.TimeoutError:
            raise CallTimeout(f"connection to pcapd at {s.address} timed out") from None
        except ssl.SSLCertVerificationError:
            raise
        except ssl.SSLError as e:
            raise TLSError(f"TLS handshake with pcapd at {s.address} failed: {e}") from None
        except OSError as e:
            raise ConnectionError(f"cannot connect to pcapd at {s.address}: {e.strerror or e}") from None
        return reader, writer

    async def _dial(self) -> _AConn:
        s = self._settings
        deadline = time.monotonic() + s.connect_timeout
        trust = self._trust
        if trust is None:
            reader, writer = await self._dial_once(None, deadline)
        else:
            reader, writer = await self._dial_once(trust.pin_context, deadline)
            sslobj = writer.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
            verify = trust.second_handshake(s.address, der)
            if verify is not None:
                writer.close()
                try:
                    reader, writer = await self._dial_once(verify, deadline)
                except ssl.SSLCertVerificationError as e:
                    raise trust.mismatch(s.address, der, e.verify_message or e) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.dials += 1
        return _AConn(reader, writer, s.address)

    async def _acquire(self) -> Tuple[_AConn, bool]:
        """A connection lent to one call, and whether it was dialled just now."""
        sem = self._check_process_and_loop()
        await sem.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if conn.usable():
                    return conn, False
                conn.close()
                self._open -= 1
            conn = await self._dial()
            self._open += 1
            return conn, True
        except BaseException:
            sem.release()
            raise

    def _release(self, conn: _AConn, keep: bool) -> None:
        if self._loop is not asyncio.get_running_loop():
            return
        if keep and conn.usable():
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        if self._sem is not None:
            self._sem.release()

    # ---- one call ------------------------------------------------------------------

    async def _run(self, call: _calls.Call[T], progress: Optional[Progress] = None) -> T:
        """Makes ``call`` and returns its result; sends it once more on a fresh connection
        if the connection broke and the call is safe to repeat."""
        deadline = self._deadline()
        for attempt in (0, 1):
            conn, fresh = await self._acquire()
            keep = False
            try:
                if call.needs_proof and not conn.proven:
                    (await self._exchange(conn, _calls.ping(), deadline, None)).result()
                outcome = await self._exchange(conn, call, deadline, progress)
                keep = outcome.keep
            except _core.Broken as e:
                if call.repeatable and not fresh and attempt == 0:
                    continue
                raise e.during(conn.address, call.func) from None
            finally:
                self._release(conn, keep)
            return outcome.result()
        raise AssertionError("unreachable")

    async def _exchange(
        self, conn: _AConn, call: _calls.Call[T], deadline: Optional[float], progress: Optional[Progress]
    ) -> "_calls.Outcome[T]":
        limit = self._settings.read_timeout
        body = _core.frame(call.body(self._password()))
        if call.sources:
            status, payload = await self._upload(conn, body, call, progress, deadline)
        else:
            await conn.send(body, deadline, limit)
            status, payload = await conn.read_reply(deadline, limit + call.extra_wait)
        outcome = call.outcome(status, payload, conn.proven)
        conn.proven = outcome.proven
        return outcome

    async def _upload(
        self, conn: _AConn, request: bytes, call: _calls.Call[T], progress: Optional[Progress], deadline: Optional[float]
    ) -> Tuple[bytes, bytes]:
        """Sends the request and the data frames while awaiting the reply; the reply."""
        sources, total = call.sources, call.upload_size
        limit = self._settings.read_timeout
        chunk = self._settings.chunk_size
        sent = 0
        # The answer is read concurrently: a refusal (queue_full, …) arrives before the end.
        # Its deadline is the whole call's; each read waits at most the time left of it.
        reply = asyncio.ensure_future(conn.read_reply(deadline, None))
        try:
            try:
                await conn.send(request, deadline, limit)
                for src in sources:
                    left = src.size
                    is_async = asyncio.iscoroutinefunction(getattr(src.fileobj, "read", None))
                    while left > 0 and not reply.done():
                        want = min(chunk, left)
                        if is_async:
                            data = await src.fileobj.read(want)
                        else:
                            data = await asyncio.get_running_loop().run_in_executor(
                                None, _core.read_chunk, src, want
                            )
                        if not data:
                            raise _core.file_shrank(src, left)
                        await conn.send(_core.header(len(data)), deadline, limit, data)
                        left -= len(data)
                        sent += len(data)
                        if progress is not None:
                            progress(sent, total)
            except _core.Broken as e:
                try:
                    return await asyncio.wait_for(asyncio.shield(reply), 2.0)
                except (asyncio.TimeoutError, PcapdError, _core.Broken):
                    pass
                raise _core.upload_cut(conn.address, sent, total, e.cause) from None
            try:
                timeout = limit if deadline is None else max(0.001, min(limit, deadline - time.monotonic()))
                if reply.done():
                    return reply.result()
                return await asyncio.wait_for(asyncio.shield(reply), timeout)
            except asyncio.TimeoutError:
                raise CallTimeout(f"no answer from pcapd at {conn.address} within {limit:g} s") from None
            except _core.Broken as e:
                raise _core.upload_cut(conn.address, sent, total, e.cause) from None
        finally:
            if not reply.done():
                reply.cancel()
                try:
                    await reply
                except BaseException:
                    pass
            elif not reply.cancelled():
                reply.exception()  # mark it retrieved

    async def call(self, func: str, kwargs: Optional[Dict[str, Any]] = None) -> Any:
        """Calls any function that answers JSON and returns the decoded answer."""
        return await self._run(_calls.call(func, kwargs))

    # ---- pcapd's functions ---------------------------------------------------------

    async def submit(
        self,
        files: Union[FileArg, Iterable[FileArg]],
        tag: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
        progress: Optional[Progress] = None,
    ) -> Job:
        """Uploads capture files as one job (see :meth:`pcapd_client.Client.submit`).

        Files are read in a worker thread, chunk by chunk, so the event loop never blocks
        on the disk. A file object whose ``read`` is a coroutine function (e.g. Starlette's
        ``UploadFile``) is awaited instead; give its size: ``(name, upload, size)``.
        """
        sources = _core.open_sources(files)
        try:
            return await self._run(_calls.submit(sources, tag, options), progress)
        finally:
            _core.close_sources(sources)

    async def submit_paths(
        self,
        paths: Sequence[Union[str, "os.PathLike[str]"]],
        tag: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
    ) -> Job:
        """Submits files already under the daemon's ``spool_dir``."""
        return await self._run(_calls.submit_paths(paths, tag, options))

    async def status(self, job_id: str) -> Job:
        """The job record."""
        return await self._run(_calls.status(job_id))

    async def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """Waits until the job is terminal or ``timeout`` seconds passed (``None``: no limit)."""
        waiting = _calls.Waiting(job_id, timeout)
        while True:
            job = await self._run(waiting.next_call())
            if waiting.finished(job):
                return job

    async def list(
        self,
        state: Optional[str] = None,
        tag: Optional[str] = None,
        limit: Optional[int] = None,
        since: Optional[str] = None,
    ) -> List[Job]:
        """Jobs, newest first (see :meth:`pcapd_client.Client.list`)."""
        return await self._run(_calls.list_jobs(state, tag, limit, since))

    async def logs(self, job_id: str) -> List[LogInfo]:
        """The logs a job produced."""
        return await self._run(_calls.logs(job_id))

    async def files(self, job_id: str) -> List[LogInfo]:
        """The files a job extracted (``extract_files/…``; fetch or save them by that name)."""
        return await self._run(_calls.files(job_id))

    async def fetch(
        self, job_id: str, log: str, offset: int = 0, length: Optional[int] = None
    ) -> AsyncIterator[bytes]:
        """The bytes of one log as an async iterator of chunks (``async for``)."""
        while True:
            chunk = await self._run(_calls.fetch(job_id, log, offset, length))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    async def save(self, job_id: str, log: str, dest: Union[PathLike, IO[bytes]]) -> int:
        """Writes a log to ``dest`` (a path, written atomically, or a binary file object)."""
        n = 0
        with _core.sink(dest) as f:
            async for chunk in self.fetch(job_id, log):
                f.write(chunk)
                n += len(chunk)
        return n

    async def cancel(self, job_id: str) -> Job:
        """Cancels a queued or running job."""
        return await self._run(_calls.cancel(job_id))

    async def pool(self) -> PoolStatus:
        """The worker pool."""
        return await self._run(_calls.pool())

    async def ping(self) -> Dict[str, Any]:
        """``{"version", "uptime", "backend"}``."""
        return await self._run(_calls.ping())

    # ---- bui-monitor's functions ---------------------------------------------------

    async def monitor_version(self) -> str:
        """pcapd's version (bare text)."""
        return await self._run(_calls.monitor_version())

    async def client_version(self) -> Optional[str]:
        """The burp client's version, ``None`` without ``backend = burp``."""
        return await self._run(_calls.client_version())

    async def server_version(self) -> Optional[str]:
        """The burp server's version, ``None`` when not known."""
        return await self._run(_calls.server_version())

    async def batch_list_supported(self) -> bool:
        """Whether the burp server is 2.0.48 or newer."""
        return await self._run(_calls.batch_list_supported())

    async def statistics(self) -> Dict[str, Any]:
        """bui-monitor's statistics, plus pcapd's own under ``"pcapd"``."""
        return await self._run(_calls.statistics())

    async def query(self, query: str, cache: bool = True) -> Optional[bytes]:
        """A burp status query: burp's JSON document as bytes, or ``None`` for ``KO``."""
        return await self._run(_calls.query(query, cache))
