"""Mutual-TLS identities (ragline_core.internal_tls) and the gateway's side of them: a bad
folder is refused at start-up with the reason, and Envoy pins each upstream's workload."""

from __future__ import annotations

import datetime
import shutil
import subprocess

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ragline_core.internal_tls import TlsConfigError, load, spiffe_id
from ragline_stack.envoy_config import render
from ragline_stack.local_ca import LocalCa, stack_tls
from tests.unit.test_gateway_config import ENVOY, config


@pytest.fixture(scope="module")
def ca() -> LocalCa:
    return LocalCa.create("test CA")


def test_a_workload_folder_loads_with_its_name(ca, tmp_path):
    found = load(ca.write_workload(tmp_path / "w", "retriever"))
    assert found.workload == "retriever"
    assert b"BEGIN CERTIFICATE" in found.cert and b"PRIVATE KEY" in found.key


def test_a_key_of_another_certificate_is_refused(ca, tmp_path):
    one = ca.write_workload(tmp_path / "one", "chat")
    other = ca.write_workload(tmp_path / "other", "chat")
    shutil.copy(other / "tls.key", one / "tls.key")
    with pytest.raises(TlsConfigError, match="is not the key of"):
        load(one)


def test_a_certificate_from_another_ca_is_refused(ca, tmp_path):
    folder = LocalCa.create("other CA").write_workload(tmp_path / "w", "chat")
    shutil.copy(ca.write_workload(tmp_path / "real", "chat") / "ca.crt", folder / "ca.crt")
    with pytest.raises(TlsConfigError, match="is not issued by"):
        load(folder)


def test_an_expired_certificate_is_refused(ca, tmp_path):
    folder = ca.write_workload(tmp_path / "w", "chat")
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=400)
    with pytest.raises(TlsConfigError, match="not valid now"):
        load(folder, now=later)


def test_a_missing_file_is_named(ca, tmp_path):
    folder = ca.write_workload(tmp_path / "w", "chat")
    (folder / "ca.crt").unlink()
    with pytest.raises(TlsConfigError, match=r"ca\.crt"):
        load(folder)


def test_a_certificate_must_name_one_workload(ca, tmp_path):
    """A certificate without a SPIFFE ID (e.g. a plain web-server certificate from the same
    CA) says nothing about who calls, so it is not an identity."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("web")]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    folder = ca.write_workload(tmp_path / "w", "chat")
    (folder / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(TlsConfigError, match="exactly one workload"):
        load(folder)


def test_the_stack_ca_is_kept_and_its_certificates_reused(tmp_path):
    first = stack_tls(tmp_path)
    cert = (first["chat"] / "tls.crt").read_bytes()
    again = stack_tls(tmp_path)
    assert (again["chat"] / "tls.crt").read_bytes() == cert
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert oct((first["chat"] / "tls.key").stat().st_mode & 0o777) == "0o600"
    assert {load(folder).workload for folder in again.values()} == set(again)


def _clusters(rendered: str) -> dict[str, dict]:
    return {c["name"]: c for c in yaml.safe_load(rendered)["static_resources"]["clusters"]}


def _pinned(cluster: dict) -> list[str]:
    context = cluster["transport_socket"]["typed_config"]["common_tls_context"]
    return [
        m["matcher"]["exact"]
        for m in context["validation_context"]["match_typed_subject_alt_names"]
    ]


def test_envoy_pins_each_upstream_to_its_own_workload(tmp_path):
    clusters = _clusters(render(config(tls_dir=str(tmp_path))))
    for service in ("embedder", "retriever", "chat", "ingest", "auth"):
        assert _pinned(clusters[service]) == [spiffe_id(service)]
    assert _pinned(clusters["chat_http"]) == [spiffe_id("chat")]
    assert set(_pinned(clusters["system"])) == {
        spiffe_id(s) for s in ("embedder", "retriever", "chat", "ingest", "auth")
    }
    alpn = clusters["chat_http"]["transport_socket"]["typed_config"]["common_tls_context"]
    assert alpn["alpn_protocols"] == ["http/1.1"]
    # Not ours: the rate limiter and Envoy's own loop-back stay as they are.
    assert "transport_socket" not in clusters["ratelimit"]
    assert "transport_socket" not in clusters["gateway_self"]
    plain = _clusters(render(config()))
    assert not any("transport_socket" in c for c in plain.values())


def test_envoy_accepts_the_mutual_tls_config(tmp_path):
    folder = stack_tls(tmp_path / "tls")["gateway"]
    path = tmp_path / "envoy.yaml"
    path.write_text(render(config(tls_dir=str(folder))))
    proc = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
