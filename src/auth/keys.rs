//! The JWT key file: a JWKS, one PEM public key or a shared secret, told apart by content, turned
//! into `jsonwebtoken` keys that were each tried once, and the algorithms they allow.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Why the key file cannot be used, with its path.
#[derive(Debug, thiserror::Error)]
#[error("JWT keys {}: {problem}", path.display())]
pub struct KeyError {
    pub path: PathBuf,
    #[source]
    pub problem: KeyProblem,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyProblem {
    #[error("cannot read the file: {0}")]
    Unreadable(#[source] std::io::Error),
    #[error("the file is empty")]
    Empty,
    #[error("not valid JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("JSON without a \"keys\" array (a JWKS was expected)")]
    NoKeysArray,
    #[error("the JWKS has no signing key")]
    NoKeys,
    #[error("JWKS key {index} unsupported: {why}")]
    UnsupportedJwk { index: usize, why: String },
    #[error("the PEM block is {label:?}, not a public key")]
    PemNotPublic { label: String },
    #[error("the PEM public key is not RSA, EC P-256/P-384 or Ed25519")]
    PemUnsupported(#[source] Option<jsonwebtoken::errors::Error>),
    /// Neither JSON nor PEM: a shared secret, which must be named as HS256.
    #[error("neither JSON nor PEM, so read as an HMAC secret, which needs `algorithms: [HS256]` (got {0:?})")]
    SecretNeedsHs256(Vec<Algorithm>),
    #[error("no key supports {0:?}")]
    AlgorithmsUnsupported(Vec<Algorithm>),
}

/// What a key is, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
    Secret,
}

impl KeyType {
    fn supports(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyType::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyType::P256 => alg == ES256,
            KeyType::P384 => alg == ES384,
            KeyType::Ed25519 => alg == EdDSA,
            KeyType::Secret => matches!(alg, HS256 | HS384 | HS512),
        }
    }

    /// What a key allows when the config names no algorithms (the ones issuers use).
    fn defaults(self) -> &'static [Algorithm] {
        use Algorithm::*;
        match self {
            KeyType::Rsa => &[RS256, RS384, RS512, PS256],
            KeyType::P256 => &[ES256],
            KeyType::P384 => &[ES384],
            KeyType::Ed25519 => &[EdDSA],
            KeyType::Secret => &[HS256],
        }
    }
}

/// One verification key with the `kid` and `alg` its JWK gave it.
pub(super) struct Key {
    pub kid: Option<String>,
    pub alg: Option<Algorithm>,
    pub kind: KeyType,
    pub key: DecodingKey,
}

impl Key {
    fn new(kind: KeyType, key: DecodingKey) -> Key {
        Key {
            kid: None,
            alg: None,
            kind,
            key,
        }
    }

    pub fn fits(&self, alg: Algorithm) -> bool {
        self.kind.supports(alg) && self.alg.is_none_or(|a| a == alg)
    }

    fn allowed(&self) -> &[Algorithm] {
        match &self.alg {
            Some(a) => std::slice::from_ref(a),
            None => self.kind.defaults(),
        }
    }
}

/// Reads the file and returns its keys with the algorithms to accept: `algorithms`, each checked
/// against the keys, or when it is empty what the keys support.
pub(super) fn load(
    path: &Path,
    algorithms: &[Algorithm],
) -> Result<(Vec<Key>, Vec<Algorithm>), KeyError> {
    let error = |problem| KeyError {
        path: path.to_owned(),
        problem,
    };
    let bytes = std::fs::read(path).map_err(|e| error(KeyProblem::Unreadable(e)))?;
    let keys = parse(&bytes, algorithms).map_err(error)?;
    let allowed = if algorithms.is_empty() {
        distinct(keys.iter().flat_map(Key::allowed))
    } else {
        let unsupported: Vec<Algorithm> = algorithms
            .iter()
            .copied()
            .filter(|a| !keys.iter().any(|k| k.fits(*a)))
            .collect();
        if !unsupported.is_empty() {
            return Err(error(KeyProblem::AlgorithmsUnsupported(unsupported)));
        }
        distinct(algorithms)
    };
    Ok((keys, allowed))
}

