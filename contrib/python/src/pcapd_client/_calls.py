"""Every call the two clients make, without I/O: the request each one sends and what its
answer becomes.

A :class:`Call` is one request of ``docs/protocol.md``: its envelope (all but the password),
whether it may be sent again on a fresh connection, and how an ``OK`` payload becomes the
result (a :class:`~pcapd_client.models.Job`, a list of them, bytes, text).
:meth:`Call.outcome` turns any reply, ``OK``, ``KO`` or ``ER``, into the result or the error
to raise, and says whether the connection is still in step. ``sync.py`` and ``aio.py`` only
move the bytes::

    call = _calls.status(job_id)
    send(frame(call.body(password)))          # plus the data frames for an upload
    outcome = call.outcome(*read_reply(), proven=conn.proven)
    return outcome.result()                   # the Job, or raises the PcapdError
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Generic, List, Optional, Sequence, TypeVar, Union

from ._core import ER, KO, OK, Source
from .errors import AuthError, PcapdError, ProtocolError, error_from_reply
from .models import Job, LogInfo, PoolStatus

T = TypeVar("T")

#: Functions that may be sent again on a fresh connection when the connection broke: they
#: read, or (``cancel``) give the same result when repeated. Never ``submit``.
REPEATABLE = frozenset(
    {
        "status", "wait", "list", "logs", "fetch", "cancel", "pool", "ping",
        "monitor_version", "client_version", "server_version", "batch_list_supported",
        "statistics", "query",
    }
)

#: ``ER`` codes after which the daemon closes the connection (framing can't be trusted).
CLOSING_CODES = frozenset({"request_too_large", "upload_failed", "upload_too_large", "upload_size_mismatch"})

#: The longest the daemon is asked to hold one ``wait`` call; a longer wait is several calls.
WAIT_STEP = 30.0

# ``Call.no_result`` when a KO is never "no result" (it is the wrong password).
_KO_IS_AUTH: Any = object()


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one reply means: the result or the error, and the connection's state after it."""

    value: Optional[T]
    error: Optional[PcapdError]
    #: The connection is still open and in step (the daemon closes it after a wrong
    #: password, a framing error, or a refused upload).
    keep: bool
    #: The answer proves the password right on this connection (any ``OK`` or ``ER``).
    proven: bool

    def result(self) -> T:
        """The call's result, or raises its error."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # None is a valid T for KO results


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    func: str
    #: The request without the password: ``{"func", "args", "kwargs"}`` or a burp query.
    envelope: Dict[str, Any]
    #: ``decode(func, payload)``: the ``OK`` payload as the result.
    decode: Callable[[str, bytes], T]
    #: The result of a ``KO`` on a connection whose password is proven (bui-monitor's "no
    #: result"); by default a ``KO`` is the wrong password.
    no_result: Any = _KO_IS_AUTH
    #: Seconds the daemon may hold the answer beyond the read timeout (``wait``).
    extra_wait: float = 0.0
    #: The request is followed by the data frames of ``sources``; the daemon closes the
    #: connection after refusing an upload.
    sources: List[Source] = field(default_factory=list)

    @property
    def repeatable(self) -> bool:
        """Whether the call may be sent again on a fresh connection after a broken one."""
        return self.func in REPEATABLE and not self.sources

    @property
    def upload_size(self) -> int:
        """The bytes of the data frames that follow the request."""
        return sum(src.size for src in self.sources)

    @property
    def needs_proof(self) -> bool:
        """Whether the password must be proven first (a ``ping``), so that a ``KO`` to this
        call can only mean "no result", never a wrong password."""
        return self.no_result is not _KO_IS_AUTH

    def body(self, password: str) -> bytes:
        """The request frame's JSON body."""
        return json.dumps({"password": password, **self.envelope}, separators=(",", ":")).encode("utf-8")

    def outcome(self, status: bytes, payload: bytes, proven: bool) -> Outcome[T]:
        """What the reply ``status`` (``OK``/``KO``/``ER``) with ``payload`` means.

        Raises:
            ProtocolError: an ``OK`` payload that is not what this function answers.
        """
        if status == OK:
            return Outcome(self.decode(self.func, payload), None, keep=True, proven=True)
        if status == KO:
            if self.needs_proof and proven:
                return Outcome(self.no_result, None, keep=True, proven=True)
            error: PcapdError = AuthError(
                "authentication failed (wrong password); the daemon closed the connection"
            )
            return Outcome(None, error, keep=False, proven=False)
        assert status == ER, status
        error = error_from_reply(payload)
        keep = not self.sources and error.code not in CLOSING_CODES
        return Outcome(None, error, keep=keep, proven=True)


# ---- answers -----------------------------------------------------------------------------


def _json(func: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"the answer to {func} is not JSON: {e}") from None


def _object(func: str, body: bytes) -> Dict[str, Any]:
    value = _json(func, body)
    if not isinstance(value, dict):
        raise ProtocolError(f"the answer to {func} is not a JSON object")
    return value


def _job(func: str, body: bytes) -> Job:
    return Job.from_dict(_object(func, body))


def _jobs(func: str, body: bytes) -> List[Job]:
    jobs = _object(func, body).get("jobs")
    if not isinstance(jobs, list):
        raise ProtocolError(f"the answer to {func} has no jobs list")
    return [Job.from_dict(j) for j in jobs if isinstance(j, dict)]


