"""The asyncio client: :class:`AsyncClient`."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from typing import IO, Any, AsyncIterator, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _core
from ._core import FileArg, Progress
from ._tls import Trust
from .config import DEFAULT_CHUNK, PathLike, Settings, resolve
from .errors import (
    BadRequest,
    CallTimeout,
    ConnectionError,
    PcapdError,
    TLSError,
    UploadFailed,
)
from .models import Job, LogInfo, PoolStatus

__all__ = ["AsyncClient"]


class _Broken(Exception):
    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {cause}")
        self.cause = cause


class _AConn:
    """One connection over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, address: str) -> None:
        self.reader = reader
        self.writer = writer
        self.address = address
        self.authenticated = False

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

    def _timeout(self, deadline: Optional[float], limit: Optional[float]) -> Optional[float]:
        if deadline is None:
            return limit
        left = deadline - time.monotonic()
        if left <= 0:
            raise CallTimeout(f"call to pcapd at {self.address} timed out")
        return left if limit is None else min(limit, left)

    async def send(self, data: bytes, deadline: Optional[float], limit: float, more: bytes = b"") -> None:
        try:
            self.writer.write(data)
            if more:
                self.writer.write(more)
            await asyncio.wait_for(self.writer.drain(), self._timeout(deadline, limit))
        except asyncio.TimeoutError:
            raise CallTimeout(f"sending to pcapd at {self.address} timed out") from None
        except (OSError, ssl.SSLError, RuntimeError) as e:
            raise _Broken("sending failed", e) from None

    async def recv_exact(self, n: int, deadline: Optional[float], limit: Optional[float]) -> bytes:
        try:
            return await asyncio.wait_for(self.reader.readexactly(n), self._timeout(deadline, limit))
        except asyncio.TimeoutError:
            raise CallTimeout(f"no answer from pcapd at {self.address} in time") from None
        except asyncio.IncompleteReadError:
            raise _Broken("receiving failed", EOFError("the daemon closed the connection")) from None
        except (OSError, ssl.SSLError) as e:
            raise _Broken("receiving failed", e) from None

    async def read_reply(self, deadline: Optional[float], limit: Optional[float]) -> Tuple[bytes, bytes]:
        status = await self.recv_exact(2, deadline, limit)
        _core.check_status(status)
        if status == _core.KO:
            return status, b""
        n = _core.reply_length(status, await self.recv_exact(8, deadline, limit))
        return status, (await self.recv_exact(n, deadline, limit)) if n else b""


