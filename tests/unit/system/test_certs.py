"""First start makes a self-signed certificate; an installer's own pair is kept."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

from cryptography import x509

from firmware.system.certs import ensure_certificate, server_context


def test_generated_once_and_tls12_minimum(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, "kontor")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kontor" in names.get_values_for_type(x509.DNSName)
    before = cert.read_bytes()
    assert ensure_certificate(tmp_path, "other") == (cert, key)
    assert cert.read_bytes() == before  # not regenerated
    ctx = server_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2


def test_installer_pair_is_used(tmp_path: Path) -> None:
    own = tmp_path / "own"
    cert, key = ensure_certificate(own, "ca-signed.example")
    tls = tmp_path / "box" / "tls"
    tls.mkdir(parents=True)
    (tls / "cert.pem").write_bytes(cert.read_bytes())
    (tls / "key.pem").write_bytes(key.read_bytes())
    got_cert, _ = ensure_certificate(tmp_path / "box", "kontor")
    assert got_cert.read_bytes() == cert.read_bytes()
