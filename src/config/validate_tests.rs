//! Config parsing and validation: every error with its exact path, all collected.

use super::super::{Config, ConfigError};
use super::origin_tests::warnings;
use super::*;

pub(super) const GOOD: &str = r#"
listeners:
  - name: public
    bind: "127.0.0.1:0"
    handshake_timeout: 5s
admin:
  bind: "127.0.0.1:0"
upstreams:
  chat:
    endpoints: ["127.0.0.1:9001", "chat.internal:9002", "[::1]:9003"]
    balance: round_robin
    connect_timeout: 250ms
routes:
  - name: chat
    match: { host: "Chat.Example.com", path_prefix: "/ws" }
    upstream: chat
    websocket:
      subprotocols: ["chat.v2", "chat.v1"]
      allowed_origins: ["https://chat.example.com"]
      max_frame_size: 64KiB
      max_message_size: 1MiB
      validate_utf8: false
      ping: forward
  - name: fallback
    match: { path_prefix: "/" }
    upstream: chat
"#;

pub(super) fn errors(yaml: &str) -> Vec<String> {
    match Config::from_yaml(yaml) {
        Ok(_) => vec![],
        Err(e) => e.messages(),
    }
}

/// The YAML path of each error, in order.
fn paths_of(yaml: &str) -> Vec<String> {
    errors(yaml)
        .iter()
        .map(|e| e.split(':').next().unwrap().to_owned())
        .collect()
}

pub(super) fn with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from}");
    GOOD.replacen(from, to, 1)
}

#[test]
fn full_example_parses() {
    let c = Config::from_yaml(GOOD).unwrap();
    assert_eq!(c.listeners[0].handshake_timeout, Duration::from_secs(5));
    assert_eq!(c.upstreams[0].endpoints.len(), 3);
    assert_eq!(c.upstreams[0].connect_timeout, Duration::from_millis(250));
    let r = &c.routes[0];
    assert_eq!(r.host.as_deref(), Some("chat.example.com"));
    assert_eq!(r.path_prefix, "/ws");
    assert_eq!(r.websocket.max_frame_size, 65536);
    assert_eq!(r.websocket.max_message_size, 1 << 20);
    assert!(!r.websocket.validate_utf8);
    assert_eq!(r.websocket.ping, PingMode::Forward);
    let d = &c.routes[1];
    assert_eq!(d.name, "fallback");
    assert_eq!(d.host, None);
}

