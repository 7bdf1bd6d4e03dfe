"""Verify a client assertion built by winmdm-entra with PyJWT.

Arguments: cert_pem audience client_id  (assertion on stdin)
Prints "ok <alg>" or raises.
"""
import base64
import hashlib
import sys

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

cert_path, audience, client_id = sys.argv[1:4]
assertion = sys.stdin.read().strip()
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
header = jwt.get_unverified_header(assertion)
alg = header["alg"]
if alg == "PS256":
    assert header["x5t#S256"] == b64u(hashlib.sha256(der).digest()), "x5t#S256"
elif alg == "RS256":
    assert header["x5t"] == b64u(hashlib.sha1(der).digest()), "x5t"
else:
    raise SystemExit(f"unexpected alg {alg}")
claims = jwt.decode(assertion, cert.public_key(), algorithms=[alg], audience=audience, issuer=client_id,
                    options={"require": ["exp", "iss", "aud", "sub", "jti", "nbf"]})
assert claims["sub"] == client_id
assert 0 < claims["exp"] - claims["nbf"] <= 600
print(f"ok {alg}")
