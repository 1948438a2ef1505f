"""Mutual TLS between the gateway and the services, and between services.

Optional (INTERNAL_TLS_DIR): the folder holds this workload's certificate in the layout
cert-manager and `kubernetes.io/tls` Secrets use — `tls.crt`, `tls.key` and `ca.crt`.
Every certificate names its workload with a SPIFFE ID (`spiffe://ragline/<name>`), so a
receiver knows which component called, not only that the caller holds some certificate
from the CA. Files are read at start-up: after a rotation, restart the workload.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from ragline_core.rpc_types import Context

TRUST_DOMAIN = "ragline"
GATEWAY = "gateway"
# Workloads that act as the gateway: Envoy, and the chat service's WebSocket edge, which
# re-checks each message's credential and logs its usage as Envoy does for a request.
EDGE_WORKLOADS = frozenset({GATEWAY, "chat"})
CERT_FILE, KEY_FILE, CA_FILE = "tls.crt", "tls.key", "ca.crt"


def spiffe_id(workload: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/{workload}"


class TlsConfigError(ValueError):
    """The folder's files are missing or do not make a usable identity."""


@dataclass(frozen=True)
class TlsFiles:
    """One workload's identity: its chain and key, and the CA that every peer must chain to."""

    folder: Path
    cert: bytes
    key: bytes
    ca: bytes
    workload: str

    def server_credentials(self) -> grpc.ServerCredentials:
        """Refuses any client that shows no certificate from the CA."""
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)], root_certificates=self.ca, require_client_auth=True
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)

    def server_ssl_context(self) -> ssl.SSLContext:
        """The same policy for a plain HTTP listener (the chat service's HTTP edge)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.folder / CA_FILE)
        context.load_cert_chain(self.folder / CERT_FILE, self.folder / KEY_FILE)
        context.verify_mode = ssl.CERT_REQUIRED
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context


def load(folder: str | Path, *, now: datetime.datetime | None = None) -> TlsFiles:
    """Reads and checks the folder; the error says which file and what is wrong with it."""
    root = Path(folder)
    raw: dict[str, bytes] = {}
    for name in (CERT_FILE, KEY_FILE, CA_FILE):
        try:
            raw[name] = (root / name).read_bytes()
        except OSError as exc:
            raise TlsConfigError(f"{root / name}: {exc.strerror or exc}") from None
    try:
        cert = x509.load_pem_x509_certificate(raw[CERT_FILE])
        ca = x509.load_pem_x509_certificate(raw[CA_FILE])
        key = serialization.load_pem_private_key(raw[KEY_FILE], password=None)
    except ValueError as exc:
        raise TlsConfigError(
            f"{root}: not PEM certificates and an unencrypted key: {exc}"
        ) from None
    if key.public_key() != cert.public_key():
        raise TlsConfigError(f"{root / KEY_FILE} is not the key of {root / CERT_FILE}")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise TlsConfigError(f"{root / CERT_FILE} is not issued by {root / CA_FILE}") from None
    moment = now or datetime.datetime.now(datetime.UTC)
    for path, found in ((CERT_FILE, cert), (CA_FILE, ca)):
        if not found.not_valid_before_utc <= moment <= found.not_valid_after_utc:
            expiry = found.not_valid_after_utc.isoformat()
            raise TlsConfigError(f"{root / path} is not valid now (valid until {expiry})")
    return TlsFiles(root, raw[CERT_FILE], raw[KEY_FILE], raw[CA_FILE], workload_of(cert, root))


def workload_of(cert: x509.Certificate, where: Path) -> str:
    """The workload a certificate names (its one SPIFFE ID in our trust domain)."""
    prefix = spiffe_id("")
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = x509.SubjectAlternativeName([])
    names = [u[len(prefix) :] for u in sans.get_values_for_type(x509.UniformResourceIdentifier)]
    workloads = [n for n in names if n and "/" not in n]
    if len(workloads) != 1:
        raise TlsConfigError(
            f"{where / CERT_FILE} must name exactly one workload as a URI SAN {prefix}<name>"
        )
    return workloads[0]


def peer_workload(context: Context) -> str | None:
    """The workload at the other end of a verified mutual-TLS call, None on plaintext."""
    found = context.auth_context().get("peer_spiffe_id") or []
    prefix = spiffe_id("")
    for value in found:
        text = value.decode() if isinstance(value, bytes) else str(value)
        if text.startswith(prefix):
            return text[len(prefix) :]
    return None
