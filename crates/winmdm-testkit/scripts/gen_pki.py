#!/usr/bin/env python3
"""Regenerate the winmdm test PKI and Entra key material under ../testdata.

Run through ../regen-testdata.sh (which also refreshes the Rust-minted fixtures).

Everything here is test-only material: private keys are committed on purpose.
The Windows-shaped CSRs are assembled by hand in DER because no Rust (and no
high-level Python) CSR builder can produce what real Windows clients send:
a PrintableString CN with '!' and a trailing NUL, the OIW sha1WithRSA OID
1.3.14.3.2.29, and the DeviceID extension 1.3.6.1.4.1.311.66.1.0.
"""
import datetime
import hashlib
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "testdata"
PKI = OUT / "pki"
ENTRA = OUT / "entra"

# Fixed identities, mirrored in src/pki.rs and src/entra.rs.
WIN10_DEVICE_ID = "6E1C8C36-8D77-4D38-B2C4-2F0B6E7E0A10"
WIN10_ENROLLMENT_GUID = "A4D5C6E7-1B2C-4D3E-8F90-1A2B3C4D5E6F"
WIN11_DEVICE_ID = "0F3E7C2A-5B64-4A19-9D2E-7C8B1A6F4E33"
DEVICE_RSA_ID = "3B0F5E2D-1C4A-4E8B-9F6D-2A7C8E1B5D40"
DEVICE_P256_ID = "7D2A4C6E-8F10-4B3D-A5C7-E9F1B3D5A7C9"


# --- minimal DER encoder -------------------------------------------------------------------
def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_len(len(content)) + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


def set_of(*items: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(items)))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, body)


def integer(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return tlv(0x02, body)


NULL = b"\x05\x00"


def printable(b: bytes) -> bytes:
    return tlv(0x13, b)


def utf8(s: str) -> bytes:
    return tlv(0x0C, s.encode())


def ia5(s: str) -> bytes:
    return tlv(0x16, s.encode())


def octet(b: bytes) -> bytes:
    return tlv(0x04, b)


def bitstring(b: bytes) -> bytes:
    return tlv(0x03, b"\x00" + b)


def cn_name(value_tlv: bytes) -> bytes:
    return seq(set_of(seq(oid("2.5.4.3"), value_tlv)))


def spki_der(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def extension(ext_oid: str, value: bytes, critical: bool = False) -> bytes:
    parts = [oid(ext_oid)]
    if critical:
        parts.append(b"\x01\x01\xff")
    parts.append(octet(value))
    return seq(*parts)


def attribute(attr_oid: str, *values: bytes) -> bytes:
    return seq(oid(attr_oid), set_of(*values))


def windows_csr(key, subject: bytes, attributes: list, sig_oid: str, hash_alg) -> bytes:
    cri = seq(integer(0), subject, spki_der(key), tlv(0xA0, b"".join(attributes)))
    signature = key.sign(cri, padding.PKCS1v15(), hash_alg)
    return seq(cri, seq(oid(sig_oid), NULL), bitstring(signature))


# --- writers ---------------------------------------------------------------------------------
def write_key(path: pathlib.Path, key) -> None:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.with_suffix(".key.der").write_bytes(der)
    path.with_suffix(".key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def write_cert(path: pathlib.Path, cert) -> None:
    path.with_suffix(".crt.der").write_bytes(cert.public_bytes(serialization.Encoding.DER))
    path.with_suffix(".crt.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_csr(path: pathlib.Path, der: bytes) -> None:
    import base64

    path.with_suffix(".csr.der").write_bytes(der)
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    path.with_suffix(".csr.pem").write_text(
        f"-----BEGIN CERTIFICATE REQUEST-----\n{lines}\n-----END CERTIFICATE REQUEST-----\n"
    )


def utc(y, m, d):
    return datetime.datetime(y, m, d, tzinfo=datetime.timezone.utc)


def ca_cert(subject_cn, key, issuer_cert, issuer_key, not_before, not_after, path_len):
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "winmdm testkit"),
        x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
    ])
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    serial = int.from_bytes(hashlib.sha256(subject_cn.encode()).digest()[:16], "big") >> 1
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def self_signed_leaf(cn, key, not_before, not_after):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    serial = int.from_bytes(hashlib.sha256(cn.encode()).digest()[:16], "big") >> 1
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )


