#!/usr/bin/env bash
# Regenerates every committed fixture of winmdm-testkit:
#   1. the test PKI and Entra key material (Python `cryptography`; the Windows-shaped CSRs
#      are assembled in DER by hand because no Rust crate can produce them),
#   2. the tokens, JWKS and metadata documents minted by the Rust code from those keys.
# Usage: crates/winmdm-testkit/regen-testdata.sh   (needs: python3 -m pip install cryptography)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python3 "$here/scripts/gen_pki.py"
cargo run --quiet -p winmdm-testkit --example regen_testdata
