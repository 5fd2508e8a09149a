"""Connection settings: where the daemon is, the password, the certificate to trust.

:func:`resolve` works them out exactly as the Rust CLI does (``src/cli/client_cmds.rs``):

1. explicit arguments, then the ``PCAPD_HOST``, ``PCAPD_PORT``, ``PCAPD_PASSWORD`` and
   ``PCAPD_CA`` environment variables;
2. the daemon's own config file: the one given, else ``/etc/pcapd/pcapd.cfg`` if it exists.
   ``[Global]`` ``bind`` (a wildcard bind is dialled on loopback: ``0.0.0.0`` → ``127.0.0.1``,
   ``::`` → ``::1``), ``port`` (default 11111), ``password`` or the first line of
   ``password_file``, ``ssl`` (default on) and ``sslcert``, the certificate to trust;
   With ``port = 0`` (a port the kernel chose at start), the port is read from
   ``listen.addr`` in the config's ``state_dir``, which the daemon writes when ready;
3. with no config file at all, the embedded defaults' state directory (what ``pcapd serve``
   with no file writes): ``listen.addr`` (the address it listens on), ``password`` and
   ``cert.pem``. The directory is systemd's ``$STATE_DIRECTORY``, else ``/var/lib/pcapd`` for
   root, else ``$XDG_STATE_HOME/pcapd`` or ``~/.local/state/pcapd``.

The certificate is verified against the name dialled (or ``server_name``) unless it is
exactly the trusted certificate, as the Rust client does (see :mod:`pcapd_client._tls`).
"""

from __future__ import annotations

import configparser
import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from .errors import ConfigError

