"""The development PKI: what a party's certificate says, where its files are, and when it is re-issued."""

from __future__ import annotations

import ipaddress
import stat

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metrofed.pki import DevCA


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_party_certificate_names_the_party_for_both_tls_roles(tmp_path):
    ca = DevCA(tmp_path)
    tls = ca.issue("centre-hz-oil-gas", hosts=["centre-hz-oil-gas.metrofed.svc"])
    assert tls.ca == tmp_path.resolve() / "pki" / "ca.pem"
    assert tls.cert == tmp_path.resolve() / "pki" / "parties" / "centre-hz-oil-gas" / "tls.pem"
    cert = load(tls.cert)
    cert.verify_directly_issued_by(load(tls.ca))
    assert cert.subject.rfc4514_string() == "CN=centre-hz-oil-gas"
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp256r1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "centre-hz-oil-gas.metrofed.svc"]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert load(tls.ca).subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "metrofed development CA"


def test_private_keys_are_readable_by_their_owner_only(tmp_path):
    tls = DevCA(tmp_path).issue("gateway")
    for key in (tls.key, tmp_path / "pki" / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # unencrypted PKCS#8


def test_issuing_again_reuses_a_valid_certificate(tmp_path):
    ca = DevCA(tmp_path)
    first = ca.issue("gateway").cert.read_bytes()
    assert DevCA(tmp_path).issue("gateway").cert.read_bytes() == first


def test_asking_for_another_host_or_a_new_ca_reissues(tmp_path):
    ca = DevCA(tmp_path)
    first = ca.issue("gateway").cert.read_bytes()
    second = ca.issue("gateway", hosts=["gateway.example"]).cert.read_bytes()
    assert second != first
    # A CA replaced (its files removed): the party's certificate no longer chains to it and is re-issued.
    ca.ca_cert_path.unlink()
    ca.ca_key_path.unlink()
    third = DevCA(tmp_path).issue("gateway", hosts=["gateway.example"])
    load(third.cert).verify_directly_issued_by(load(third.ca))
    assert third.cert.read_bytes() != second


def test_a_party_name_must_be_a_plain_principal(tmp_path):
    import pytest

    for bad in ("Admin", "centre x", "a,CN=admin", "", "-x"):
        with pytest.raises(ValueError):
            DevCA(tmp_path).issue(bad)
