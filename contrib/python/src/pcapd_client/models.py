"""Small result types: :class:`Job`, :class:`LogInfo`, :class:`PoolStatus`, :class:`SlotStatus`.

Each is built from the daemon's JSON answer and keeps it whole in ``raw``; the keys this
version of the client does not know are also in ``extra``, so a newer daemon's fields are
never lost. ``to_dict()`` gives the daemon's JSON back (e.g. to return it from an HTTP API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["Job", "LogInfo", "PoolStatus", "SlotStatus", "TERMINAL_STATES"]

#: States a job never leaves.
TERMINAL_STATES = frozenset({"done", "failed", "timed_out", "cancelled"})


def _extra(data: Dict[str, Any], known: "frozenset[str]") -> Dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class LogInfo:
    """One log a job produced (``conn.log``, …): its size in bytes and lines."""

    name: str
    bytes: int = 0
    lines: int = 0
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset({"name", "bytes", "lines"})

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LogInfo":
        return cls(
            name=str(data.get("name", "")),
            bytes=_int(data.get("bytes")) or 0,
            lines=_int(data.get("lines")) or 0,
            extra=_extra(data, cls._KNOWN),
        )

    def to_dict(self) -> Dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "lines": self.lines, **self.extra}


@dataclass
class Job:
    """A job record (``status``, ``wait``, ``list``, ``cancel``) or a ``submit`` answer.

    A ``submit`` answer carries Brocapi's fields (``status``, ``files`` as names, ``success``,
    ``sha256``): ``files`` is then made of ``{"name", "sha256"}`` entries, and ``raw`` is the
    answer exactly as the daemon sent it.
    """

    job_id: str
    state: str
    tag: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict)
    files: List[Dict[str, Any]] = field(default_factory=list)
    created_at: Optional[str] = None
    queued_at: Optional[str] = None
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    history: List[Dict[str, Any]] = field(default_factory=list)
    attempts: Optional[int] = None
    progress: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    logs: List[LogInfo] = field(default_factory=list)
    packets: Optional[int] = None
    worker_pid: Optional[int] = None
    warnings: List[Any] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "job_id", "state", "tag", "options", "files", "created_at", "queued_at",
            "started_at", "finished_at", "history", "attempts", "progress", "error", "logs",
            "packets", "worker_pid", "warnings",
        }
    )
    # Brocapi's submit answer: these are known too (not "extra"), their meaning is in raw.
    _SUBMIT_KEYS = frozenset({"status", "success", "sha256"})

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Job":
        files_raw = data.get("files") or []
        if files_raw and all(isinstance(f, str) for f in files_raw):
            # A submit answer: names, with their SHA-256 in a parallel list.
            sums = data.get("sha256") or []
            files = [
                {"name": name, **({"sha256": sums[i]} if i < len(sums) else {})}
                for i, name in enumerate(files_raw)
            ]
            extra = _extra(data, cls._KNOWN | cls._SUBMIT_KEYS)
        else:
            files = [f for f in files_raw if isinstance(f, dict)]
            extra = _extra(data, cls._KNOWN)
        logs = [LogInfo.from_dict(x) for x in data.get("logs") or [] if isinstance(x, dict)]
        return cls(
            job_id=str(data.get("job_id", "")),
            state=str(data.get("state", "")),
            tag=data.get("tag"),
            options=dict(data.get("options") or {}),
            files=files,
            created_at=data.get("created_at"),
            queued_at=data.get("queued_at"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            history=list(data.get("history") or []),
            attempts=_int(data.get("attempts")),
            progress=data.get("progress"),
            error=data.get("error"),
            logs=logs,
            packets=_int(data.get("packets")),
            worker_pid=_int(data.get("worker_pid")),
            warnings=list(data.get("warnings") or []),
            extra=extra,
            raw=dict(data),
        )

    @property
    def terminal(self) -> bool:
        """True once the job is ``done``, ``failed``, ``timed_out`` or ``cancelled``."""
        return self.state in TERMINAL_STATES

    @property
    def done(self) -> bool:
        """True when the job ended ``done``."""
        return self.state == "done"

    def log_names(self) -> List[str]:
        """The names of the logs the job produced, in the daemon's order."""
        return [log.name for log in self.logs]

    def to_dict(self) -> Dict[str, Any]:
        """The daemon's JSON for this job, as received."""
        return dict(self.raw)


@dataclass
class SlotStatus:
    """One worker slot of the pool."""

    slot: int
    pid: Optional[int] = None
    state: str = ""
    job: Optional[str] = None
    jobs_done: int = 0
    restarts: int = 0
    started: Any = None
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset({"slot", "pid", "state", "job", "jobs_done", "restarts", "started"})

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "SlotStatus":
        return cls(
            slot=_int(data.get("slot")) or 0,
            pid=_int(data.get("pid")),
            state=str(data.get("state", "")),
            job=data.get("job"),
            jobs_done=_int(data.get("jobs_done")) or 0,
            restarts=_int(data.get("restarts")) or 0,
            started=data.get("started"),
            extra=_extra(data, cls._KNOWN),
        )


@dataclass
class PoolStatus:
    """The answer to ``pool``: every slot, the queue and the counters."""

    slots: List[SlotStatus] = field(default_factory=list)
    queue_len: int = 0
    max_queue_seen: int = 0
    accepted: int = 0
    rejected: int = 0
    timed_out: int = 0
    crashed: int = 0
    queries: Dict[str, Any] = field(default_factory=dict)
    degraded: bool = False
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    _KNOWN = frozenset(
        {
            "slots", "queue_len", "max_queue_seen", "accepted", "rejected", "timed_out",
            "crashed", "queries", "degraded",
        }
    )

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PoolStatus":
        return cls(
            slots=[SlotStatus.from_dict(s) for s in data.get("slots") or [] if isinstance(s, dict)],
            queue_len=_int(data.get("queue_len")) or 0,
            max_queue_seen=_int(data.get("max_queue_seen")) or 0,
            accepted=_int(data.get("accepted")) or 0,
            rejected=_int(data.get("rejected")) or 0,
            timed_out=_int(data.get("timed_out")) or 0,
            crashed=_int(data.get("crashed")) or 0,
            queries=dict(data.get("queries") or {}),
            degraded=bool(data.get("degraded", False)),
            extra=_extra(data, cls._KNOWN),
            raw=dict(data),
        )

    @property
    def pids(self) -> List[int]:
        """The pids of the slots' children (slots without a child are left out)."""
        return [s.pid for s in self.slots if s.pid is not None]

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.raw)
