"""Verify testkit tokens with PyJWT, an independent JWT implementation.

Reads {"jwks": {...}, "cases": [{"name", "token", "audience", "issuer"}]} on stdin and
prints one line per case: "<name> valid" or "<name> rejected <ExceptionName>".
"""
import json
import sys

import jwt

doc = json.load(sys.stdin)
keys = {k["kid"]: jwt.PyJWK.from_dict(k, algorithm="RS256") for k in doc["jwks"]["keys"]}
for case in doc["cases"]:
    name = case["name"]
    try:
        header = jwt.get_unverified_header(case["token"])
        key = keys.get(header.get("kid"))
        if key is None:
            raise jwt.exceptions.PyJWKError("unknown kid")
        jwt.decode(
            case["token"],
            key=key.key,
            algorithms=["RS256"],
            audience=case["audience"],
            issuer=case["issuer"],
            options={"require": ["exp", "iss", "aud", "nbf", "iat"]},
            leeway=0,
        )
        print(f"{name} valid")
    except Exception as e:  # every rejection kind is reported by name
        print(f"{name} rejected {type(e).__name__}")
