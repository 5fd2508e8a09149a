"""What the sync and the asyncio client share: frames, requests, answers, upload sources.

No I/O happens here; ``sync.py`` and ``aio.py`` move the bytes.
"""

from __future__ import annotations

import io
import json
import os
import struct
from dataclasses import dataclass
from typing import IO, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .errors import AuthError, BadRequest, ConnectionError, PcapdError, ProtocolError, error_from_reply

#: Largest answer accepted (a ``list`` of many jobs, a fetched chunk): the Rust client's limit.
MAX_REPLY = 256 << 20

OK = b"OK"
KO = b"KO"
ER = b"ER"

#: Calls that may be sent again on a fresh connection when the connection broke: they read,
#: or (``cancel``) give the same result when repeated. Never ``submit``.
IDEMPOTENT = frozenset(
    {
        "status", "wait", "list", "logs", "fetch", "cancel", "pool", "ping",
        "monitor_version", "client_version", "server_version", "batch_list_supported",
        "statistics", "query",
    }
)

#: ``ER`` codes after which the daemon closes the connection (framing can't be trusted).
CLOSING_CODES = frozenset({"request_too_large", "upload_failed", "upload_too_large", "upload_size_mismatch"})

#: The readiness probe (``RE``), sent alone as the first bytes of a connection.
PROBE = b"RE"

Progress = Callable[[int, int], Any]
"""``progress(sent_bytes, total_bytes)``, called after every upload chunk."""

FileArg = Union[str, "os.PathLike[str]", IO[bytes], Tuple[Any, ...]]
"""A file to upload: a path, a binary file object, ``(name, path_or_fileobj)`` or
``(name, fileobj, size)``."""


def header(n: int) -> bytes:
    return struct.pack("!Q", n)


def frame(body: bytes) -> bytes:
    return struct.pack("!Q", len(body)) + body


def call_body(password: str, func: str, kwargs: Dict[str, Any]) -> bytes:
    return json.dumps(
        {"password": password, "func": func, "args": [], "kwargs": kwargs},
        separators=(",", ":"),
    ).encode("utf-8")


def query_body(password: str, query: str, cache: bool) -> bytes:
    return json.dumps(
        {"password": password, "query": query, "cache": bool(cache)}, separators=(",", ":")
    ).encode("utf-8")


def reply_length(status: bytes, raw_len: bytes) -> int:
    n = int(struct.unpack("!Q", raw_len)[0])
    if n > MAX_REPLY:
        raise ProtocolError(f"answer of {n} bytes is larger than the client's limit ({MAX_REPLY})")
    return n


def check_status(status: bytes) -> None:
    if status not in (OK, KO, ER):
        raise ProtocolError(f"unexpected status bytes {status!r} (is this pcapd, with the right ssl setting?)")


def decode_json(func: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"the answer to {func} is not JSON: {e}") from None


def decode_text(func: str, body: bytes) -> str:
    try:
        return body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ProtocolError(f"the answer to {func} is not UTF-8 text") from None


def decode_bool(func: str, body: bytes) -> bool:
    text = decode_text(func, body).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ProtocolError(f"the answer to {func} is not a boolean: {text!r}")


def upload_cut(address: str, sent: int, total: int, cause: object) -> ConnectionError:
    """The error for an upload whose connection broke: whether the job may exist depends on
    whether every byte had been sent (the daemon never keeps an upload cut short)."""
    if sent < total:
        return ConnectionError(
            f"connection to pcapd at {address} broke during an upload after {sent} of {total} "
            f"bytes ({cause}); the daemon stored nothing; the upload is not repeated"
        )
    return ConnectionError(
        f"connection to pcapd at {address} broke after all {total} bytes of an upload were "
        f"sent ({cause}), before the daemon answered: it may have stored the job; the upload "
        "is not repeated",
        maybe_stored=True,
    )


def auth_error() -> AuthError:
    return AuthError("authentication failed (wrong password); the daemon closed the connection")


def error_for(body: bytes) -> PcapdError:
    return error_from_reply(body)


def submit_kwargs(
    declared: List[Dict[str, Any]], tag: Optional[str], options: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"files": declared, "options": dict(options or {})}
    if tag is not None:
        kwargs["tag"] = tag
    return kwargs


def paths_kwargs(
    paths: Sequence[Union[str, "os.PathLike[str]"]], tag: Optional[str], options: Optional[Dict[str, Any]]
) -> Dict[str, Any]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    kwargs: Dict[str, Any] = {"paths": [os.fspath(p) for p in paths], "options": dict(options or {})}
    if tag is not None:
        kwargs["tag"] = tag
    return kwargs


def list_kwargs(
    state: Optional[str], tag: Optional[str], limit: Optional[int], since: Optional[str]
) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {}
    if state is not None:
        kwargs["state"] = state
    if tag is not None:
        kwargs["tag"] = tag
    if limit is not None:
        kwargs["limit"] = limit
    if since is not None:
        kwargs["since"] = since
    return kwargs