fn distinct<'a>(algs: impl IntoIterator<Item = &'a Algorithm>) -> Vec<Algorithm> {
    let mut all = Vec::new();
    for alg in algs {
        if !all.contains(alg) {
            all.push(*alg);
        }
    }
    all
}

fn parse(bytes: &[u8], algorithms: &[Algorithm]) -> Result<Vec<Key>, KeyProblem> {
    let start = bytes.trim_ascii_start();
    if start.starts_with(b"{") {
        jwks(bytes)
    } else if start.starts_with(b"-----BEGIN") {
        pem(start).map(|k| vec![k])
    } else {
        let secret = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let secret = secret.strip_suffix(b"\r").unwrap_or(secret);
        if secret.is_empty() {
            return Err(KeyProblem::Empty);
        }
        // A secret verifies HMAC only, and HS256 is the one issuers use. It must be asked for by
        // name: a garbled PEM or JWKS would otherwise load as a "secret" and refuse every token.
        if algorithms != [Algorithm::HS256] {
            return Err(KeyProblem::SecretNeedsHs256(algorithms.to_vec()));
        }
        Ok(vec![Key::new(
            KeyType::Secret,
            DecodingKey::from_secret(secret),
        )])
    }
}

fn jwks(bytes: &[u8]) -> Result<Vec<Key>, KeyProblem> {
    let set: Value = serde_json::from_slice(bytes).map_err(KeyProblem::NotJson)?;
    let entries = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(KeyProblem::NoKeysArray)?;
    let mut keys = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        // RFC 7517 §4.2: an encryption key has no business verifying signatures.
        if entry.get("use").and_then(Value::as_str) == Some("enc") {
            continue;
        }
        keys.push(jwk(entry).map_err(|why| KeyProblem::UnsupportedJwk { index, why })?);
    }
    if keys.is_empty() {
        return Err(KeyProblem::NoKeys);
    }
    Ok(keys)
}

/// One JWK (RFC 7517, RFC 7518 §6, RFC 8037 for OKP); the error says what is wrong with it.
fn jwk(entry: &Value) -> Result<Key, String> {
    let field = |name: &str| match entry.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(format!("{name:?} is not a string")),
    };
    let need = |name: &str| field(name)?.ok_or_else(|| format!("no {name:?}"));
    let bad = |e: jsonwebtoken::errors::Error| format!("bad key parameters: {e}");
    let kty = need("kty")?;
    let (kind, key) = match kty {
        "RSA" => {
            let (n, e) = (need("n")?, need("e")?);
            check_rsa(n, e)?;
            let key = DecodingKey::from_rsa_components(n, e).map_err(bad)?;
            (KeyType::Rsa, key)
        }
        "EC" => {
            let kind = match need("crv")? {
                "P-256" => KeyType::P256,
                "P-384" => KeyType::P384,
                crv => return Err(format!("curve {crv:?} (P-256 and P-384 are)")),
            };
            let key = DecodingKey::from_ec_components(need("x")?, need("y")?).map_err(bad)?;
            (kind, key)
        }
        "OKP" => match need("crv")? {
            "Ed25519" => (
                KeyType::Ed25519,
                DecodingKey::from_ed_components(need("x")?).map_err(bad)?,
            ),
            crv => return Err(format!("curve {crv:?} (Ed25519 is)")),
        },
        "oct" => {
            let secret = URL_SAFE_NO_PAD
                .decode(need("k")?)
                .map_err(|e| format!("\"k\" is not base64url: {e}"))?;
            if secret.is_empty() {
                return Err("empty \"k\"".into());
            }
            (KeyType::Secret, DecodingKey::from_secret(&secret))
        }
        kty => return Err(format!("key type {kty:?} (RSA, EC, OKP and oct are)")),
    };
    let alg = match field("alg")? {
        None => None,
        Some(name) => match Algorithm::from_str(name) {
            Ok(a) if kind.supports(a) => Some(a),
            _ => return Err(format!("\"alg\" {name:?} does not fit a {kty} key")),
        },
    };
    let mut key = Key::new(kind, key);
    key.kid = field("kid")?.map(str::to_owned);
    key.alg = alg;
    if !usable(&key) {
        return Err("bad key parameters (not a point of the curve, or the wrong size)".into());
    }
    Ok(key)
}

