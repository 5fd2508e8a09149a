"""pcapd_client: a standard-library-only client for the pcapd daemon.

pcapd runs PCAP analysis jobs on a fixed pool of analyzer processes for many front ends at
once. This package speaks its wire protocol (``docs/protocol.md``): TLS, a shared password,
streamed uploads, job records and Zeek-format logs.

* :class:`Client`, blocking, one persistent connection (re-opened after a fork);
* :class:`AsyncClient`, asyncio streams, a few persistent connections shared by many tasks;
* :class:`Job`, :class:`LogInfo`, :class:`PoolStatus`: the answers;
* :class:`PcapdError` and its subclasses: the failures a caller can act on.

Quick start::

    from pcapd_client import Client

    pcapd = Client.from_config("/etc/pcapd/pcapd.cfg")
    job = pcapd.submit(["capture.pcap"], tag="sensor1")
    job = pcapd.wait(job.job_id)
    for chunk in pcapd.fetch(job.job_id, "conn.log"):
        ...
"""

from . import errors
from .aio import AsyncClient
from .config import Settings, resolve
from .errors import *  # noqa: F403 (the exceptions: errors.__all__)
from .models import TERMINAL_STATES, Job, LogInfo, PoolStatus, SlotStatus
from .sync import Client

__version__ = "0.1.0"

__all__ = [
    "Client",
    "AsyncClient",
    "Settings",
    "resolve",
    "Job",
    "LogInfo",
    "PoolStatus",
    "SlotStatus",
    "TERMINAL_STATES",
    "__version__",
]
__all__ += errors.__all__
