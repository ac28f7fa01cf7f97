//! Validation of `upstreams.NAME`: endpoints (`host:port`), TLS files and names, the balancer and
//! its hash key, timeouts, and the active health check.

use std::path::Path;
use std::time::Duration;

use super::super::hosts::host_ok;
use super::super::raw::{RawHealth, RawUpstream};
use super::super::types::*;
use super::{sticky, Errors, DEFAULT_CONNECT_TIMEOUT};
use wsgate_proto::handshake::grammar::split_host_port;

pub(super) fn upstream(
    name: &str,
    raw: &RawUpstream,
    base: &Path,
    errors: &mut Errors,
) -> UpstreamConfig {
    let path = format!("upstreams.{name}");
    let tls = upstream_tls(&path, raw, base, errors);
    if raw.endpoints.is_empty() {
        errors.push(
            format!("{path}.endpoints"),
            "at least one endpoint is required",
        );
    }
    for (i, endpoint) in raw.endpoints.iter().enumerate() {
        if let Err(message) = check_endpoint(endpoint) {
            errors.push(format!("{path}.endpoints[{i}]"), message);
        }
    }
    let balance = balance(&path, raw, errors);
    let connect_timeout = errors.duration(
        format!("{path}.connect_timeout"),
        &raw.connect_timeout,
        DEFAULT_CONNECT_TIMEOUT,
    );
    let response_timeout = errors.duration(
        format!("{path}.response_timeout"),
        &raw.response_timeout,
        Duration::from_secs(60),
    );
    let fail_timeout = errors.duration(
        format!("{path}.fail_timeout"),
        &raw.fail_timeout,
        Duration::from_secs(10),
    );
    let connect_attempts = raw.connect_attempts.unwrap_or(3);
    if connect_attempts == 0 {
        errors.push(format!("{path}.connect_attempts"), "must be at least 1");
    }
    let health = raw.health.as_ref().map(|h| health(&path, h, errors));
    UpstreamConfig {
        name: name.to_owned(),
        endpoints: raw.endpoints.iter().map(|e| e.trim().to_owned()).collect(),
        balance,
        connect_timeout,
        response_timeout,
        max_fails: raw.max_fails.unwrap_or(3),
        fail_timeout,
        connect_attempts: connect_attempts.clamp(1, raw.endpoints.len().max(1)),
        health,
        tls,
        sticky_cookie: raw
            .sticky_cookie
            .as_ref()
            .map(|c| sticky::sticky_cookie(&path, c, errors)),
    }
}

/// `upstreams.NAME.tls`: paths resolved against the config's directory, and the files loaded once
/// here so that a bad certificate is a config error, not a failed connect.
fn upstream_tls(
    path: &str,
    raw: &RawUpstream,
    base: &Path,
    errors: &mut Errors,
) -> Option<UpstreamTls> {
    let tls = raw.tls.as_ref().map(|t| UpstreamTls {
        ca: t.ca.as_ref().map(|p| base.join(p)),
        server_name: t.server_name.clone(),
        cert: t.cert.as_ref().map(|p| base.join(p)),
        key: t.key.as_ref().map(|p| base.join(p)),
    })?;
    if tls.cert.is_some() != tls.key.is_some() {
        errors.push(format!("{path}.tls"), "cert and key go together");
    } else if let Err(e) = crate::tls::client_config(&tls) {
        errors.push(format!("{path}.tls"), e.to_string());
    }
    if let Some(name) = &tls.server_name {
        if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() {
            errors.push(
                format!("{path}.tls.server_name"),
                format!("{name:?} is not a DNS name or IP address"),
            );
        }
    }
    Some(tls)
}

/// `balance` and the `hash_key` that only `balance: hash` reads.
fn balance(path: &str, raw: &RawUpstream, errors: &mut Errors) -> Balance {
    let balance = match raw.balance.as_deref() {
        None | Some("round_robin") => Balance::RoundRobin,
        Some("least_connections") => Balance::LeastConnections,
        Some("hash") => Balance::Hash(errors.take(
            format!("{path}.hash_key"),
            parse_hash_key(raw.hash_key.as_deref().unwrap_or("client_ip")),
            HashKey::ClientIp,
        )),
        Some(other) => {
            errors.push(
                format!("{path}.balance"),
                format!("unknown balancer {other:?} (round_robin, least_connections, hash)"),
            );
            Balance::RoundRobin
        }
    };
    if raw.hash_key.is_some() && !matches!(balance, Balance::Hash(_)) {
        errors.push(format!("{path}.hash_key"), "only used with balance: hash");
    }
    balance
}

fn health(path: &str, h: &RawHealth, errors: &mut Errors) -> HealthCheck {
    // The path goes verbatim into the probe's request line: only an origin-form target.
    let target = h.path.parse::<http::uri::PathAndQuery>();
    if !h.path.starts_with('/') {
        errors.push(
            format!("{path}.health.path"),
            format!("{:?} must start with '/'", h.path),
        );
    } else if !target.is_ok_and(|t| t.as_str() == h.path) {
        errors.push(
            format!("{path}.health.path"),
            format!(
                "{:?} is not a request path (no spaces, control characters or '#')",
                h.path
            ),
        );
    }
    let interval = errors.duration(
        format!("{path}.health.interval"),
        &h.interval,
        Duration::from_secs(5),
    );
    let timeout = errors.duration(
        format!("{path}.health.timeout"),
        &h.timeout,
        Duration::from_secs(1),
    );
    // Checks run one after another: one still waiting when the next is due cannot work.
    if timeout >= interval {
        errors.push(
            format!("{path}.health.timeout"),
            format!("{timeout:?} is not below health.interval ({interval:?})"),
        );
    }
    HealthCheck {
        path: h.path.clone(),
        interval,
        timeout,
    }
}

fn parse_hash_key(text: &str) -> Result<HashKey, String> {
    match text.split_once(':') {
        None if text == "client_ip" => Ok(HashKey::ClientIp),
        Some(("header", name)) if http::HeaderName::from_bytes(name.as_bytes()).is_ok() => {
            Ok(HashKey::Header(name.to_ascii_lowercase()))
        }
        Some(("cookie", name)) if !name.is_empty() && !name.contains([';', '=', ' ']) => {
            Ok(HashKey::Cookie(name.to_owned()))
        }
        _ => Err(format!(
            "{text:?} is not client_ip, header:NAME or cookie:NAME"
        )),
    }
}

/// `host:port` or `[v6]:port`, port 1-65535.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let bad =
        || format!("{endpoint:?} is not host:port (e.g. \"10.0.0.5:9001\", \"chat.internal:80\")");
    let (host, port) = match split_host_port(endpoint.trim()) {
        Some((host, Some(port))) => (host, port),
        _ => return Err(bad()),
    };
    match port.parse::<u16>() {
        Ok(1..) if host_ok(host) => Ok(()),
        _ => Err(bad()),
    }
}
