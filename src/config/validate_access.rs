//! Validation of the access-control settings: `routes[].auth`, `client_limits` (listeners and
//! routes), `websocket.rate_limit` and `websocket.max_duration`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;
use jsonwebtoken::Algorithm;

use super::super::access::*;
use super::super::raw::{RawAuth, RawClientLimits, RawForwardAuth, RawJwt, RawRate, RawRateLimit};
use super::super::units::{parse_duration, parse_size};
use super::Errors;
use crate::auth::jwt::{JwtSettings, Verifier};
use crate::auth::token::TokenSource;
use wsgate_proto::close::{is_valid_wire_code, CloseCode};

const DEFAULT_TABLE_SIZE: usize = 100_000;
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const DEFAULT_FORWARD_TIMEOUT: Duration = Duration::from_secs(5);
/// The JOSE algorithms wsgate verifies (issue 14): asymmetric keys and HS256.
pub(crate) const ALGORITHMS: [&str; 8] = [
    "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256",
];

pub(super) fn client_limits(
    path: &str,
    raw: Option<&RawClientLimits>,
    errors: &mut Errors,
) -> Option<ClientLimits> {
    let raw = raw?;
    let path = format!("{path}.client_limits");
    if raw.max_tunnels == Some(0) {
        errors.push(format!("{path}.max_tunnels"), "must be at least 1");
    }
    let table_size = raw.table_size.unwrap_or(DEFAULT_TABLE_SIZE);
    if !(16..=10_000_000).contains(&table_size) {
        errors.push(
            format!("{path}.table_size"),
            format!("{table_size} is outside 16..10000000"),
        );
    }
    if raw.max_tunnels.is_none() && raw.handshake_rate.is_none() {
        errors.warn(
            &path,
            "sets neither max_tunnels nor handshake_rate: it limits nothing",
        );
    }
    Some(ClientLimits {
        max_tunnels: raw.max_tunnels,
        handshake_rate: raw
            .handshake_rate
            .as_ref()
            .map(|r| rate(&format!("{path}.handshake_rate"), r, errors)),
        table_size,
    })
}

fn rate(path: &str, raw: &RawRate, errors: &mut Errors) -> RateConfig {
    if raw.rate == 0 {
        errors.push(format!("{path}.rate"), "must be at least 1 per second");
    }
    let burst = raw.burst.unwrap_or(raw.rate).max(1);
    if raw.burst == Some(0) {
        errors.push(format!("{path}.burst"), "must be at least 1");
    }
    RateConfig {
        per_second: raw.rate.max(1),
        burst,
    }
}

pub(super) fn traffic_limit(
    path: &str,
    raw: Option<&RawRateLimit>,
    errors: &mut Errors,
) -> Option<TrafficLimit> {
    let raw = raw?;
    let path = format!("{path}.rate_limit");
    let mut size = |key: &str, value: &Option<super::super::raw::RawSize>| {
        value
            .as_ref()
            .map(|v| errors.take(format!("{path}.{key}"), parse_size(v), 1))
    };
    let bytes_per_second = size("bytes_per_second", &raw.bytes_per_second);
    let burst_bytes = size("burst_bytes", &raw.burst_bytes);
    if raw.messages_per_second == Some(0) {
        errors.push(format!("{path}.messages_per_second"), "must be at least 1");
    }
    if raw.burst == Some(0) {
        errors.push(format!("{path}.burst"), "must be at least 1");
    }
    if raw.burst.is_some() && raw.messages_per_second.is_none() {
        errors.push(
            format!("{path}.burst"),
            "counts messages: it needs messages_per_second (burst_bytes goes with bytes_per_second)",
        );
    }
    if burst_bytes.is_some() && bytes_per_second.is_none() {
        errors.push(format!("{path}.burst_bytes"), "needs bytes_per_second");
    }
    if raw.messages_per_second.is_none() && bytes_per_second.is_none() {
        errors.push(
            &path,
            "sets neither messages_per_second nor bytes_per_second",
        );
    }
    let both_directions = match raw.direction.as_deref() {
        None | Some("client_to_upstream") => false,
        Some("both") => true,
        Some(other) => {
            errors.push(
                format!("{path}.direction"),
                format!("{other:?} is not client_to_upstream or both"),
            );
            false
        }
    };
    let action = match raw.action.as_deref() {
        None | Some("throttle") => LimitAction::Throttle,
        Some("close") => LimitAction::Close,
        Some(other) => {
            errors.push(
                format!("{path}.action"),
                format!("{other:?} is not throttle or close"),
            );
            LimitAction::Throttle
        }
    };
    Some(TrafficLimit {
        messages: raw.messages_per_second.map(|n| RateConfig {
            per_second: n.max(1),
            burst: raw.burst.unwrap_or(n).max(1),
        }),
        bytes: bytes_per_second.map(|n| RateConfig {
            per_second: n,
            burst: burst_bytes.unwrap_or(n),
        }),
        both_directions,
        action,
    })
}

