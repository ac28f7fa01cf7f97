#!/usr/bin/env bash
# Regenerates the test-only JWT keys of src/auth/jwt_tests.rs (the outputs are committed; run from
# anywhere). Private keys are PKCS#8, the form jsonwebtoken's EncodingKey reads for EC and Ed25519.
set -euo pipefail
cd "$(dirname "$0")"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem
openssl pkey -in rsa.pem -pubout -out rsa.pub.pem
openssl rsa -pubin -in rsa.pub.pem -RSAPublicKey_out -out rsa.pkcs1.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec256.pem
openssl pkey -in ec256.pem -pubout -out ec256.pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.pem
openssl pkey -in ec384.pem -pubout -out ec384.pub.pem
openssl genpkey -algorithm ED25519 -out ed25519.pem
openssl pkey -in ed25519.pem -pubout -out ed25519.pub.pem
openssl rand -hex 32 > hmac.secret

# JWKS of the RSA, P-256 and Ed25519 public keys. The DER of a P-256 SubjectPublicKeyInfo ends with
# the 65-byte uncompressed point (04 || x || y), an Ed25519 one with the 32-byte key.
b64url() { python3 -c 'import sys,base64; print(base64.urlsafe_b64encode(bytes.fromhex(sys.argv[1])).rstrip(b"=").decode())' "$1"; }
der_hex() { openssl pkey -pubin -in "$1" -outform DER | od -An -v -tx1 | tr -d ' \n'; }
n=$(openssl rsa -pubin -in rsa.pub.pem -noout -modulus | sed 's/^Modulus=//')
e=$(printf '%06x' "$(openssl rsa -pubin -in rsa.pub.pem -noout -text | sed -n 's/^Exponent: \([0-9]*\).*/\1/p')")
ec=$(der_hex ec256.pub.pem); ec=${ec: -130}
ed=$(der_hex ed25519.pub.pem); ed=${ed: -64}
cat > jwks.json <<JSON
{
  "keys": [
    {"kty": "RSA", "kid": "rsa1", "use": "sig", "n": "$(b64url "$n")", "e": "$(b64url "$e")"},
    {"kty": "EC", "kid": "ec1", "crv": "P-256", "alg": "ES256", "x": "$(b64url "${ec:2:64}")", "y": "$(b64url "${ec:66:64}")"},
    {"kty": "OKP", "kid": "ed1", "crv": "Ed25519", "x": "$(b64url "$ed")"}
  ]
}
JSON
