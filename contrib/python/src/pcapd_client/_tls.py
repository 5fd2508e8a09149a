"""TLS the way the Rust client does it (``src/server/tls.rs``, client side).

The configured PEM file (``sslcert`` or ``ca``) is the only trust anchor:

* a daemon presenting **exactly** one of its certificates is accepted as it is (pinning).
  This is what makes the daemon's own self-signed certificate work, including one that
  ``openssl req -x509`` marks as a CA, and it is why the host name is not checked then: the
  certificate itself is what is trusted;
* any other certificate must verify to the configured certificates as a CA chain, with the
  host name (``server_name``, default the host dialled) checked, as WebPKI does in Rust.
  Here OpenSSL does that verification, on a second handshake.

Python's ``ssl`` has no hook into certificate verification, so the first handshake is made
without verification, the presented certificate compared byte for byte (DER) with the pins,
and only a certificate that is not pinned costs a second, fully verified handshake. Nothing
is sent before the certificate is accepted. TLS 1.2 and 1.3 only, as the daemon.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from typing import FrozenSet, List, Optional, Tuple

from .errors import ConfigError, TLSError

_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)


def load_pins(path: str) -> Tuple[FrozenSet[bytes], List[str]]:
    """The DER of every certificate in a PEM file, and the PEM blocks (for OpenSSL)."""
    try:
        with open(path, "r", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read certificate {path}: {e.strerror or e}") from None
    blocks = [m.group(0) for m in _PEM_CERT.finditer(text)]
    pins = set()
    for block in blocks:
        try:
            pins.add(ssl.PEM_cert_to_DER_cert(block))
        except ValueError:
            continue
    if not pins:
        raise ConfigError(f"cannot read certificate {path}: no PEM certificate found")
    return frozenset(pins), blocks


def fingerprint(der: bytes) -> str:
    """SHA-256 fingerprint, ``AB:CD:…`` as ``openssl x509 -fingerprint -sha256`` prints it."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class Trust:
    """The trust anchor of one client: the pins and the two SSL contexts."""

    def __init__(self, ca: str, server_name: str) -> None:
        self.ca = ca
        self.server_name = server_name
        self.pins, blocks = load_pins(ca)
        self.fingerprints = sorted(fingerprint(p) for p in self.pins)

        pin_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        pin_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        pin_ctx.check_hostname = False
        pin_ctx.verify_mode = ssl.CERT_NONE
        self.pin_context = pin_ctx

        verify_ctx: Optional[ssl.SSLContext] = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        assert verify_ctx is not None
        verify_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        verify_ctx.check_hostname = True
        verify_ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            verify_ctx.load_verify_locations(cadata="\n".join(blocks))
        except ssl.SSLError:
            verify_ctx = None  # still usable as pins (as in Rust: an unusable anchor still pins)
        self.verify_context: Optional[ssl.SSLContext] = verify_ctx

    def sni(self) -> str:
        """``server_hostname`` for the handshake (Python sends no SNI for an IP address)."""
        return self.server_name

    def is_pinned(self, der: Optional[bytes]) -> bool:
        return der is not None and der in self.pins

    def second_handshake(self, address: str, der: Optional[bytes]) -> Optional[ssl.SSLContext]:
        """After the first handshake presented ``der``: ``None`` when it is pinned (the
        connection is trusted), else the context of the verified handshake to make instead.

        Raises:
            TLSError: not pinned, and the trusted file holds nothing OpenSSL can verify with.
        """
        if self.is_pinned(der):
            return None
        if self.verify_context is None:
            raise self.mismatch(address, der, "the trusted file holds no usable CA")
        return self.verify_context

    def mismatch(self, address: str, der: Optional[bytes], error: object) -> TLSError:
        """The error saying which certificate was presented and which is trusted."""
        presented = fingerprint(der) if der else "none"
        trusted = ", ".join(self.fingerprints)
        return TLSError(
            f"TLS: the daemon at {address} presented a certificate (SHA-256 {presented}) that is "
            f"not the trusted one in {self.ca} (SHA-256 {trusted}) and does not verify against "
            f"it for {self.server_name!r}: {error}"
        )
