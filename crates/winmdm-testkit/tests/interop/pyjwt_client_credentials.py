"""Drive the testkit Entra emulator's client-credentials flow with PyJWT-built assertions.

Arguments: base_url tenant_id client_id cert_pem_path key_pem_path secret.
Prints one line per check and exits non-zero if any check fails.
"""
import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

base_url, tenant, client_id, cert_path, key_path, secret = sys.argv[1:7]
token_url = f"{base_url}/{tenant}/oauth2/v2.0/token"
cert = x509.load_pem_x509_certificate(open(cert_path, "rb").read())
der = cert.public_bytes(serialization.Encoding.DER)
key_pem = open(key_path, "rb").read()
b64u = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
failures = 0


def post(fields):
    data = urllib.parse.urlencode(fields).encode()
    req = urllib.request.Request(token_url, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def check(name, ok):
    global failures
    print(f"{name} {'ok' if ok else 'FAILED'}")
    if not ok:
        failures += 1


def assertion(alg, header):
    now = int(time.time())
    claims = {"aud": token_url, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
              "nbf": now, "iat": now, "exp": now + 600}
    return jwt.encode(claims, key_pem, algorithm=alg, headers=header)


base = {"grant_type": "client_credentials", "client_id": client_id,
        "scope": "https://graph.microsoft.com/.default"}
tokens = []
for alg, header in (("RS256", {"x5t": b64u(hashlib.sha1(der).digest())}),
                    ("PS256", {"x5t#S256": b64u(hashlib.sha256(der).digest())})):
    status, body = post({**base, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                         "client_assertion": assertion(alg, header)})
    check(f"assertion-{alg}", status == 200 and body.get("token_type") == "Bearer")
    tokens.append(body.get("access_token", ""))

status, body = post({**base, "client_secret": secret})
check("secret", status == 200)
tokens.append(body.get("access_token", ""))

status, body = post({**base, "client_secret": secret + "x"})
check("wrong-secret-rejected", status == 401 and body.get("error") == "invalid_client")

# An assertion signed by a key the app never registered.
from cryptography.hazmat.primitives.asymmetric import rsa
rogue = rsa.generate_private_key(65537, 2048).private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
now = int(time.time())
forged = jwt.encode({"aud": token_url, "iss": client_id, "sub": client_id, "jti": str(uuid.uuid4()),
                     "nbf": now, "exp": now + 600}, rogue, algorithm="RS256",
                    headers={"x5t": b64u(hashlib.sha1(der).digest())})
status, body = post({**base, "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                     "client_assertion": forged})
check("forged-assertion-rejected", status == 401)

# The issued access tokens verify against the emulator's published keys.
with urllib.request.urlopen(f"{base_url}/{tenant}/v2.0/.well-known/openid-configuration", timeout=30) as r:
    metadata = json.load(r)
with urllib.request.urlopen(metadata["jwks_uri"], timeout=30) as r:
    jwks = jwt.PyJWKSet.from_dict(json.load(r))
for i, token in enumerate(tokens):
    try:
        kid = jwt.get_unverified_header(token)["kid"]
        key = next(k for k in jwks.keys if k.key_id == kid)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="https://graph.microsoft.com",
                            issuer=f"https://sts.windows.net/{tenant}/", options={"require": ["exp", "iss", "aud"]})
        check(f"access-token-{i}-verifies", claims.get("tid") == tenant and claims.get("idtyp") == "app")
    except Exception as e:
        print(f"access-token-{i} error {type(e).__name__}: {e}")
        check(f"access-token-{i}-verifies", False)

sys.exit(1 if failures else 0)
