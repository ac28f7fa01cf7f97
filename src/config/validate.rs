//! Raw YAML to typed config. Every semantic error is collected with its YAML path, so one run of
//! `wsgate check` shows them all; warnings (legal but likely unintended) are collected the same way.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, FieldError};
use super::hosts::{check_origin, check_route_host, host_ok, OriginKind};
use super::raw::{RawConfig, RawRoute, RawShutdown, RawSize, RawUpstream, RawWebSocket};
use super::types::*;
use super::units::{parse_duration, parse_size};
use wsgate_proto::handshake::grammar::{is_token, split_host_port};

const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_MAX_REQUEST_HEAD: usize = 64 * 1024;

#[derive(Default)]
struct Errors {
    errors: Vec<FieldError>,
    warnings: Vec<FieldError>,
}

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// A setting that works but is probably a mistake: `wsgate check` prints it and still exits 0.
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }

    /// An optional duration: its default when absent, an error (and the default) when malformed.
    fn duration(&mut self, path: String, value: &Option<String>, default: Duration) -> Duration {
        match value {
            Some(text) => self.take(path, parse_duration(text), default),
            None => default,
        }
    }

    /// Collects the error of a fallible conversion, yielding a placeholder value.
    fn take<T>(&mut self, path: impl Into<String>, result: Result<T, String>, fallback: T) -> T {
        result.unwrap_or_else(|message| {
            self.push(path, message);
            fallback
        })
    }
}

pub fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
    let mut errors = Errors::default();
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, cidr)| {
            let parsed = cidr
                .trim()
                .parse::<ipnet::IpNet>()
                .or_else(|_| {
                    cidr.trim()
                        .parse::<std::net::IpAddr>()
                        .map(ipnet::IpNet::from)
                })
                .map_err(|_| {
                    format!("{cidr:?} is not a CIDR (e.g. \"10.0.0.0/8\") or an IP address")
                });
            match parsed {
                Ok(net) => Some(net),
                Err(message) => {
                    errors.push(format!("trusted_proxies[{i}]"), message);
                    None
                }
            }
        })
        .collect();

    let listeners = listeners(&raw, base, &mut errors);
    let admin = raw.admin.as_ref().map(|admin| {
        let bind = errors.take("admin.bind", parse_bind(&admin.bind), unspecified());
        if bind.port() != 0 && listeners.iter().any(|l| l.bind == bind) {
            errors.push("admin.bind", format!("{bind} is also a listener's address"));
        }
        AdminConfig { bind }
    });
    let upstreams: Vec<UpstreamConfig> = raw
        .upstreams
        .iter()
        .map(|(name, upstream)| self::upstream(name, upstream, base, &mut errors))
        .collect();
    let routes = routes(&raw.routes, &upstreams, &mut errors);
    let shutdown = shutdown(raw.shutdown.as_ref(), &mut errors);
    for (i, upstream) in upstreams.iter().enumerate() {
        if !routes.iter().any(|r| r.upstream == i) {
            let note = match upstream.health {
                Some(_) => " (its health checks still run)",
                None => "",
            };
            errors.warn(
                format!("upstreams.{}", upstream.name),
                format!("no route uses it{note}"),
            );
        }
    }

    if errors.errors.is_empty() {
        Ok(Config {
            listeners,
            admin,
            upstreams,
            routes,
            shutdown,
            trusted_proxies,
            warnings: errors.warnings,
        })
    } else {
        Err(ConfigError::Invalid(errors.errors))
    }
}

fn shutdown(raw: Option<&RawShutdown>, errors: &mut Errors) -> ShutdownConfig {
    let defaults = ShutdownConfig::default();
    let Some(raw) = raw else {
        return defaults;
    };
    let drain_timeout = errors.duration(
        "shutdown.drain_timeout".into(),
        &raw.drain_timeout,
        defaults.drain_timeout,
    );
    let close_code = match raw.close_code {
        None => defaults.close_code,
        Some(code @ (1001 | 1012)) => code,
        Some(other) => {
            errors.push(
                "shutdown.close_code",
                format!("{other} is not 1001 (going away) or 1012 (service restart)"),
            );
            defaults.close_code
        }
    };
    ShutdownConfig {
        drain_timeout,
        close_code,
    }
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        format!("{text:?} is not an ip:port address (e.g. \"0.0.0.0:8080\", \"[::]:8080\")")
    })
}

