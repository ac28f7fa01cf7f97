//! JWT verification: which key and algorithm a token may use, its signature (checked by
//! `jsonwebtoken`), and its time, issuer and audience (checked here against the caller's clock), and
//! the claims it carries. No I/O beyond `Verifier::load` reading the key file.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderValue, StatusCode};
use jsonwebtoken::errors::{Error as JoseError, ErrorKind};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use super::keys::{self, Key};
#[allow(unused_imports)] // KeyProblem: for callers that match on the cause, once wired in
pub use super::keys::{KeyError, KeyProblem};

/// A route's `jwt` settings, as the config validated them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// A JWKS, one PEM public key, or a file holding an HMAC secret.
    pub keys: PathBuf,
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty accepts any (or none).
    pub audiences: Vec<String>,
    /// Empty: what the keys support.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
}

/// Verifies tokens against the keys of one file. Immutable after `load`: share it in an `Arc`.
pub struct Verifier {
    keys: Vec<Key>,
    /// The allowed algorithms, each with its `jsonwebtoken` settings: signature only.
    algorithms: Vec<(Algorithm, Validation)>,
    issuer: Option<String>,
    audiences: Vec<String>,
    leeway: u64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("algorithms", &self.algorithms())
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .finish()
    }
}

/// Why a token was refused. No message holds the token.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("no token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(#[source] JoseError),
    /// The header's `alg` is not one the keys allow (`None`: a name with no algorithm, as `none`).
    #[error("algorithm {} is not allowed", alg_name(.0))]
    AlgorithmNotAllowed(Option<Algorithm>),
    #[error("no key has the token's kid and algorithm")]
    UnknownKey,
    #[error("bad signature")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not the one expected")]
    WrongIssuer,
    #[error("the token's audience is not one expected")]
    WrongAudience,
}

fn alg_name(alg: &Option<Algorithm>) -> String {
    alg.map_or_else(|| "unknown or none".to_owned(), |a| format!("{a:?}"))
}

impl JwtError {
    /// RFC 6750 §3.1: a missing or bad token is 401 (`invalid_token`); a valid token for someone
    /// else (another issuer or audience) is 403, as Envoy's `jwt_authn` answers.
    pub fn status(&self) -> StatusCode {
        match self {
            JwtError::Missing
            | JwtError::Malformed(_)
            | JwtError::AlgorithmNotAllowed(_)
            | JwtError::UnknownKey
            | JwtError::BadSignature
            | JwtError::Expired
            | JwtError::NotYetValid => StatusCode::UNAUTHORIZED,
            JwtError::WrongIssuer | JwtError::WrongAudience => StatusCode::FORBIDDEN,
        }
    }

    /// The `result` label of the handshake metric.
    pub fn result_label(&self) -> &'static str {
        if self.status() == StatusCode::FORBIDDEN {
            "forbidden"
        } else {
            "unauthorized"
        }
    }
}

impl Verifier {
    /// Reads and checks the key file.
    pub fn load(settings: &JwtSettings) -> Result<Verifier, KeyError> {
        let (keys, algorithms) = keys::load(&settings.keys, &settings.algorithms)?;
        let algorithms = algorithms
            .into_iter()
            .map(|alg| {
                // Time, issuer and audience are checked by `check_claims` against the caller's
                // clock (tests run on a paused one); jsonwebtoken checks the signature only.
                let mut v = Validation::new(alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                v.validate_nbf = false;
                v.validate_aud = false;
                v.leeway = 0;
                (alg, v)
            })
            .collect();
        Ok(Verifier {
            keys,
            algorithms,
            issuer: settings.issuer.clone(),
            audiences: settings.audiences.clone(),
            leeway: settings.leeway.as_secs(),
        })
    }

    /// The algorithms accepted, for the startup log.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        self.algorithms.iter().map(|(a, _)| *a).collect()
    }