__all__ = [
    "Settings",
    "resolve",
    "read_config",
    "default_state_dir",
    "dial_host",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_PORT",
    "DEFAULT_CHUNK",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The daemon's default config file, read when no other is given and it exists.
DEFAULT_CONFIG_PATH = "/etc/pcapd/pcapd.cfg"
#: bui-monitor's port, the daemon's default.
DEFAULT_PORT = 11111
#: Upload chunk size, as the Rust client's: below the daemon's default ``max_chunk`` (4 MiB).
DEFAULT_CHUNK = 1 << 20

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Settings:
    """Everything a client needs to reach the daemon.

    Attributes:
        host: address to dial (an IP address or a host name).
        port: TCP port.
        password: the shared password, or ``None`` when it is read from ``password_file``
            at every dial (so a rotated file is picked up, as the daemon does on SIGHUP).
        password_file: file whose first line is the password.
        ca: PEM file holding the certificate(s) to trust, or ``None`` for plain TCP
            (``ssl = false``).
        server_name: the name the certificate must be valid for (default: ``host``); only
            checked when the daemon presents a certificate other than the trusted one.
        connect_timeout: seconds for TCP connect plus the TLS handshake.
        read_timeout: seconds any single read or write may block (a ``wait`` call adds its
            own timeout to it).
        call_timeout: seconds one whole call may take, or ``None`` for no limit
            (each read is still bounded by ``read_timeout``).
        chunk_size: bytes per upload data frame (at most the daemon's ``max_chunk``).
    """

    host: str
    port: int
    password: Optional[str] = field(default=None, repr=False)
    password_file: Optional[str] = None
    ca: Optional[str] = None
    server_name: Optional[str] = None
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    call_timeout: Optional[float] = None
    chunk_size: int = DEFAULT_CHUNK

    @property
    def tls(self) -> bool:
        return self.ca is not None

    @property
    def address(self) -> str:
        """``host:port`` for messages (``[::1]:11111`` for IPv6)."""
        if ":" in self.host and not self.host.startswith("["):
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def get_password(self) -> str:
        """The password: the given one, or the first line of ``password_file`` read now."""
        if self.password is not None:
            return self.password
        if self.password_file is None:
            raise ConfigError("no password: pass password=, set PCAPD_PASSWORD, or use the daemon's config")
        return _read_password_file(self.password_file)

    def with_overrides(self, **changes: Any) -> "Settings":
        """A copy with some fields changed (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def dial_host(bind: str) -> str:
    """The address a client dials for a daemon bound to ``bind`` (wildcards → loopback)."""
    try:
        ip = ipaddress.ip_address(bind.strip("[]"))
    except ValueError:
        return bind
    if ip.is_unspecified:
        return "127.0.0.1" if ip.version == 4 else "::1"
    return str(ip)


def default_state_dir(env: Optional[Mapping[str, str]] = None) -> Path:
    """The embedded defaults' state directory, by the daemon's rules
    (``src/config/embedded.rs``)."""
    env = os.environ if env is None else env
    dirs = env.get("STATE_DIRECTORY")
    if dirs:
        first = Path(dirs.split(":")[0])
        if first.is_absolute():
            return first
    if os.geteuid() == 0:
        return Path("/var/lib/pcapd")
    state_home = env.get("XDG_STATE_HOME")
    if state_home and Path(state_home).is_absolute():
        return Path(state_home) / "pcapd"
    home = env.get("HOME")
    if not (home and Path(home).is_absolute()):
        try:
            import pwd

            home = pwd.getpwuid(os.getuid()).pw_dir
        except (ImportError, KeyError):
            home = None
    if home:
        return Path(home) / ".local/state/pcapd"
    import tempfile

    return Path(tempfile.gettempdir()) / f"pcapd-{os.getuid()}"


def _read_password_file(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the password file {path}: {e.strerror or e}") from None
    first = text.split("\n", 1)[0]
    if first.endswith("\r"):
        first = first[:-1]
    if not first:
        raise ConfigError(f"{path}: the first line (the password) is empty")
    return first


def _parse_bool(path: str, key: str, text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(f"{path}: [Global] {key} = {text!r}: not a boolean (true/false, yes/no, on/off, 1/0)")


def read_config(path: PathLike) -> Dict[str, Any]:
    """Reads what a client needs from the daemon's INI file: ``host``, ``port``, ``password``
    or ``password_file``, ``ssl``, ``sslcert``.

    The syntax is the daemon's (Python ``ConfigParser``'s, as bui-monitor): ``=`` or ``:``,
    whole-line ``#``/``;`` comments, no inline comments, section and key names in any case,
    an empty value meaning the default. Keys the client does not need are not checked (the
    daemon's ``pcapd check-config`` does that).
    """
    path = os.fspath(path)
    parser = configparser.ConfigParser(
        interpolation=None,
        strict=True,
        delimiters=("=", ":"),
        comment_prefixes=("#", ";"),
        inline_comment_prefixes=None,
        default_section="\0no-default-section",
    )
    try:
        with open(path, "r", encoding="utf-8") as f:
            parser.read_file(f, source=path)
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror or e}") from None
    except configparser.Error as e:
        raise ConfigError(f"{path}: not a valid INI file: {e}") from None
    section: Dict[str, str] = {}
    for name in parser.sections():
        if name.lower() == "global":
            section = {k: (v or "").strip() for k, v in parser.items(name)}
    values = {k: v for k, v in section.items() if v != ""}
    out: Dict[str, Any] = {"source": path}
    bind = values.get("bind", "::1")
    bare = bind[1:-1] if bind.startswith("[") and bind.endswith("]") else bind
    try:
        ipaddress.ip_address(bare)
    except ValueError:
        raise ConfigError(f"{path}: [Global] bind = {bind!r}: not an IP address") from None
    out["host"] = dial_host(bare)
    port_text = values.get("port", str(DEFAULT_PORT))
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65535:
        raise ConfigError(f"{path}: [Global] port = {port_text!r}: not a port number (0 to 65535)")
    port = int(port_text)
    out["port"] = port
    out["password"] = values.get("password")
    out["password_file"] = values.get("password_file")
    if out["password"] is not None and out["password_file"] is not None:
        raise ConfigError(f"{path}: [Global] set either password or password_file, not both")
    out["ssl"] = _parse_bool(path, "ssl", values["ssl"]) if "ssl" in values else True
    out["sslcert"] = values.get("sslcert")
    out["state_dir"] = values.get("state_dir")
    return out


def _env_port(env: Mapping[str, str]) -> Optional[int]:
    text = env.get("PCAPD_PORT")
    if not text:
        return None
    try:
        port = int(text)
    except ValueError:
        raise ConfigError(f"PCAPD_PORT={text!r}: not a port number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(f"PCAPD_PORT={text!r}: out of range (1 to 65535)")
    return port


def _read_listen_addr(state_dir: Path) -> Optional[Tuple[str, int]]:
    try:
        text = (state_dir / "listen.addr").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    host, sep, port = text.rpartition(":")
    if not sep:
        return None
    host = host.strip("[]") if host.startswith("[") else host
    try:
        ipaddress.ip_address(host)
        return host, int(port)
    except ValueError:
        return None


def resolve(
    config: Optional[PathLike] = None,
    *,
    host: Optional[str] = None,
    port: Optional[int] = None,
    password: Optional[str] = None,
    ca: Optional[PathLike] = None,
    server_name: Optional[str] = None,
    tls: Optional[bool] = None,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    call_timeout: Optional[float] = None,
    chunk_size: int = DEFAULT_CHUNK,
    env: Optional[Mapping[str, str]] = None,
) -> Settings:
    """Works out the connection settings (module docstring: arguments, then environment,
    then the config file or the embedded defaults' state directory).

    Args:
        config: the daemon's config file; ``None`` = ``/etc/pcapd/pcapd.cfg`` if it exists,
            else the embedded defaults' state directory.
        host, port, password, ca, server_name: override the config (and the environment).
        tls: ``False`` forces plain TCP, ``True`` TLS; ``None`` follows the config's ``ssl``.
        env: the environment to read ``PCAPD_*`` from (default ``os.environ``).

    Raises:
        ConfigError: an unreadable config, no password, TLS on with no certificate to trust.
    """
    env = os.environ if env is None else env
    host = host or env.get("PCAPD_HOST") or None
    port = port if port is not None else _env_port(env)
    password = password if password is not None else (env.get("PCAPD_PASSWORD") or None)
    ca_text = os.fspath(ca) if ca is not None else (env.get("PCAPD_CA") or None)

    if config is None and os.path.exists(DEFAULT_CONFIG_PATH):
        config = DEFAULT_CONFIG_PATH
    listen: Optional[Tuple[str, int]] = None
    if config is not None:
        values = read_config(config)
        if values["port"] == 0 and port is None:
            # port = 0: the kernel chose the port at start and the daemon wrote the address
            # to listen.addr in its state directory (the Rust CLI cannot dial this case).
            state_dir = Path(values["state_dir"]) if values["state_dir"] else default_state_dir(env)
            listen = _read_listen_addr(state_dir)
            if listen is not None:
                listen = (values["host"], listen[1])
    else:
        state_dir = default_state_dir(env)
        listen = _read_listen_addr(state_dir)
        values = {
            "source": f"<embedded defaults in {state_dir}>",
            "host": "127.0.0.1",
            "port": DEFAULT_PORT,
            "password": None,
            "password_file": str(state_dir / "password"),
            "ssl": True,
            "sslcert": str(state_dir / "cert.pem"),
        }
    if host is None:
        host = dial_host(listen[0]) if listen else values["host"]
    if port is None:
        port = listen[1] if listen else values["port"]
    password_file = None
    if password is None:
        password = values["password"]
        password_file = values["password_file"]
        if password is None and password_file is None:
            raise ConfigError(
                f"no password: pass password=, set PCAPD_PASSWORD, or point config= at the daemon's config "
                f"({values['source']} has neither password nor password_file)"
            )
    use_tls = values["ssl"] if tls is None else tls
    trust: Optional[str] = None
    if use_tls:
        trust = ca_text or values["sslcert"]
        if trust is None:
            raise ConfigError("ssl is on but no certificate to trust: pass ca= (PCAPD_CA) or set sslcert in the config")
    assert host is not None and port is not None
    if not 1 <= int(port) <= 65535:
        raise ConfigError(
            f"port {port} cannot be dialled ({values['source']} says port = 0 and its state "
            "directory has no listen.addr): pass port= or set PCAPD_PORT"
        )
    return Settings(
        host=host,
        port=int(port),
        password=password,
        password_file=password_file,
        ca=trust,
        server_name=server_name,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        call_timeout=call_timeout,
        chunk_size=chunk_size,
    )
