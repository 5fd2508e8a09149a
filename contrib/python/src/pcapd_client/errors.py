"""The exceptions the client raises.

Every exception is a :class:`PcapdError`, with the server's error ``code`` and ``message``
(``docs/protocol.md`` lists the codes) when the server answered ``ER``, or ``code = None``
when the failure happened on the client's side (connecting, TLS, a broken connection).

Catch the subclasses a caller can act on::

    try:
        job = client.submit(["a.pcap"])
    except QueueFull as e:        # nothing was stored; retry later
        retry_later(e.hint)
    except AuthError:             # wrong password: fix the configuration
        raise

:class:`ConnectionError` here is ``pcapd_client.ConnectionError``, a :class:`PcapdError`,
not Python's built-in ``ConnectionError``.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional, Type

__all__ = [
    "PcapdError",
    "AuthError",
    "QueueFull",
    "DiskFull",
    "NotFound",
    "JobNotFound",
    "LogNotFound",
    "UploadTooLarge",
    "UploadFailed",
    "BadRequest",
    "Unsupported",
    "Unavailable",
    "ShuttingDown",
    "ServerError",
    "ProtocolError",
    "ConnectionError",
    "TLSError",
    "CallTimeout",
    "ConfigError",
]


class PcapdError(Exception):
    """Base class of every error of this package.

    Attributes:
        code: the server's error code (``"queue_full"``, ``"not_found"``, …), or ``None``
            when the error did not come from the server.
        message: the server's message, or a description of the client-side failure.
    """

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        if self.code:
            return f"{self.code}: {self.message}"
        return self.message


class AuthError(PcapdError):
    """The server answered ``KO`` to a function call: the password is wrong.

    The server closes the connection after it; the next call dials again.
    """


class QueueFull(PcapdError):
    """``queue_full``: the daemon's queue holds ``max_queue`` jobs. Nothing was stored.

    Attributes:
        hint: the server's advice, e.g. ``"the job queue is full (1000 jobs); try again later"``.
    """

    @property
    def hint(self) -> str:
        return self.message


class DiskFull(PcapdError):
    """``disk_full``: the daemon's disk is below its ``min_free``. Nothing was stored; submit
    again once the operator has freed space (the daemon resumes by itself)."""


class NotFound(PcapdError):
    """``not_found``: no such job, or no such log of that job."""


class JobNotFound(NotFound):
    """``not_found``: the daemon has no job with that id (never had, or retention removed it)."""


class LogNotFound(NotFound):
    """``not_found``: the job exists but has no log of that name."""


class UploadTooLarge(PcapdError):
    """``upload_too_large``: a file is larger than the daemon's ``max_upload``. No data was sent."""


class UploadFailed(PcapdError):
    """``upload_failed`` or ``upload_size_mismatch``: the daemon refused the upload's byte
    stream (a file changed size while it was sent, a chunk over ``max_chunk``). Nothing was
    stored."""


class BadRequest(PcapdError):
    """The daemon refused the request as malformed: ``bad_request``, ``bad_tag``,
    ``request_too_large``, ``unknown_function``, ``path_rejected``, ``illegal_transition``.

    Also raised by the client, before anything is sent, for arguments it cannot send
    (``code = None``)."""


class Unsupported(PcapdError):
    """``unsupported``: the daemon does not run what the request needs (a burp query without
    ``backend = burp``, ``submit_paths`` without ``spool_dir``)."""


class Unavailable(PcapdError):
    """``unavailable``: ``backend = burp`` and no burp child became free in time."""


class ShuttingDown(PcapdError):
    """``shutting_down``: the daemon is draining and takes no new jobs. Retry after it restarts."""


class ServerError(PcapdError):
    """A failure on the daemon's side (``io``, ``corrupt``, ``internal``) or a code this client
    does not know; the daemon's log has the details."""


class ProtocolError(PcapdError):
    """The daemon's answer does not follow the wire protocol (or the peer is not pcapd).
    The connection is dropped."""


class ConnectionError(PcapdError):
    """The daemon could not be reached, or the connection broke during a call.

    A broken connection is dialled again once for calls that are safe to repeat; this is
    raised when that did not help, or for an upload (never repeated: the caller decides).

    Attributes:
        maybe_stored: for an upload, ``True`` when every byte had been sent before the
            connection broke: the daemon may have stored the job without getting to answer
            (look for it, e.g. ``list(tag=…)``, before submitting again). ``False`` for an
            upload cut short, which the daemon never keeps, and for every other call.
    """

    def __init__(self, message: str, code: Optional[str] = None, *, maybe_stored: bool = False) -> None:
        super().__init__(message, code)
        self.maybe_stored = maybe_stored


class TLSError(ConnectionError):
    """The TLS handshake failed, e.g. the daemon's certificate is not the trusted one."""


class CallTimeout(ConnectionError):
    """A connect, a read or the whole call took longer than its timeout. The connection is
    dropped (its byte stream can no longer be trusted to be in step)."""


class ConfigError(PcapdError):
    """The connection settings could not be worked out: an unreadable or malformed config
    file, no password, ``ssl`` on with no certificate to trust."""


_BY_CODE: Dict[str, Type[PcapdError]] = {
    "queue_full": QueueFull,
    "disk_full": DiskFull,
    "not_found": NotFound,
    "upload_too_large": UploadTooLarge,
    "upload_failed": UploadFailed,
    "upload_size_mismatch": UploadFailed,
    "bad_request": BadRequest,
    "bad_tag": BadRequest,
    "request_too_large": BadRequest,
    "unknown_function": BadRequest,
    "path_rejected": BadRequest,
    "illegal_transition": BadRequest,
    "unsupported": Unsupported,
    "unavailable": Unavailable,
    "shutting_down": ShuttingDown,
}


def error_from_reply(body: bytes) -> PcapdError:
    """The exception for an ``ER`` payload (``{"error": CODE, "message": TEXT}``)."""
    code = "error"
    message: str
    try:
        value: Any = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict):
        code = str(value.get("error") or "error")
        msg = value.get("message")
        message = msg if isinstance(msg, str) else json.dumps(value)
    else:
        message = body.decode("utf-8", "replace")
    cls = _BY_CODE.get(code, ServerError)
    if cls is NotFound:
        # "no job ID" vs "job ID has no log NAME" (src/jobs/error.rs).
        cls = LogNotFound if " has no log " in message else JobNotFound
    return cls(message, code)