fn listeners(raw: &RawConfig, base: &Path, errors: &mut Errors) -> Vec<ListenerConfig> {
    if raw.listeners.is_empty() {
        errors.push("listeners", "at least one listener is required");
    }
    let mut names = HashSet::new();
    let mut binds = HashSet::new();
    let mut out = Vec::new();
    for (i, l) in raw.listeners.iter().enumerate() {
        let path = format!("listeners[{i}]");
        let tls = l.tls.as_ref().map(|t| ListenerTls {
            cert: base.join(&t.cert),
            key: base.join(&t.key),
            sni: t
                .sni
                .iter()
                .map(|s| SniCert {
                    host: s.host.trim().to_ascii_lowercase(),
                    cert: base.join(&s.cert),
                    key: base.join(&s.key),
                })
                .collect(),
        });
        if let Some(tls) = &tls {
            if let Err(e) = crate::tls::server_config(tls) {
                errors.push(format!("{path}.tls"), e.to_string());
            }
        }
        if l.max_connections == Some(0) {
            errors.push(format!("{path}.max_connections"), "must be at least 1");
        }
        let max_request_head_size = match &l.max_request_head_size {
            Some(size) => errors.take(
                format!("{path}.max_request_head_size"),
                parse_size(size).and_then(|n| {
                    if (1024..=1 << 20).contains(&n) {
                        Ok(n as usize)
                    } else {
                        Err(format!("{n} bytes is outside 1KiB..1MiB"))
                    }
                }),
                DEFAULT_MAX_REQUEST_HEAD,
            ),
            None => DEFAULT_MAX_REQUEST_HEAD,
        };
        if l.name.trim().is_empty() {
            errors.push(format!("{path}.name"), "must not be empty");
        } else if !names.insert(l.name.as_str()) {
            errors.push(
                format!("{path}.name"),
                format!("duplicate listener name {:?}", l.name),
            );
        }
        let bind = errors.take(format!("{path}.bind"), parse_bind(&l.bind), unspecified());
        if bind.port() != 0 && !binds.insert(bind) {
            errors.push(
                format!("{path}.bind"),
                format!("{bind} is bound by another listener"),
            );
        }
        let handshake_timeout = errors.duration(
            format!("{path}.handshake_timeout"),
            &l.handshake_timeout,
            DEFAULT_HANDSHAKE_TIMEOUT,
        );
        out.push(ListenerConfig {
            name: l.name.clone(),
            bind,
            handshake_timeout,
            max_connections: l.max_connections,
            max_request_head_size,
            proxy_protocol: l.proxy_protocol,
            tls,
        });
    }
    out
}