def _logs(func: str, body: bytes) -> List[LogInfo]:
    logs = _object(func, body).get("logs") or []
    return [LogInfo.from_dict(x) for x in logs if isinstance(x, dict)]


def _files(func: str, body: bytes) -> List[LogInfo]:
    files = _object(func, body).get("files") or []
    return [LogInfo.from_dict(x) for x in files if isinstance(x, dict)]


def _pool(func: str, body: bytes) -> PoolStatus:
    return PoolStatus.from_dict(_object(func, body))


def _bytes(func: str, body: bytes) -> bytes:
    return body


def _text(func: str, body: bytes) -> str:
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ProtocolError(f"the answer to {func} is not UTF-8 text") from None


def _bool(func: str, body: bytes) -> bool:
    text = _text(func, body).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ProtocolError(f"the answer to {func} is not a boolean: {text!r}")


# ---- requests ----------------------------------------------------------------------------


def _function(func: str, decode: Callable[[str, bytes], T], kwargs: Optional[Dict[str, Any]] = None, **rest: Any) -> Call[T]:
    envelope = {"func": func, "args": [], "kwargs": dict(kwargs or {})}
    return Call(func, envelope, decode, **rest)


def _given(**kwargs: Any) -> Dict[str, Any]:
    """The keyword arguments that were given (``None`` means "the daemon's default")."""
    return {k: v for k, v in kwargs.items() if v is not None}


def call(func: str, kwargs: Optional[Dict[str, Any]] = None) -> Call[Any]:
    """Any function that answers JSON; the decoded JSON is the result."""
    return _function(func, _json, kwargs)


def submit(sources: List[Source], tag: Optional[str], options: Optional[Dict[str, Any]]) -> Call[Job]:
    """An upload of ``sources`` as one job; their data frames follow the request."""
    declared = [{"name": src.name, "size": src.size} for src in sources]
    kwargs = {"files": declared, "options": dict(options or {}), **_given(tag=tag)}
    return _function("submit", _job, kwargs, sources=sources)


def submit_paths(
    paths: Union[str, "os.PathLike[str]", Sequence[Union[str, "os.PathLike[str]"]]],
    tag: Optional[str],
    options: Optional[Dict[str, Any]],
) -> Call[Job]:
    """A job of files already under the daemon's ``spool_dir``."""
    items = [paths] if isinstance(paths, (str, bytes, os.PathLike)) else list(paths)
    kwargs = {"paths": [os.fspath(p) for p in items], "options": dict(options or {}), **_given(tag=tag)}
    return _function("submit", _job, kwargs)


def status(job_id: str) -> Call[Job]:
    return _function("status", _job, {"job_id": job_id})


def wait(job_id: str, timeout: float) -> Call[Job]:
    """One ``wait`` call: the daemon answers when the job is terminal or after ``timeout``."""
    return _function("wait", _job, {"job_id": job_id, "timeout": timeout}, extra_wait=timeout)


def list_jobs(state: Optional[str], tag: Optional[str], limit: Optional[int], since: Optional[str]) -> Call[List[Job]]:
    return _function("list", _jobs, _given(state=state, tag=tag, limit=limit, since=since))


def logs(job_id: str) -> Call[List[LogInfo]]:
    return _function("logs", _logs, {"job_id": job_id})


def files(job_id: str) -> Call[List[LogInfo]]:
    """The files a job extracted: names ``extract_files/…`` that ``fetch`` takes, and sizes."""
    return _function("files", _files, {"job_id": job_id})


def fetch(job_id: str, log: str, offset: int, length: Optional[int]) -> Call[bytes]:
    """One chunk of a log from ``offset``; empty at the end."""
    return _function("fetch", _bytes, {"job_id": job_id, "log": log, "offset": offset, **_given(length=length)})


def cancel(job_id: str) -> Call[Job]:
    return _function("cancel", _job, {"job_id": job_id})


def pool() -> Call[PoolStatus]:
    return _function("pool", _pool)


def ping() -> Call[Dict[str, Any]]:
    return _function("ping", _object)


def monitor_version() -> Call[str]:
    return _function("monitor_version", _text)


def client_version() -> Call[Optional[str]]:
    return _function("client_version", _text, no_result=None)


def server_version() -> Call[Optional[str]]:
    return _function("server_version", _text, no_result=None)


def batch_list_supported() -> Call[bool]:
    return _function("batch_list_supported", _bool, no_result=False)


def statistics() -> Call[Dict[str, Any]]:
    return _function("statistics", _object)


def query(query: str, cache: bool) -> Call[Optional[bytes]]:
    """A burp status query (bui-monitor's other request form); ``KO`` means no answer."""
    if not query.endswith("\n"):
        query += "\n"
    return Call("query", {"query": query, "cache": bool(cache)}, _bytes, no_result=None)


class Waiting:
    """The calls of one ``wait(job_id, timeout)`` (``None``: no limit), each at most
    :data:`WAIT_STEP` seconds long."""

    def __init__(self, job_id: str, timeout: Optional[float]) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.started = time.monotonic()

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def next_call(self) -> Call[Job]:
        step = WAIT_STEP if self.timeout is None else max(0.0, min(WAIT_STEP, self.timeout - self._elapsed()))
        return wait(self.job_id, step)

    def finished(self, job: Job) -> bool:
        """Whether ``job``, the answer to the last call, is what ``wait`` returns."""
        return job.terminal or (self.timeout is not None and self._elapsed() >= self.timeout)
