//! Client authentication on the upgrade path (issue 14): where a credential comes from and how it
//! is removed before the request goes upstream (`token`), JWT keys and verification (`jwt`), and the
//! forward-auth client (`forward`). No I/O beyond reading the key file, but for `forward`.

pub mod forward;
pub mod jwt;
mod keys;
pub mod token;

use std::str::FromStr;

use crate::config::JwtConfig;

/// The verifier of a route's `auth.jwt`: its key file read now (at validation, start and reload).
pub fn verifier(config: &JwtConfig) -> Result<jwt::Verifier, String> {
    let algorithms = config
        .algorithms
        .iter()
        .map(|a| {
            jsonwebtoken::Algorithm::from_str(a).map_err(|_| format!("{a:?} is not an algorithm"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = jwt::JwtSettings {
        keys: config.keys.clone(),
        issuer: config.issuer.clone(),
        audiences: config.audiences.clone(),
        algorithms,
        leeway: config.leeway,
    };
    jwt::Verifier::load(&settings).map_err(|e| e.to_string())
}
