"""A local certificate authority for the stack's mutual TLS (ragline_core.internal_tls).

`make run` (with INTERNAL_TLS=true, the default) and the tests make one per run folder:
the CA key never leaves it, and every component gets a folder in the layout cert-manager
uses (tls.crt, tls.key, ca.crt) with its SPIFFE ID, `localhost` and 127.0.0.1.

For Kubernetes, `python -m ragline_stack.local_ca --k8s --namespace rag-system` prints
one `kubernetes.io/tls` Secret per component (ragline-<component>-tls) for a cluster
without cert-manager; docs/deployment.md shows the cert-manager way.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ragline_core.internal_tls import CA_FILE, CERT_FILE, GATEWAY, KEY_FILE, spiffe_id

WORKLOADS = (GATEWAY, "embedder", "retriever", "chat", "ingest", "auth")
CA_LIFETIME = datetime.timedelta(days=365)
LEAF_LIFETIME = datetime.timedelta(days=90)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


class LocalCa:
    """An EC P-256 CA whose certificates are valid for client and server authentication."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @classmethod
    def create(cls, name: str = "ragline local CA") -> LocalCa:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def open_or_create(cls, folder: Path) -> LocalCa:
        """The CA kept in `folder` (ca.key mode 600), made on first use."""
        key_path, cert_path = folder / "ca.key", folder / CA_FILE
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise SystemExit(f"{key_path}: not an EC key; delete the folder to start over")
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        ca = cls.create()
        _write_private(key_path, _pem_key(ca.key))
        cert_path.write_bytes(_pem_cert(ca.cert))
        return ca

    def issue(self, workload: str, dns_names: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) naming `workload`, for loopback and `dns_names`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(spiffe_id(workload)),
            x509.DNSName("localhost"),
            *(x509.DNSName(n) for n in dict.fromkeys(dns_names)),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, workload)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + LEAF_LIFETIME, self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return _pem_cert(cert), _pem_key(key)

    def write_workload(self, folder: Path, workload: str, dns_names: Iterable[str] = ()) -> Path:
        """`folder`/tls.crt, tls.key and ca.crt for `workload`; returns `folder`."""
        cert, key = self.issue(workload, dns_names)
        _write_private(folder / KEY_FILE, key)
        (folder / CERT_FILE).write_bytes(cert)
        (folder / CA_FILE).write_bytes(_pem_cert(self.cert))
        return folder


def stack_tls(root: Path, workloads: Iterable[str] = WORKLOADS) -> dict[str, Path]:
    """The run folder's CA and one identity folder per workload (reused while valid)."""
    ca = LocalCa.open_or_create(root)
    folders: dict[str, Path] = {}
    for workload in workloads:
        folder = root / workload
        if not _still_valid(folder, ca):
            ca.write_workload(folder, workload)
        folders[workload] = folder
    return folders


def _still_valid(folder: Path, ca: LocalCa) -> bool:
    try:
        cert = x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes())
        issued_here = (folder / CA_FILE).read_bytes() == _pem_cert(ca.cert)
    except (OSError, ValueError):
        return False
    margin = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    return issued_here and (folder / KEY_FILE).exists() and cert.not_valid_after_utc > margin


def k8s_secrets(ca: LocalCa, namespace: str) -> list[dict[str, object]]:
    """One kubernetes.io/tls Secret per workload, valid for its in-cluster DNS names."""
    secrets: list[dict[str, object]] = []
    for workload in WORKLOADS:
        service = "envoy" if workload == GATEWAY else workload
        dns = [service, f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]
        cert, key = ca.issue(workload, dns)
        data = {CERT_FILE: cert, KEY_FILE: key, CA_FILE: _pem_cert(ca.cert)}
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "kubernetes.io/tls",
                "metadata": {"name": f"ragline-{workload}-tls", "namespace": namespace},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
            }
        )
    return secrets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ragline_stack.local_ca", description=__doc__)
    parser.add_argument("--k8s", action="store_true", help="print Secrets for Kubernetes")
    parser.add_argument("--namespace", default="rag-system")
    parser.add_argument("--ca-dir", type=Path, help="keep/reuse the CA here (default: new CA)")
    parser.add_argument("--out", type=Path, help="write workload folders here (not --k8s)")
    args = parser.parse_args(argv)
    if args.k8s:
        ca = LocalCa.open_or_create(args.ca_dir) if args.ca_dir else LocalCa.create()
        yaml.safe_dump_all(k8s_secrets(ca, args.namespace), sys.stdout, sort_keys=False)
        return 0
    if not args.out:
        parser.error("--out or --k8s is required")
    for workload, folder in stack_tls(args.out).items():
        print(f"{workload}: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