/// RFC 7518 §3.3: RSA keys of at least 2048 bits; the RSA backend takes up to 4096 bits and
/// exponents up to 2^33 - 1. Checked here because a bad RSA key would only show as bad signatures.
fn check_rsa(n: &str, e: &str) -> Result<(), String> {
    let decode = |v: &str, name: &str| {
        URL_SAFE_NO_PAD
            .decode(v)
            .map_err(|err| format!("{name:?} is not base64url: {err}"))
    };
    let n = decode(n, "n")?;
    let n = &n[n.iter().take_while(|b| **b == 0).count()..];
    let bits = (n.len() * 8).saturating_sub(n.first().map_or(8, |b| b.leading_zeros() as usize));
    if !(2048..=4096).contains(&bits) {
        return Err(format!("an RSA modulus of {bits} bits (2048 to 4096 are)"));
    }
    let e = decode(e, "e")?;
    let e = &e[e.iter().take_while(|b| **b == 0).count()..];
    let value = (e.len() <= 8).then(|| e.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)));
    match value {
        Some(3..=0x1_ffff_ffff) => Ok(()),
        _ => Err("an RSA exponent out of range".into()),
    }
}

/// One PEM public key: SPKI (`PUBLIC KEY`: RSA, EC or Ed25519) or PKCS#1 (`RSA PUBLIC KEY`).
fn pem(text: &[u8]) -> Result<Key, KeyProblem> {
    let label = text
        .strip_prefix(b"-----BEGIN ")
        .and_then(|rest| rest.split(|b| *b == b'-').next())
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .unwrap_or_default();
    // A private key or a certificate would be read as its public key by jsonwebtoken; refusing it
    // keeps private keys out of the proxy's config.
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(KeyProblem::PemNotPublic { label });
    }
    let mut last = None;
    let tries = [
        DecodingKey::from_rsa_pem(text).map(|k| (KeyType::Rsa, k)),
        DecodingKey::from_ec_pem(text).map(|k| (KeyType::P256, k)),
        DecodingKey::from_ec_pem(text).map(|k| (KeyType::P384, k)),
        DecodingKey::from_ed_pem(text).map(|k| (KeyType::Ed25519, k)),
    ];
    for attempt in tries {
        match attempt {
            Ok((kind, key)) => {
                let key = Key::new(kind, key);
                // The EC PEM decoder does not say the curve: the one whose verifier takes the point.
                if usable(&key) {
                    return Ok(key);
                }
            }
            Err(e) => last = Some(e),
        }
    }
    Err(KeyProblem::PemUnsupported(last))
}

/// Whether the backend can build a verifier from the key: it parses EC points and Ed25519 keys then
/// (a check against an empty signature, which fails without an error). RSA keys it parses only
/// when verifying, so `check_rsa` stands in for JWKs.
fn usable(key: &Key) -> bool {
    // The Ed25519 verifier slices the first 32 bytes without a length check.
    if key.kind == KeyType::Ed25519 && key.key.as_bytes().len() != 32 {
        return false;
    }
    let Some(alg) = key.allowed().first() else {
        return false;
    };
    jsonwebtoken::crypto::verify("", b"", &key.key, *alg).is_ok()
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