#[test]
fn defaults() {
    let c = Config::from_yaml(
        "listeners: [{name: a, bind: \"127.0.0.1:0\"}]\nupstreams: {u: {endpoints: [\"127.0.0.1:1\"]}}\nroutes: [{upstream: u}]\n",
    )
    .unwrap();
    assert!(c.admin.is_none());
    assert_eq!(c.listeners[0].handshake_timeout, DEFAULT_HANDSHAKE_TIMEOUT);
    assert_eq!(c.upstreams[0].connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(c.routes[0].name, "u");
    assert_eq!(c.routes[0].path_prefix, "/");
    assert_eq!(c.routes[0].websocket, WebSocketConfig::default());
}

#[test]
fn unknown_key_reports_its_line() {
    let yaml = with(
        "      ping: forward\n",
        "      ping: forward\n      pong: yes\n",
    );
    match Config::from_yaml(&yaml) {
        Err(ConfigError::Parse { line, message, .. }) => {
            assert_eq!(line, 24);
            assert!(message.contains("pong"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn syntax_error_reports_its_line() {
    match Config::from_yaml("listeners:\n  - name: [unclosed\n") {
        Err(ConfigError::Parse { line, .. }) => assert!(line >= 2),
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_semantic_error_is_collected() {
    let yaml = with(
        "upstream: chat\n    websocket",
        "upstream: nope\n    websocket",
    )
    .replacen("5s", "5 parsecs", 1)
    .replacen("64KiB", "64 lightyears", 1);
    let errors = errors(&yaml);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors[0].starts_with("listeners[0].handshake_timeout: \"5 parsecs\" is not a duration")
    );
    assert_eq!(
        errors[1],
        "routes[0].upstream: \"nope\" is not defined in upstreams"
    );
    assert_eq!(
        errors[2],
        "routes[0].websocket.max_frame_size: \"64 lightyears\": unknown unit \"lightyears\" (B, KiB, MiB, GiB, KB, MB, GB)"
    );
}

#[test]
fn error_paths() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"127.0.0.1:0\"\n    handshake",
            "\"localhost\"\n    handshake",
            "listeners[0].bind",
        ),
        (
            "\"127.0.0.1:9001\", ",
            "\"127.0.0.1:0\", ",
            "upstreams.chat.endpoints[0]",
        ),
        (
            "\"chat.internal:9002\"",
            "\"no port\"",
            "upstreams.chat.endpoints[1]",
        ),
        (
            "balance: round_robin",
            "balance: hash\n    hash_key: header:bad name",
            "upstreams.chat.hash_key",
        ),
        (
            "balance: round_robin",
            "balance: random",
            "upstreams.chat.balance",
        ),
        (
            "path_prefix: \"/ws\"",
            "path_prefix: \"ws\"",
            "routes[0].match.path_prefix",
        ),
        (
            "\"Chat.Example.com\"",
            "\"chat.example.com:443\"",
            "routes[0].match.host",
        ),
        (
            "max_message_size: 1MiB",
            "max_message_size: 1KiB",
            "routes[0].websocket.max_frame_size",
        ),
        (
            "max_message_size: 1MiB",
            "max_message_size: 0",
            "routes[0].websocket.max_message_size",
        ),
        (
            "ping: forward",
            "ping: sometimes",
            "routes[0].websocket.ping",
        ),
        (
            "\"chat.v2\", ",
            "\"chat v2\", ",
            "routes[0].websocket.subprotocols[0]",
        ),
        (
            "[\"https://chat.example.com\"]",
            "[\"\"]",
            "routes[0].websocket.allowed_origins[0]",
        ),
        ("name: fallback", "name: chat", "routes[1].name"),
        (
            "endpoints: [\"127.0.0.1:9001\", \"chat.internal:9002\", \"[::1]:9003\"]",
            "endpoints: []",
            "upstreams.chat.endpoints",
        ),
    ];
    for (from, to, path) in cases {
        let errors = errors(&with(from, to));
        assert_eq!(errors.len(), 1, "{to}: {errors:?}");
        assert!(
            errors[0].starts_with(&format!("{path}: ")),
            "{path}: {errors:?}"
        );
    }
}

#[test]
fn duplicate_addresses_and_names() {
    let yaml = "
listeners:
  - { name: a, bind: \"127.0.0.1:8080\" }
  - { name: a, bind: \"127.0.0.1:8080\" }
  - { name: b, bind: \"127.0.0.1:0\" }
  - { name: c, bind: \"127.0.0.1:0\" }
admin: { bind: \"127.0.0.1:8080\" }
upstreams: { u: { endpoints: [\"127.0.0.1:1\"] } }
routes:
  - { upstream: u }
  - { name: other, upstream: u }
";
    assert_eq!(
        errors(yaml),
        vec![
            "listeners[1].name: duplicate listener name \"a\"",
            "listeners[1].bind: 127.0.0.1:8080 is bound by another listener",
            "admin.bind: 127.0.0.1:8080 is also a listener's address",
            "routes[1].match: another route has the same host and path_prefix",
        ]
    );
}

#[test]
fn shutdown_section() {
    let c = Config::from_yaml(&format!(
        "{GOOD}shutdown: {{ drain_timeout: 5s, close_code: 1012 }}\n"
    ))
    .unwrap();
    assert_eq!(c.shutdown.drain_timeout, Duration::from_secs(5));
    assert_eq!(c.shutdown.close_code, CloseCode::RESTART);
    assert_eq!(
        Config::from_yaml(GOOD).unwrap().shutdown,
        ShutdownConfig::default()
    );
    assert_eq!(
        errors(&format!(
            "{GOOD}shutdown: {{ drain_timeout: never, close_code: 1000 }}\n"
        ))
        .iter()
        .map(|e| e.split(':').next().unwrap())
        .collect::<Vec<_>>(),
        vec!["shutdown.drain_timeout", "shutdown.close_code"]
    );
}

#[test]
fn keepalive_and_idle_timeout() {
    let yaml = with(
        "      ping: forward\n",
        "      ping: forward\n      keepalive: { interval: 20s, timeout: 5s }\n      idle_timeout: 10m\n",
    );
    let ws = &Config::from_yaml(&yaml).unwrap().routes[0].websocket;
    assert_eq!(
        ws.keepalive,
        Some(Keepalive {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(5)
        })
    );
    assert_eq!(ws.idle_timeout, Some(Duration::from_secs(600)));
    let bad = with(
        "      ping: forward\n",
        "      ping: forward\n      keepalive: { interval: 0s, timeout: x }\n",
    );
    let paths = paths_of(&bad);
    assert_eq!(
        paths,
        vec![
            "routes[0].websocket.keepalive.interval",
            "routes[0].websocket.keepalive.timeout"
        ]
    );
}

#[test]
fn limits() {
    let yaml = with(
        "    handshake_timeout: 5s\n",
        "    handshake_timeout: 5s\n    max_connections: 100\n    max_request_head_size: 16KiB\n",
    )
    .replacen(
        "      ping: forward\n",
        "      ping: forward\n      max_connections: 7\n      write_timeout: 2s\n",
        1,
    );
    let c = Config::from_yaml(&yaml).unwrap();
    assert_eq!(c.listeners[0].max_connections, Some(100));
    assert_eq!(c.listeners[0].max_request_head_size, 16 * 1024);
    assert_eq!(c.routes[0].websocket.max_connections, Some(7));
    assert_eq!(c.routes[0].websocket.write_timeout, Duration::from_secs(2));
    assert_eq!(c.routes[1].websocket.write_timeout, Duration::from_secs(60));
    let bad = with(
        "    handshake_timeout: 5s\n",
        "    handshake_timeout: 5s\n    max_connections: 0\n    max_request_head_size: 100\n",
    );
    let paths = paths_of(&bad);
    assert_eq!(
        paths,
        vec![
            "listeners[0].max_connections",
            "listeners[0].max_request_head_size"
        ]
    );
}

#[test]
fn proxy_protocol_and_trusted_proxies() {
    let yaml = with(
        "    handshake_timeout: 5s\n",
        "    handshake_timeout: 5s\n    proxy_protocol: true\n",
    ) + "trusted_proxies: [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n";
    let c = Config::from_yaml(&yaml).unwrap();
    assert!(c.listeners[0].proxy_protocol);
    assert_eq!(c.trusted_proxies.len(), 3);
    assert!(c.trusted_proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
    let bad = format!("{GOOD}trusted_proxies: [\"10.0.0.0/33\", \"nope\"]\n");
    let paths = paths_of(&bad);
    assert_eq!(paths, vec!["trusted_proxies[0]", "trusted_proxies[1]"]);
}

#[test]
fn balancing_and_health() {
    let yaml = with(
        "    balance: round_robin\n",
        "    balance: hash\n    hash_key: cookie:sid\n    max_fails: 2\n    fail_timeout: 3s\n    response_timeout: 5s\n    connect_attempts: 9\n    health: { path: /healthz, interval: 2s, timeout: 500ms }\n",
    );
    let u = &Config::from_yaml(&yaml).unwrap().upstreams[0];
    assert_eq!(u.balance, Balance::Hash(HashKey::Cookie("sid".into())));
    assert_eq!((u.max_fails, u.fail_timeout), (2, Duration::from_secs(3)));
    assert_eq!(u.response_timeout, Duration::from_secs(5));
    assert_eq!(u.connect_attempts, 3, "clamped to the endpoint count");
    assert_eq!(
        u.health,
        Some(HealthCheck {
            path: "/healthz".into(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(500)
        })
    );
    let least = with("balance: round_robin", "balance: least_connections");
    assert_eq!(
        Config::from_yaml(&least).unwrap().upstreams[0].balance,
        Balance::LeastConnections
    );
    let header = with(
        "balance: round_robin",
        "balance: hash\n    hash_key: header:X-User",
    );
    assert_eq!(
        Config::from_yaml(&header).unwrap().upstreams[0].balance,
        Balance::Hash(HashKey::Header("x-user".into()))
    );
    let defaults = &Config::from_yaml(GOOD).unwrap().upstreams[0];
    assert_eq!((defaults.max_fails, defaults.connect_attempts), (3, 3));
    assert_eq!(defaults.health, None);
    for bad in ["healthz", "\"/a b\"", "\"/a\\r\\nX: y\"", "\"/a#top\""] {
        let yaml = with(
            "    balance: round_robin\n",
            &format!("    health: {{ path: {bad} }}\n"),
        );
        let errors = errors(&yaml);
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert!(
            errors[0].starts_with("upstreams.chat.health.path: "),
            "{errors:?}"
        );
    }
    let query = with(
        "    balance: round_robin\n",
        "    health: { path: \"/health?deep=1\" }\n",
    );
    assert!(Config::from_yaml(&query).is_ok());
}

#[test]
fn extensions() {
    let yaml = with(
        "      ping: forward\n",
        "      ping: forward\n      extensions: [permessage-deflate]\n",
    );
    assert_eq!(
        Config::from_yaml(&yaml).unwrap().routes[0]
            .websocket
            .extensions,
        ["permessage-deflate"]
    );
    let bad = with(
        "      ping: forward\n",
        "      ping: forward\n      extensions: [x-webkit-deflate-frame]\n",
    );
    let errors = errors(&bad);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("routes[0].websocket.extensions[0]: "),
        "{errors:?}"
    );
}

#[test]
fn empty_sections() {
    assert_eq!(
        errors("upstreams: {}\n"),
        vec![
            "listeners: at least one listener is required",
            "routes: at least one route is required"
        ]
    );
}

#[test]
fn remask_is_a_bool() {
    let base = "
listeners:
  - name: a
    bind: \"127.0.0.1:0\"
upstreams:
  u: { endpoints: [\"127.0.0.1:1\"] }
routes:
  - upstream: u
";
    let on = Config::from_yaml(&format!("{base}    websocket: {{ remask: true }}\n")).unwrap();
    assert!(on.routes[0].websocket.remask);
    let off = Config::from_yaml(base).unwrap();
    assert!(!off.routes[0].websocket.remask);
    let bad = Config::from_yaml(&format!("{base}    websocket: {{ remask: sometimes }}\n"));
    assert!(bad.is_err());
}

#[test]
fn shipped_configs_are_valid() {
    for file in [
        "config/example.yaml",
        "config/wsgate.yaml",
        "config/docker.yaml",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        if let Err(e) = Config::load(&path) {
            panic!("{file}: {:?}", e.messages());
        }
    }
}

#[test]
fn health_timeout_must_be_below_interval() {
    let health = |interval: &str, timeout: &str| {
        with(
            "    balance: round_robin\n",
            &format!("    balance: round_robin\n    health: {{ path: /h, interval: {interval}, timeout: {timeout} }}\n"),
        )
    };
    assert!(errors(&health("2s", "1999ms")).is_empty());
    assert_eq!(
        errors(&health("2s", "2s")),
        vec!["upstreams.chat.health.timeout: 2s is not below health.interval (2s)"]
    );
    assert_eq!(
        errors(&health("500ms", "1s")),
        vec!["upstreams.chat.health.timeout: 1s is not below health.interval (500ms)"]
    );
}

#[test]
fn unused_upstream_is_a_warning() {
    assert!(warnings(GOOD).is_empty());
    let yaml = GOOD.replacen(
        "upstreams:\n",
        "upstreams:\n  spare:\n    endpoints: [\"127.0.0.1:9\"]\n    health: { path: /h }\n  old: { endpoints: [\"127.0.0.1:8\"] }\n",
        1,
    );
    assert_eq!(
        warnings(&yaml),
        vec![
            "upstreams.old: no route uses it",
            "upstreams.spare: no route uses it (its health checks still run)",
        ]
    );
    // With errors, only the errors are reported.
    let broken = yaml.replacen("upstream: chat", "upstream: nope", 1);
    assert_eq!(errors(&broken).len(), 1);
}