def fetch_kwargs(job_id: str, log: str, offset: int, length: Optional[int]) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"job_id": job_id, "log": log, "offset": offset}
    if length is not None:
        kwargs["length"] = length
    return kwargs


def jobs_of(func: str, value: Any) -> List[Dict[str, Any]]:
    if not isinstance(value, dict) or not isinstance(value.get("jobs"), list):
        raise ProtocolError(f"the answer to {func} has no jobs list")
    return [j for j in value["jobs"] if isinstance(j, dict)]


def expect_dict(func: str, value: Any) -> Dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(f"the answer to {func} is not a JSON object")
    return value


# ---- upload sources --------------------------------------------------------------------


@dataclass
class Source:
    """One file to upload: its label, an open binary file object, its size."""

    name: str
    fileobj: Any
    size: int
    owned: bool  # opened here, closed here

    def close(self) -> None:
        if self.owned:
            try:
                self.fileobj.close()
            except OSError:
                pass


def _label(name: Any) -> str:
    """The label the daemon keeps: the file name without directories, as the Rust client."""
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    if not isinstance(name, str) or not name:
        return "capture"
    base = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return base or "capture"


def _size_of(obj: Any) -> Optional[int]:
    try:
        if obj.seekable():
            pos = obj.tell()
            end = obj.seek(0, io.SEEK_END)
            obj.seek(pos)
            return max(0, int(end) - int(pos))
    except (AttributeError, OSError, ValueError):
        pass
    try:
        st = os.fstat(obj.fileno())
        import stat

        if stat.S_ISREG(st.st_mode):
            return st.st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    return None


def _open_path(path: Any, name: Optional[str]) -> Source:
    try:
        f = open(path, "rb")
    except OSError as e:
        raise BadRequest(f"cannot read {os.fsdecode(path)}: {e.strerror or e}") from None
    try:
        size = os.fstat(f.fileno()).st_size
    except OSError as e:
        f.close()
        raise BadRequest(f"cannot read {os.fsdecode(path)}: {e.strerror or e}") from None
    return Source(name if name is not None else _label(os.fspath(path)), f, size, True)


def _is_pathlike(x: Any) -> bool:
    return isinstance(x, (str, bytes, os.PathLike))


def open_sources(files: Union[FileArg, Iterable[FileArg]]) -> List[Source]:
    """Opens what ``submit`` was given. On error, what was opened is closed again."""
    if _is_pathlike(files) or hasattr(files, "read") or isinstance(files, tuple):
        items: List[Any] = [files]
    else:
        items = list(files)  # type: ignore[arg-type]
    if not items:
        raise BadRequest("submit needs at least one file")
    sources: List[Source] = []
    try:
        for item in items:
            if isinstance(item, tuple):
                if not 2 <= len(item) <= 3:
                    raise BadRequest("a file tuple is (name, path_or_fileobj) or (name, fileobj, size)")
                name, obj = str(item[0]), item[1]
                size = item[2] if len(item) == 3 else None
                if _is_pathlike(obj):
                    sources.append(_open_path(obj, name))
                    continue
            elif _is_pathlike(item):
                sources.append(_open_path(item, None))
                continue
            elif hasattr(item, "read"):
                obj, name, size = item, _label(getattr(item, "name", None)), None
            else:
                raise BadRequest(f"cannot upload {item!r}: give a path, a binary file object or a tuple")
            if size is None:
                size = _size_of(obj)
            if size is None:
                raise BadRequest(
                    f"the size of {name!r} is unknown (not seekable): pass (name, fileobj, size)"
                )
            if not isinstance(size, int) or size < 0:
                raise BadRequest(f"bad size {size!r} for {name!r}")
            sources.append(Source(name, obj, size, False))
    except BaseException:
        for s in sources:
            s.close()
        raise
    return sources


def read_chunk_into(src: Source, view: memoryview) -> int:
    """Reads up to ``len(view)`` bytes of ``src`` into ``view``; 0 at the end."""
    readinto = getattr(src.fileobj, "readinto", None)
    if readinto is not None:
        try:
            n = readinto(view)
            return n or 0
        except (io.UnsupportedOperation, NotImplementedError):
            pass
    data = src.fileobj.read(len(view))
    if not data:
        return 0
    if isinstance(data, str):
        raise BadRequest(f"{src.name!r} is opened in text mode: open it with 'rb'")
    view[: len(data)] = data
    return len(data)


def read_chunk(src: Source, n: int) -> bytes:
    data = src.fileobj.read(n)
    if isinstance(data, str):
        raise BadRequest(f"{src.name!r} is opened in text mode: open it with 'rb'")
    return data or b""