def main() -> None:
    PKI.mkdir(parents=True, exist_ok=True)
    ENTRA.mkdir(parents=True, exist_ok=True)

    # Certificate authorities (P-256: the enrollment bench signs with P-256).
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = ca_cert("winmdm test root CA", root_key, None, root_key, utc(2025, 1, 1), utc(2045, 1, 1), 1)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = ca_cert("winmdm test device CA", inter_key, root, root_key, utc(2025, 1, 1), utc(2040, 1, 1), 0)
    expired_key = ec.generate_private_key(ec.SECP256R1())
    expired = ca_cert("winmdm expired CA", expired_key, None, expired_key, utc(2015, 1, 1), utc(2020, 1, 1), 0)
    for name, key, cert in (("root-ca", root_key, root), ("intermediate-ca", inter_key, inter), ("expired-ca", expired_key, expired)):
        write_key(PKI / name, key)
        write_cert(PKI / name, cert)

    # Plain device CSRs (what a well-behaved client or our simulator sends).
    for name, key, dev in (
        ("device-rsa2048", rsa.generate_private_key(65537, 2048), DEVICE_RSA_ID),
        ("device-p256", ec.generate_private_key(ec.SECP256R1()), DEVICE_P256_ID),
    ):
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dev)]))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )
        write_key(PKI / name, key)
        write_csr(PKI / name, csr.public_bytes(serialization.Encoding.DER))

    device_id_ext_oid = "1.3.6.1.4.1.311.66.1.0"
    ext_request = "1.2.840.113549.1.9.14"

    # Windows 10 shape: PrintableString CN "<GUID>!<DeviceID>" + NUL (illegal for the type),
    # OIW sha1WithRSA, OS version attribute, DeviceID extension holding the id + NUL.
    win10_key = rsa.generate_private_key(65537, 2048)
    win10_subject = cn_name(printable(f"{WIN10_ENROLLMENT_GUID}!{WIN10_DEVICE_ID}".encode() + b"\x00"))
    win10_attrs = [
        attribute("1.3.6.1.4.1.311.13.2.3", ia5("10.0.19045.2")),
        attribute(ext_request, seq(extension(device_id_ext_oid, WIN10_DEVICE_ID.encode() + b"\x00"))),
    ]
    write_key(PKI / "win10", win10_key)
    write_csr(PKI / "win10", windows_csr(win10_key, win10_subject, win10_attrs, "1.3.14.3.2.29", hashes.SHA1()))

    # Windows 11 shape: UTF8String CN, sha256WithRSA, clientAuth EKU, DeviceID extension.
    win11_key = rsa.generate_private_key(65537, 2048)
    win11_subject = cn_name(utf8(WIN11_DEVICE_ID))
    eku = seq(oid("1.3.6.1.5.5.7.3.2"))
    win11_attrs = [
        attribute("1.3.6.1.4.1.311.13.2.3", ia5("10.0.26100.2")),
        attribute(
            ext_request,
            seq(
                extension("2.5.29.37", eku),
                extension(device_id_ext_oid, WIN11_DEVICE_ID.encode() + b"\x00"),
            ),
        ),
    ]
    write_key(PKI / "win11", win11_key)
    write_csr(PKI / "win11", windows_csr(win11_key, win11_subject, win11_attrs, "1.2.840.113549.1.1.11", hashes.SHA256()))

    # Entra token-signing keys (RSA-2048, each with a self-signed certificate for x5c/x5t),
    # a stray key that no JWKS publishes, and two app credentials for client assertions.
    for i in range(1, 5):
        key = rsa.generate_private_key(65537, 2048)
        write_key(ENTRA / f"signing-key-{i}", key)
        write_cert(ENTRA / f"signing-key-{i}", self_signed_leaf(f"winmdm test token signing {i}", key, utc(2025, 1, 1), utc(2045, 1, 1)))
    stray = rsa.generate_private_key(65537, 2048)
    write_key(ENTRA / "stray-key", stray)
    write_cert(ENTRA / "stray-key", self_signed_leaf("winmdm stray key", stray, utc(2025, 1, 1), utc(2045, 1, 1)))
    for i in (1, 2):
        key = rsa.generate_private_key(65537, 2048)
        write_key(ENTRA / f"app-credential-{i}", key)
        write_cert(ENTRA / f"app-credential-{i}", self_signed_leaf(f"winmdm test MDM app credential {i}", key, utc(2025, 1, 1), utc(2045, 1, 1)))


if __name__ == "__main__":
    main()
