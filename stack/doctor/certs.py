"""Certificate dates, read with `cryptography` (no `openssl` binary), for the settings check on the
TLS files and the probe of the certificate a server serves."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# A certificate closer than this to its end is a finding (ACME renews at 30 days left).
CERT_EXPIRY_DAYS = 14


def certificate_expiry(cert: Path) -> datetime | None:
    """The notAfter date of a PEM certificate (the first of a chain), or None when it cannot be read."""
    try:
        data = cert.read_bytes()
    except OSError:
        return None
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(data).not_valid_after_utc
    except ValueError:
        return None


def not_after(cert: dict[str, Any] | None, der: bytes | None) -> datetime | None:
    import ssl

    if cert and cert.get("notAfter"):
        return datetime.fromtimestamp(ssl.cert_time_to_seconds(cert["notAfter"]), UTC)
    if der:
        from cryptography import x509

        try:
            return x509.load_der_x509_certificate(der).not_valid_after_utc
        except ValueError:
            return None
    return None


def days_left(expiry: datetime) -> float:
    return (expiry - datetime.now(UTC)).total_seconds() / 86400
