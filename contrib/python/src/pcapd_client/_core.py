"""What the sync and the asyncio client share besides the calls (``_calls.py``): the
framing, the upload sources, the settings and trust anchor every client holds.

No network I/O happens here; ``sync.py`` and ``aio.py`` move the bytes.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
import tempfile
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterable, Iterator, List, Optional, Tuple, Type, TypeVar, Union

from ._tls import Trust
from .config import DEFAULT_CHUNK, PathLike, Settings, resolve
from .errors import BadRequest, CallTimeout, ConnectionError, ProtocolError, UploadFailed

#: Largest answer accepted (a ``list`` of many jobs, a fetched chunk): the Rust client's limit.
MAX_REPLY = 256 << 20

OK = b"OK"
KO = b"KO"
ER = b"ER"

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


def check_status(status: bytes) -> None:
    if status not in (OK, KO, ER):
        raise ProtocolError(f"unexpected status bytes {status!r} (is this pcapd, with the right ssl setting?)")


def reply_length(raw_len: bytes) -> int:
    n = int(struct.unpack("!Q", raw_len)[0])
    if n > MAX_REPLY:
        raise ProtocolError(f"answer of {n} bytes is larger than the client's limit ({MAX_REPLY})")
    return n


class Broken(Exception):
    """The connection failed (reset, EOF, TLS error): the call may be repeated if safe."""

    def __init__(self, what: str, cause: BaseException) -> None:
        super().__init__(f"{what}: {cause}")
        self.cause = cause

    def during(self, address: str, func: str) -> ConnectionError:
        """The error for a call that is not repeated."""
        return ConnectionError(f"connection to pcapd at {address} broke during {func}: {self.cause}")


def time_left(deadline: Optional[float], limit: Optional[float], address: str) -> Optional[float]:
    """How long the next read or write may block: ``limit``, or less when the whole call's
    ``deadline`` comes first (``None``: no limit)."""
    if deadline is None:
        return limit
    left = deadline - time.monotonic()
    if left <= 0:
        raise CallTimeout(f"call to pcapd at {address} timed out")
    return left if limit is None else min(limit, left)


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
        close_sources(sources)
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


def close_sources(sources: Iterable[Source]) -> None:
    for src in sources:
        src.close()


def file_shrank(src: Source, left: int) -> UploadFailed:
    return UploadFailed(
        f"{src.name}: the file ended after {src.size - left} of {src.size} bytes "
        "(it shrank while uploading); nothing was stored"
    )


@contextlib.contextmanager
def sink(dest: Union[PathLike, IO[bytes]]) -> Iterator[IO[bytes]]:
    """Where ``save`` writes a log: ``dest`` itself when it is a file object, else a
    temporary file beside the path ``dest`` that replaces it only once all was written."""
    if not isinstance(dest, (str, os.PathLike)):
        yield dest
        return
    path = os.fspath(dest)
    fd, tmp = tempfile.mkstemp(prefix=".pcapd-", dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---- what every client holds ---------------------------------------------------------------

C = TypeVar("C", bound="ClientBase")


class ClientBase:
    """The settings, the trust anchor and the dial count of a client; the connections are
    the subclass's (``_reset`` starts it with none)."""

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
                config, host=host, port=port, password=password, ca=ca, server_name=server_name, tls=tls,
                connect_timeout=connect_timeout, read_timeout=read_timeout, call_timeout=call_timeout,
                chunk_size=chunk_size,
            )
        if settings.chunk_size < 1:
            raise BadRequest("chunk_size must be at least 1")
        self._settings = settings
        self._trust = Trust(settings.ca, settings.server_name or settings.host) if settings.ca else None
        #: Connections dialled so far by this process (for tests and metrics).
        self.dials = 0
        self._reset()

    def _reset(self) -> None:
        """Forgets every connection (at creation, and in a forked child)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls: Type[C], path: PathLike, **overrides: Any) -> C:
        """A client for the daemon configured by ``path`` (the daemon's own INI file).

        Keyword arguments (``host``, ``port``, ``password``, ``ca``, timeouts, …) override it.
        """
        return cls(config=path, **overrides)

    @property
    def settings(self) -> Settings:
        """The resolved connection settings."""
        return self._settings

    def _password(self) -> str:
        return self._settings.get_password()

    def _deadline(self) -> Optional[float]:
        """When the call starting now must be over (``call_timeout``), or ``None``."""
        t = self._settings.call_timeout
        return None if t is None else time.monotonic() + t