fn upstream(name: &str, raw: &RawUpstream, base: &Path, errors: &mut Errors) -> UpstreamConfig {
    let path = format!("upstreams.{name}");
    let tls = raw.tls.as_ref().map(|t| UpstreamTls {
        ca: t.ca.as_ref().map(|p| base.join(p)),
        server_name: t.server_name.clone(),
        cert: t.cert.as_ref().map(|p| base.join(p)),
        key: t.key.as_ref().map(|p| base.join(p)),
    });
    if let Some(tls) = &tls {
        if tls.cert.is_some() != tls.key.is_some() {
            errors.push(format!("{path}.tls"), "cert and key go together");
        } else if let Err(e) = crate::tls::client_config(tls) {
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
    }
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
    let health = raw.health.as_ref().map(|h| {
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
    });
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

fn routes(raw: &[RawRoute], upstreams: &[UpstreamConfig], errors: &mut Errors) -> Vec<RouteConfig> {
    if raw.is_empty() {
        errors.push("routes", "at least one route is required");
    }
    let mut names = HashSet::new();
    let mut matches = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let path = format!("routes[{i}]");
        let upstream = upstreams.iter().position(|u| u.name == r.upstream);
        if upstream.is_none() {
            errors.push(
                format!("{path}.upstream"),
                format!("{:?} is not defined in upstreams", r.upstream),
            );
        }
        let name = r.name.clone().unwrap_or_else(|| r.upstream.clone());
        if name.trim().is_empty() {
            errors.push(format!("{path}.name"), "must not be empty");
        } else if !names.insert(name.clone()) {
            errors.push(
                format!("{path}.name"),
                format!("duplicate route name {name:?}"),
            );
        }
        let host = r
            .matcher
            .host
            .as_ref()
            .map(|h| h.trim().to_ascii_lowercase());
        if let Some(Err(message)) = host.as_deref().map(check_route_host) {
            errors.push(format!("{path}.match.host"), message);
        }
        let path_prefix = r
            .matcher
            .path_prefix
            .clone()
            .unwrap_or_else(|| "/".to_owned());
        if !path_prefix.starts_with('/') {
            errors.push(
                format!("{path}.match.path_prefix"),
                format!("{path_prefix:?} must start with '/'"),
            );
        }
        if !matches.insert((host.clone(), path_prefix.clone())) {
            errors.push(
                format!("{path}.match"),
                "another route has the same host and path_prefix",
            );
        }
        let websocket = websocket(&format!("{path}.websocket"), &r.websocket, errors);
        out.push(RouteConfig {
            name,
            host,
            path_prefix,
            upstream: upstream.unwrap_or(0),
            websocket,
        });
    }
    out
}

fn websocket(path: &str, raw: &RawWebSocket, errors: &mut Errors) -> WebSocketConfig {
    let defaults = WebSocketConfig::default();
    let extensions = raw.extensions.clone().unwrap_or_default();
    for (i, name) in extensions.iter().enumerate() {
        if !name.eq_ignore_ascii_case(wsgate_proto::deflate::NAME) {
            errors.push(
                format!("{path}.extensions[{i}]"),
                format!("{name:?} is not supported (permessage-deflate is)"),
            );
        }
    }
    if let Some(list) = &raw.subprotocols {
        for (i, p) in list.iter().enumerate() {
            if !is_token(p) {
                errors.push(
                    format!("{path}.subprotocols[{i}]"),
                    format!("{p:?} is not a token (RFC 9110 §5.6.2)"),
                );
            }
        }
    }
    // Trimmed: the Origin header is compared exactly, so a stray space could never match.
    let allowed_origins: Option<Vec<String>> = raw
        .allowed_origins
        .as_ref()
        .map(|list| list.iter().map(|o| o.trim().to_owned()).collect());
    for (i, origin) in allowed_origins.iter().flatten().enumerate() {
        let at = format!("{path}.allowed_origins[{i}]");
        match check_origin(origin) {
            Ok(OriginKind::Tuple) => {}
            Ok(OriginKind::Null) => errors.warn(
                at,
                "\"null\" is the origin of sandboxed iframes and file:// pages: any site can send it",
            ),
            Err(message) => errors.push(at, message),
        }
    }
    let mut size = |key: &str, value: &Option<RawSize>, default: u64| match value {
        Some(v) => errors.take(format!("{path}.{key}"), parse_size(v), default),
        None => default,
    };
    let max_frame_size = size(
        "max_frame_size",
        &raw.max_frame_size,
        defaults.max_frame_size,
    );
    let max_message_size = size(
        "max_message_size",
        &raw.max_message_size,
        defaults.max_message_size,
    );
    if max_frame_size > max_message_size {
        errors.push(
            format!("{path}.max_frame_size"),
            format!("{max_frame_size} bytes is more than max_message_size ({max_message_size})"),
        );
    }
    let ping = match raw.ping.as_deref() {
        None | Some("answer") => PingMode::Answer,
        Some("forward") => PingMode::Forward,
        Some(other) => {
            errors.push(
                format!("{path}.ping"),
                format!("{other:?} is not answer or forward"),
            );
            PingMode::Answer
        }
    };
    let keepalive = raw.keepalive.as_ref().map(|k| Keepalive {
        interval: errors.take(
            format!("{path}.keepalive.interval"),
            parse_duration(&k.interval),
            Duration::from_secs(30),
        ),
        timeout: errors.take(
            format!("{path}.keepalive.timeout"),
            parse_duration(&k.timeout),
            Duration::from_secs(10),
        ),
    });
    let idle_timeout = raw.idle_timeout.as_ref().map(|t| {
        errors.take(
            format!("{path}.idle_timeout"),
            parse_duration(t),
            Duration::from_secs(600),
        )
    });
    if raw.max_connections == Some(0) {
        errors.push(format!("{path}.max_connections"), "must be at least 1");
    }
    let write_timeout = errors.duration(
        format!("{path}.write_timeout"),
        &raw.write_timeout,
        defaults.write_timeout,
    );
    WebSocketConfig {
        keepalive,
        idle_timeout,
        max_connections: raw.max_connections,
        write_timeout,
        extensions,
        remask: raw.remask.unwrap_or(defaults.remask),
        subprotocols: raw.subprotocols.clone(),
        allowed_origins,
        max_frame_size,
        max_message_size,
        validate_utf8: raw.validate_utf8.unwrap_or(defaults.validate_utf8),
        ping,
    }
}

#[path = "validate_sticky.rs"]
mod sticky;

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