class AsyncClient:
    """The asyncio client, with the same methods as :class:`~pcapd_client.Client`.

    It keeps up to ``max_connections`` persistent connections (default 4) and lends one to
    each call, so many concurrent calls from one event loop share a handful of connections;
    calls beyond that wait for a free one. Connections are opened when needed, and forgotten
    when the process forked or the client is used from another event loop. A connection
    found broken is dialled again once for calls safe to repeat (never an upload).

    Arguments are those of :class:`~pcapd_client.Client`, plus ``max_connections``.

    Example::

        async with AsyncClient.from_config("/etc/pcapd/pcapd.cfg") as pcapd:
            job = await pcapd.submit(["capture.pcap"])
            job = await pcapd.wait(job.job_id)
            async for chunk in pcapd.fetch(job.job_id, "conn.log"):
                ...
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
        max_connections: int = 4,
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
        if max_connections < 1:
            raise BadRequest("max_connections must be at least 1")
        self._settings = settings
        self._trust = Trust(settings.ca, settings.server_name or settings.host) if settings.ca else None
        self.max_connections = max_connections
        self._idle: List[_AConn] = []
        self._open = 0
        self._sem: Optional[asyncio.Semaphore] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pid = os.getpid()
        #: Connections dialled so far by this process.
        self.dials = 0

    @classmethod
    def from_config(cls, path: PathLike, **overrides: Any) -> "AsyncClient":
        """A client for the daemon configured by ``path``; keyword arguments override it."""
        return cls(config=path, **overrides)

    @property
    def settings(self) -> Settings:
        return self._settings

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

    def _check_process_and_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid() or self._loop is not loop:
            # A forked child or another event loop: the old connections are not ours to use
            # (nor to close: their transports belong to the other loop).
            self._idle = []
            self._open = 0
            self._sem = None
            self._loop = loop
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self.dials = 0
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
            if not trust.is_pinned(der):
                writer.close()
                if trust.verify_context is None:
                    raise TLSError(trust.mismatch_message(s.address, der, "the trusted file holds no usable CA"))
                try:
                    reader, writer = await self._dial_once(trust.verify_context, deadline)
                except ssl.SSLCertVerificationError as e:
                    raise TLSError(trust.mismatch_message(s.address, der, e.verify_message or e)) from None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.dials += 1
        return _AConn(reader, writer, s.address)

    async def _acquire(self) -> Tuple[_AConn, bool]:
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

    def _deadline(self) -> Optional[float]:
        t = self._settings.call_timeout
        return None if t is None else time.monotonic() + t

    @staticmethod
    def _outcome(
        conn: _AConn, status: bytes, payload: bytes, ko_is_none: bool
    ) -> Tuple[Optional[bytes], bool, Optional[PcapdError]]:
        """``(payload, keep the connection, error to raise)``."""
        if status == _core.OK:
            conn.authenticated = True
            return payload, True, None
        if status == _core.KO:
            if ko_is_none and conn.authenticated:
                return None, True, None
            return None, False, _core.auth_error()
        conn.authenticated = True
        error = _core.error_for(payload)
        return None, error.code not in _core.CLOSING_CODES, error

    async def _exchange(
        self, func: str, body: bytes, *, extra_wait: float = 0.0, ko_is_none: bool = False
    ) -> Optional[bytes]:
        retry = func in _core.IDEMPOTENT
        limit = self._settings.read_timeout
        deadline = self._deadline()
        for attempt in (0, 1):
            conn, fresh = await self._acquire()
            keep = False
            try:
                if ko_is_none and not conn.authenticated:
                    await self._authenticate(conn, deadline)
                await conn.send(_core.frame(body), deadline, limit)
                status, payload = await conn.read_reply(deadline, limit + extra_wait)
                out, keep, error = self._outcome(conn, status, payload, ko_is_none)
            except _Broken as e:
                if retry and not fresh and attempt == 0:
                    continue
                raise ConnectionError(
                    f"connection to pcapd at {conn.address} broke during {func}: {e.cause}"
                ) from None
            finally:
                self._release(conn, keep)
            if error is not None:
                raise error
            return out
        raise AssertionError("unreachable")

    async def _authenticate(self, conn: _AConn, deadline: Optional[float]) -> None:
        limit = self._settings.read_timeout
        await conn.send(_core.frame(_core.call_body(self._settings.get_password(), "ping", {})), deadline, limit)
        status, _ = await conn.read_reply(deadline, limit)
        if status == _core.KO:
            raise _core.auth_error()
        conn.authenticated = True

    async def _call_raw(self, func: str, kwargs: Dict[str, Any], *, extra_wait: float = 0.0) -> bytes:
        body = _core.call_body(self._settings.get_password(), func, kwargs)
        out = await self._exchange(func, body, extra_wait=extra_wait)
        assert out is not None
        return out

    async def call(self, func: str, kwargs: Optional[Dict[str, Any]] = None) -> Any:
        """Calls any function that answers JSON and returns the decoded answer."""
        return _core.decode_json(func, await self._call_raw(func, dict(kwargs or {})))

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
            declared = [{"name": src.name, "size": src.size} for src in sources]
            body = _core.call_body(
                self._settings.get_password(), "submit", _core.submit_kwargs(declared, tag, options)
            )
            conn, _ = await self._acquire()
            keep = False
            try:
                status, payload = await self._upload(conn, body, sources, progress)
                out, keep, error = self._outcome(conn, status, payload, False)
            finally:
                # the daemon closes after refusing an upload
                self._release(conn, keep and error is None)
            if error is not None:
                raise error
        finally:
            for src in sources:
                src.close()
        assert out is not None
        return Job.from_dict(_core.expect_dict("submit", _core.decode_json("submit", out)))

    async def _upload(
        self, conn: _AConn, body: bytes, sources: List[_core.Source], progress: Optional[Progress]
    ) -> Tuple[bytes, bytes]:
        deadline = self._deadline()
        limit = self._settings.read_timeout
        total = sum(src.size for src in sources)
        chunk = self._settings.chunk_size
        sent = 0
        # The answer is read concurrently: a refusal (queue_full, …) arrives before the end.
        # Its deadline is the whole call's; each read waits at most the time left of it.
        reply = asyncio.ensure_future(conn.read_reply(deadline, None))
        try:
            try:
                await conn.send(_core.frame(body), deadline, limit)
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
                            raise UploadFailed(
                                f"{src.name}: the file ended after {src.size - left} of {src.size} "
                                "bytes (it shrank while uploading); nothing was stored"
                            )
                        await conn.send(_core.header(len(data)), deadline, limit, data)
                        left -= len(data)
                        sent += len(data)
                        if progress is not None:
                            progress(sent, total)
            except _Broken as e:
                try:
                    return await asyncio.wait_for(asyncio.shield(reply), 2.0)
                except (asyncio.TimeoutError, PcapdError, _Broken):
                    pass
                raise _core.upload_cut(conn.address, sent, total, e.cause) from None
            try:
                timeout = limit if deadline is None else max(0.001, min(limit, deadline - time.monotonic()))
                if reply.done():
                    return reply.result()
                return await asyncio.wait_for(asyncio.shield(reply), timeout)
            except asyncio.TimeoutError:
                raise CallTimeout(f"no answer from pcapd at {conn.address} within {limit:g} s") from None
            except _Broken as e:
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

    async def submit_paths(
        self,
        paths: Sequence[Union[str, "os.PathLike[str]"]],
        tag: Optional[str] = None,
        options: Optional[Dict[str, Any]] = None,
    ) -> Job:
        """Submits files already under the daemon's ``spool_dir``."""
        value = await self.call("submit", _core.paths_kwargs(paths, tag, options))
        return Job.from_dict(_core.expect_dict("submit", value))

    async def status(self, job_id: str) -> Job:
        """The job record."""
        return Job.from_dict(_core.expect_dict("status", await self.call("status", {"job_id": job_id})))

    async def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """Waits until the job is terminal or ``timeout`` seconds passed (``None``: no limit)."""
        start = time.monotonic()
        while True:
            step = 30.0 if timeout is None else max(0.0, min(30.0, timeout - (time.monotonic() - start)))
            raw = await self._call_raw("wait", {"job_id": job_id, "timeout": step}, extra_wait=step)
            job = Job.from_dict(_core.expect_dict("wait", _core.decode_json("wait", raw)))
            if job.terminal or (timeout is not None and time.monotonic() - start >= timeout):
                return job

    async def list(
        self,
        state: Optional[str] = None,
        tag: Optional[str] = None,
        limit: Optional[int] = None,
        since: Optional[str] = None,
    ) -> List[Job]:
        """Jobs, newest first (see :meth:`pcapd_client.Client.list`)."""
        value = await self.call("list", _core.list_kwargs(state, tag, limit, since))
        return [Job.from_dict(j) for j in _core.jobs_of("list", value)]

    async def logs(self, job_id: str) -> List[LogInfo]:
        """The logs a job produced."""
        value = _core.expect_dict("logs", await self.call("logs", {"job_id": job_id}))
        return [LogInfo.from_dict(x) for x in value.get("logs") or [] if isinstance(x, dict)]

    async def fetch(
        self, job_id: str, log: str, offset: int = 0, length: Optional[int] = None
    ) -> AsyncIterator[bytes]:
        """The bytes of one log as an async iterator of chunks (``async for``)."""
        while True:
            chunk = await self._call_raw("fetch", _core.fetch_kwargs(job_id, log, offset, length))
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    async def save(self, job_id: str, log: str, dest: Union[PathLike, IO[bytes]]) -> int:
        """Writes a log to ``dest`` (a path, written atomically, or a binary file object)."""
        if hasattr(dest, "write"):
            n = 0
            async for chunk in self.fetch(job_id, log):
                dest.write(chunk)
                n += len(chunk)
            return n
        import tempfile

        path = os.fspath(dest)
        fd, tmp = tempfile.mkstemp(prefix=".pcapd-", dir=os.path.dirname(os.path.abspath(path)))
        try:
            with os.fdopen(fd, "wb") as f:
                n = await self.save(job_id, log, f)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return n

    async def cancel(self, job_id: str) -> Job:
        """Cancels a queued or running job."""
        return Job.from_dict(_core.expect_dict("cancel", await self.call("cancel", {"job_id": job_id})))

    async def pool(self) -> PoolStatus:
        """The worker pool."""
        return PoolStatus.from_dict(_core.expect_dict("pool", await self.call("pool", {})))

    async def ping(self) -> Dict[str, Any]:
        """``{"version", "uptime", "backend"}``."""
        return _core.expect_dict("ping", await self.call("ping", {}))

    # ---- bui-monitor's functions ---------------------------------------------------

    async def _text(self, func: str, ko_is_none: bool) -> Optional[bytes]:
        body = _core.call_body(self._settings.get_password(), func, {})
        return await self._exchange(func, body, ko_is_none=ko_is_none)

    async def monitor_version(self) -> str:
        """pcapd's version (bare text)."""
        return _core.decode_text("monitor_version", (await self._text("monitor_version", False)) or b"")

    async def client_version(self) -> Optional[str]:
        """The burp client's version, ``None`` without ``backend = burp``."""
        out = await self._text("client_version", True)
        return None if out is None else _core.decode_text("client_version", out)

    async def server_version(self) -> Optional[str]:
        """The burp server's version, ``None`` when not known."""
        out = await self._text("server_version", True)
        return None if out is None else _core.decode_text("server_version", out)

    async def batch_list_supported(self) -> bool:
        """Whether the burp server is 2.0.48 or newer."""
        out = await self._text("batch_list_supported", True)
        return False if out is None else _core.decode_bool("batch_list_supported", out)

    async def statistics(self) -> Dict[str, Any]:
        """bui-monitor's statistics, plus pcapd's own under ``"pcapd"``."""
        out = await self._text("statistics", False)
        return _core.expect_dict("statistics", _core.decode_json("statistics", out or b""))

    async def query(self, query: str, cache: bool = True) -> Optional[bytes]:
        """A burp status query: burp's JSON document as bytes, or ``None`` for ``KO``."""
        if not query.endswith("\n"):
            query += "\n"
        body = _core.query_body(self._settings.get_password(), query, cache)
        return await self._exchange("query", body, ko_is_none=True)