    /// Checks `token` at `now_unix` (seconds since the epoch) and returns its claims.
    pub fn verify(&self, token: &str, now_unix: u64) -> Result<Claims, JwtError> {
        let (alg_name, kid) = read_header(token)?;
        let allowed = Algorithm::from_str(&alg_name)
            .ok()
            .and_then(|alg| self.algorithms.iter().find(|(a, _)| *a == alg));
        let Some((alg, validation)) = allowed else {
            return Err(JwtError::AlgorithmNotAllowed(
                Algorithm::from_str(&alg_name).ok(),
            ));
        };
        // A key without a kid (a PEM file, most JWKs of one key) is tried for any kid, as Envoy does.
        let mut candidates = self
            .keys
            .iter()
            .filter(|k| k.fits(*alg))
            .filter(|k| match (&kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(JwtError::UnknownKey);
        }
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation) {
                Ok(data) => {
                    let claims = Claims(data.claims);
                    self.check_claims(&claims, now_unix)?;
                    return Ok(claims);
                }
                // This key is not the one: try the next.
                Err(e) if is_key_mismatch(e.kind()) => continue,
                Err(e) => return Err(JwtError::Malformed(e)),
            }
        }
        Err(JwtError::BadSignature)
    }

    fn check_claims(&self, claims: &Claims, now: u64) -> Result<(), JwtError> {
        // RFC 7519 §4.1.4: valid only before `exp`; §4.1.5: not before `nbf`. No `exp` is accepted.
        if let Some(exp) = numeric_date(claims, "exp")? {
            if exp.saturating_add(self.leeway) <= now {
                return Err(JwtError::Expired);
            }
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if nbf > now.saturating_add(self.leeway) {
                return Err(JwtError::NotYetValid);
            }
        }
        if let Some(issuer) = &self.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(JwtError::WrongIssuer);
            }
        }
        if !self.audiences.is_empty() {
            // RFC 7519 §4.1.3: one string or an array of them.
            let wanted = |v: &Value| {
                v.as_str()
                    .is_some_and(|s| self.audiences.iter().any(|a| a == s))
            };
            let ok = match claims.get("aud") {
                Some(Value::Array(auds)) => auds.iter().any(wanted),
                Some(aud) => wanted(aud),
                None => false,
            };
            if !ok {
                return Err(JwtError::WrongAudience);
            }
        }
        Ok(())
    }
}

/// The errors of a key that cannot have made the signature, as against a broken token.
fn is_key_mismatch(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
    )
}

/// The header's `alg` and `kid`, read here rather than by jsonwebtoken, whose `Header` cannot hold
/// an algorithm it lacks (`none`) and would call that token malformed rather than not allowed.
fn read_header(token: &str) -> Result<(String, Option<String>), JwtError> {
    let malformed = |e: JoseError| JwtError::Malformed(e);
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        // RFC 7515 §7.1: header.payload.signature; five parts would be an encrypted JWE.
        return Err(malformed(ErrorKind::InvalidToken.into()));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|e| malformed(e.into()))?;
    let header: Map<String, Value> =
        serde_json::from_slice(&bytes).map_err(|e| malformed(e.into()))?;
    let text = |name: &str| match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(malformed(ErrorKind::InvalidToken.into())),
    };
    let alg = text("alg")?.ok_or_else(|| malformed(ErrorKind::MissingAlgorithm.into()))?;
    Ok((alg, text("kid")?))
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional; before the epoch counts as 0.
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(
            n.as_u64()
                // `as` saturates: a negative or NaN date is 0, a huge one u64::MAX.
                .unwrap_or_else(|| n.as_f64().map_or(0, |f| f as u64)),
        )),
        Some(_) => Err(JwtError::Malformed(
            ErrorKind::InvalidClaimFormat(name.to_owned()).into(),
        )),
    }
}

/// The payload of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims(Map<String, Value>);

impl Claims {
    pub fn get(&self, claim: &str) -> Option<&Value> {
        self.0.get(claim)
    }

    /// `exp` in seconds since the epoch, for closing the tunnel when the token expires.
    pub fn expires_at(&self) -> Option<u64> {
        numeric_date(self, "exp").ok().flatten()
    }

    /// A claim as the text of a request header for the backend: a string as it is, a number or a
    /// bool as text, an array or object as compact JSON; None when absent, null, or not valid in a
    /// header (a control character, non-ASCII text).
    pub fn header_value(&self, claim: &str) -> Option<String> {
        let text = match self.0.get(claim)? {
            Value::Null => return None,
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            v @ (Value::Array(_) | Value::Object(_)) => v.to_string(),
        };
        // RFC 9110 §5.5: obs-text (non-ASCII) is obsolete, and backends read it each their own way.
        (text.is_ascii() && HeaderValue::from_str(&text).is_ok()).then_some(text)
    }
}

#[cfg(test)]
#[path = "jwt_tests.rs"]
mod tests;
