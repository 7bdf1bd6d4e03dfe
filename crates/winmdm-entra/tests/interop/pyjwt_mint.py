"""Mint Entra-shaped v2 access tokens with PyJWT (an independent implementation).

Arguments: signing_key_pem kid tenant_id audience oid now
Prints a JSON object of named tokens.
"""
import json
import sys

import jwt

key_path, kid, tid, aud, oid, now = sys.argv[1:7]
now = int(now)
key = open(key_path, "rb").read()
claims = {
    "aud": aud, "iss": f"https://login.microsoftonline.com/{tid}/v2.0", "iat": now, "nbf": now,
    "exp": now + 3600, "oid": oid, "tid": tid, "ver": "2.0", "scp": "mdm_delegation",
    "preferred_username": "alice@contoso.example", "name": "Alice via PyJWT", "sub": "pyjwt-sub",
}
headers = {"kid": kid, "typ": "JWT"}
good = jwt.encode(claims, key, algorithm="RS256", headers=headers)
head, body, sig = good.split(".")
tampered_sig = sig[:-8] + ("A" if sig[-8] != "A" else "B") + sig[-7:]
out = {
    "valid": good,
    "tampered": f"{head}.{body}.{tampered_sig}",
    "wrong_audience": jwt.encode({**claims, "aud": "https://not-the-mdm.example"}, key, algorithm="RS256", headers=headers),
    "expired": jwt.encode({**claims, "exp": now - 3600, "nbf": now - 7200, "iat": now - 7200}, key, algorithm="RS256", headers=headers),
    "hs256_with_public_key": jwt.api_jws.PyJWS(algorithms=["HS256"]).encode(
        json.dumps(claims).encode(), b"not-the-rsa-key", algorithm="HS256", headers=headers),
}
print(json.dumps(out))
