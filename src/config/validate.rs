//! Raw YAML to typed config. Every semantic error is collected with its YAML path, so one run of
//! `wsgate check` shows them all; warnings (legal but likely unintended) are collected the same way.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, FieldError};
use super::hosts::{check_origin, check_route_host, OriginKind};
use super::raw::{RawConfig, RawRoute, RawShutdown, RawSize, RawWebSocket};
use super::types::*;
use super::units::{parse_duration, parse_size};
use wsgate_proto::close::CloseCode;
use wsgate_proto::handshake::is_token;

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
        let protect_reads = admin.protect_reads.unwrap_or(false);
        if protect_reads && admin.token_file.is_none() {
            errors.push(
                "admin.protect_reads",
                "needs admin.token_file (the token reads must carry)",
            );
        }
        AdminConfig {
            bind,
            token_file: admin.token_file.as_ref().map(|f| base.join(f)),
            protect_reads,
            tap_payloads: admin.tap_payloads.unwrap_or(false),
        }
    });
    let upstreams: Vec<UpstreamConfig> = raw
        .upstreams
        .iter()
        .map(|(name, upstream)| upstream::upstream(name, upstream, base, &mut errors))
        .collect();
    let routes = routes(&raw.routes, &upstreams, base, &mut errors);
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
        Some(code) => match CloseCode::new(code) {
            code @ (CloseCode::GOING_AWAY | CloseCode::RESTART) => code,
            other => {
                errors.push(
                    "shutdown.close_code",
                    format!("{other} is not 1001 (going away) or 1012 (service restart)"),
                );
                defaults.close_code
            }
        },
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
            if let Err(e) = crate::tls::server_config(tls, false) {
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
        let client_limits = access::client_limits(&path, l.client_limits.as_ref(), errors);
        let http2 = listener_http2::settings(&path, l, max_request_head_size, errors);
        out.push(ListenerConfig {
            client_limits,
            http2,
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

fn routes(
    raw: &[RawRoute],
    upstreams: &[UpstreamConfig],
    base: &Path,
    errors: &mut Errors,
) -> Vec<RouteConfig> {
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
            auth: access::auth(&path, r.auth.as_ref(), base, errors),
            client_limits: access::client_limits(&path, r.client_limits.as_ref(), errors),
        });
    }
    out
}

fn websocket(path: &str, raw: &RawWebSocket, errors: &mut Errors) -> WebSocketConfig {
    let defaults = WebSocketConfig::default();
    let extensions = extensions(path, raw, errors);
    check_subprotocols(path, raw, errors);
    let allowed_origins = allowed_origins(path, raw, errors);
    let (max_frame_size, max_message_size) = sizes(path, raw, &defaults, errors);
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
    let rate_limit = access::traffic_limit(path, raw.rate_limit.as_ref(), errors);
    let (max_duration, max_duration_close_code) =
        access::lifetime(path, &raw.max_duration, raw.max_duration_close_code, errors);
    WebSocketConfig {
        rate_limit,
        max_duration,
        max_duration_close_code,
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

fn extensions(path: &str, raw: &RawWebSocket, errors: &mut Errors) -> Vec<String> {
    let extensions = raw.extensions.clone().unwrap_or_default();
    for (i, name) in extensions.iter().enumerate() {
        if !name.eq_ignore_ascii_case(wsgate_proto::deflate::NAME) {
            errors.push(
                format!("{path}.extensions[{i}]"),
                format!("{name:?} is not supported (permessage-deflate is)"),
            );
        }
    }
    extensions
}

fn check_subprotocols(path: &str, raw: &RawWebSocket, errors: &mut Errors) {
    for (i, p) in raw.subprotocols.iter().flatten().enumerate() {
        if !is_token(p) {
            errors.push(
                format!("{path}.subprotocols[{i}]"),
                format!("{p:?} is not a token (RFC 9110 §5.6.2)"),
            );
        }
    }
}

fn allowed_origins(path: &str, raw: &RawWebSocket, errors: &mut Errors) -> Option<Vec<String>> {
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
    allowed_origins
}

/// `max_frame_size` and `max_message_size`; a frame may not exceed the message it belongs to.
fn sizes(
    path: &str,
    raw: &RawWebSocket,
    defaults: &WebSocketConfig,
    errors: &mut Errors,
) -> (u64, u64) {
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
    (max_frame_size, max_message_size)
}

#[path = "validate_access.rs"]
mod access;

#[path = "validate_http2.rs"]
mod listener_http2;

#[path = "validate_sticky.rs"]
mod sticky;

#[path = "validate_upstream.rs"]
mod upstream;

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "validate_http2_tests.rs"]
mod http2_tests;

#[cfg(test)]
#[path = "validate_sticky_tests.rs"]
mod sticky_tests;

#[cfg(test)]
#[path = "validate_origin_tests.rs"]
mod origin_tests;

#[cfg(test)]
#[path = "validate_access_tests.rs"]
mod access_tests;