/// `max_duration` and the code its close carries: one a client may be sent (RFC 6455 §7.4).
pub(super) fn lifetime(
    path: &str,
    max_duration: &Option<String>,
    close_code: Option<u16>,
    errors: &mut Errors,
) -> (Option<Duration>, CloseCode) {
    let duration = max_duration.as_ref().map(|text| {
        errors.take(
            format!("{path}.max_duration"),
            parse_duration(text),
            Duration::from_secs(3600),
        )
    });
    let code = match close_code {
        None => CloseCode::GOING_AWAY,
        Some(code) if is_valid_wire_code(code) => CloseCode::new(code),
        Some(code) => {
            errors.push(
                format!("{path}.max_duration_close_code"),
                format!(
                    "{code} is not a close code that may be sent (1000-1003, 1007-1014, 3000-4999)"
                ),
            );
            CloseCode::GOING_AWAY
        }
    };
    if close_code.is_some() && duration.is_none() {
        errors.warn(
            format!("{path}.max_duration_close_code"),
            "has no effect without max_duration",
        );
    }
    (duration, code)
}

pub(super) fn auth(
    path: &str,
    raw: Option<&RawAuth>,
    base: &Path,
    errors: &mut Errors,
) -> AuthConfig {
    let Some(raw) = raw else {
        return AuthConfig::default();
    };
    let path = format!("{path}.auth");
    if raw.jwt.is_none() && raw.forward.is_none() {
        errors.warn(&path, "sets neither jwt nor forward: the route is open");
    }
    AuthConfig {
        jwt: raw
            .jwt
            .as_ref()
            .map(|j| jwt(&format!("{path}.jwt"), j, base, errors)),
        forward: raw
            .forward
            .as_ref()
            .map(|f| forward(&format!("{path}.forward"), f, errors)),
    }
}

fn jwt(path: &str, raw: &RawJwt, base: &Path, errors: &mut Errors) -> JwtConfig {
    let mut algorithms = Vec::new();
    for (i, alg) in raw.algorithms.iter().flatten().enumerate() {
        match Algorithm::from_str(alg) {
            Ok(parsed) if ALGORITHMS.contains(&alg.as_str()) => algorithms.push(parsed),
            _ => errors.push(
                format!("{path}.algorithms[{i}]"),
                format!("{alg:?} is not one of {}", ALGORITHMS.join(", ")),
            ),
        }
    }
    let leeway = match raw.leeway.as_deref().map(str::trim) {
        None => DEFAULT_LEEWAY,
        Some("0" | "0s") => Duration::ZERO,
        Some(text) => errors.take(
            format!("{path}.leeway"),
            parse_duration(text),
            DEFAULT_LEEWAY,
        ),
    };
    let sources = raw
        .token_from
        .clone()
        .unwrap_or_else(|| vec!["header:Authorization".to_owned()]);
    if sources.is_empty() {
        errors.push(format!("{path}.token_from"), "must name at least one place");
    }
    let mut token_from = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        match TokenSource::parse(source) {
            Ok(source) => token_from.push(source),
            Err(message) => errors.push(format!("{path}.token_from[{i}]"), message),
        }
    }
    let mut forward_claims = Vec::new();
    for (claim, header) in raw.forward_claims.iter().flatten() {
        match HeaderName::from_str(header.trim()) {
            Ok(name) => forward_claims.push((claim.clone(), name)),
            Err(_) => errors.push(
                format!("{path}.forward_claims.{claim}"),
                format!("{header:?} is not a header name"),
            ),
        }
    }
    let settings = JwtSettings {
        keys: base.join(&raw.keys),
        issuer: raw.issuer.clone(),
        audiences: raw.audiences.clone().unwrap_or_default(),
        algorithms,
        leeway,
    };
    if let Err(e) = Verifier::load(&settings) {
        errors.push(format!("{path}.keys"), e.to_string());
    }
    JwtConfig {
        settings,
        token_from,
        forward_claims,
        close_on_expiry: raw.close_on_expiry.unwrap_or(false),
    }
}

fn forward(path: &str, raw: &RawForwardAuth, errors: &mut Errors) -> ForwardAuthConfig {
    let url = match http::Uri::from_str(raw.url.trim()) {
        Ok(url) if matches!(url.scheme_str(), Some("http" | "https")) && url.host().is_some() => {
            url
        }
        _ => {
            errors.push(
                format!("{path}.url"),
                format!("{:?} is not an http:// or https:// URL", raw.url),
            );
            http::Uri::from_static("http://127.0.0.1/")
        }
    };
    let timeout = errors.duration(
        format!("{path}.timeout"),
        &raw.timeout,
        DEFAULT_FORWARD_TIMEOUT,
    );
    let mut names = |key: &str, list: &Option<Vec<String>>, default: &[&str]| -> Vec<HeaderName> {
        let list = list
            .clone()
            .unwrap_or_else(|| default.iter().map(|s| (*s).to_owned()).collect());
        let mut out = Vec::new();
        for (i, name) in list.iter().enumerate() {
            match HeaderName::from_str(name.trim()) {
                Ok(name) => out.push(name),
                Err(_) => errors.push(
                    format!("{path}.{key}[{i}]"),
                    format!("{name:?} is not a header name"),
                ),
            }
        }
        out
    };
    let pass_headers = names(
        "pass_headers",
        &raw.pass_headers,
        &["cookie", "authorization"],
    );
    let copy_headers = names("copy_headers", &raw.copy_headers, &[]);
    ForwardAuthConfig {
        url,
        timeout,
        pass_headers,
        copy_headers,
    }
}
