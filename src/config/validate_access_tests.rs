//! `auth`, `client_limits`, `rate_limit`, `max_duration` and the admin listener's access keys:
//! typed when good, every error with its path when not (a key file that does not parse names the
//! file).

use std::time::Duration;

use super::super::{Config, LimitAction, RateConfig};
use super::origin_tests::warnings;
use super::tests::errors;

fn config(listener: &str, route: &str, websocket: &str) -> String {
    format!(
        r#"
listeners: [{{ name: public, bind: "127.0.0.1:0" {listener} }}]
upstreams: {{ chat: {{ endpoints: ["127.0.0.1:9001"] }} }}
routes: [{{ name: chat, upstream: chat, websocket: {{ {websocket} }} {route} }}]
"#
    )
}

fn at(yaml: &str, path: &str) -> String {
    let all = errors(yaml);
    all.iter()
        .find(|e| e.starts_with(&format!("{path}:")))
        .cloned()
        .unwrap_or_else(|| panic!("no error at {path} in {all:?}"))
}

#[test]
fn good_access_settings_are_typed() {
    let yaml = config(
        ", client_limits: { max_tunnels: 10, handshake_rate: { rate: 5 } }",
        r#", client_limits: { max_tunnels: 2, table_size: 1000 },
             auth: { jwt: { keys: tests/data/jwt/ec256.pub.pem, algorithms: [ES256], leeway: 0s,
                            token_from: ["query:t", "cookie:s"], forward_claims: { sub: X-User },
                            close_on_expiry: true },
                     forward: { url: "https://auth.test/check", copy_headers: [X-User-Id] } }"#,
        "rate_limit: { bytes_per_second: 1MiB, direction: both, action: close }, max_duration: 1h, max_duration_close_code: 4000",
    );
    let c = Config::from_yaml(&yaml).unwrap_or_else(|e| panic!("{:?}", e.messages()));
    let listener = c.listeners[0].client_limits.unwrap();
    assert_eq!(listener.max_tunnels, Some(10));
    assert_eq!(
        listener.handshake_rate,
        Some(RateConfig {
            per_second: 5,
            burst: 5
        })
    );
    assert_eq!(listener.table_size, 100_000);
    let route = &c.routes[0];
    assert_eq!(route.client_limits.unwrap().table_size, 1000);
    let jwt = route.auth.jwt.as_ref().unwrap();
    assert_eq!(
        (jwt.settings.leeway, jwt.close_on_expiry),
        (Duration::ZERO, true)
    );
    assert_eq!(jwt.forward_claims[0].1.as_str(), "x-user");
    let forward = route.auth.forward.as_ref().unwrap();
    assert_eq!(forward.timeout, Duration::from_secs(5));
    let passed: Vec<&str> = forward.pass_headers.iter().map(|h| h.as_str()).collect();
    assert_eq!(passed, ["cookie", "authorization"]);
    let ws = &route.websocket;
    let limit = ws.rate_limit.unwrap();
    assert_eq!(
        limit.bytes,
        Some(RateConfig {
            per_second: 1 << 20,
            burst: 1 << 20
        })
    );
    assert!(limit.both_directions && limit.messages.is_none());
    assert_eq!(limit.action, LimitAction::Close);
    assert_eq!(ws.max_duration, Some(Duration::from_secs(3600)));
    assert_eq!(ws.max_duration_close_code.as_u16(), 4000);
}

#[test]
fn jwt_errors_name_their_path_and_the_key_file() {
    let jwt = |body: &str| config("", &format!(", auth: {{ jwt: {{ {body} }} }}"), "");
    let missing = at(
        &jwt("keys: tests/data/jwt/nothing.pem"),
        "routes[0].auth.jwt.keys",
    );
    assert!(missing.contains("nothing.pem"), "{missing}");
    let yaml = jwt("keys: tests/data/jwt/ec256.pub.pem, algorithms: [none]");
    assert!(at(&yaml, "routes[0].auth.jwt.algorithms[0]").contains("\"none\""));
    let yaml = jwt("keys: tests/data/jwt/ec256.pub.pem, token_from: [\"body:x\"]");
    at(&yaml, "routes[0].auth.jwt.token_from[0]");
    let yaml = jwt("keys: tests/data/jwt/ec256.pub.pem, forward_claims: { sub: \"bad header\" }");
    at(&yaml, "routes[0].auth.jwt.forward_claims.sub");
    let yaml = jwt("keys: tests/data/jwt/ec256.pub.pem, leeway: soon");
    at(&yaml, "routes[0].auth.jwt.leeway");
}

#[test]
fn forward_auth_errors_name_their_path() {
    let forward = |body: &str| config("", &format!(", auth: {{ forward: {{ {body} }} }}"), "");
    at(&forward("url: \"ftp://x/\""), "routes[0].auth.forward.url");
    at(&forward("url: \"/relative\""), "routes[0].auth.forward.url");
    at(
        &forward("url: \"http://a/\", timeout: 0s"),
        "routes[0].auth.forward.timeout",
    );
    at(
        &forward("url: \"http://a/\", copy_headers: [\"no good\"]"),
        "routes[0].auth.forward.copy_headers[0]",
    );
}

#[test]
fn limit_errors_name_their_path() {
    let yaml = config(", client_limits: { max_tunnels: 0 }", "", "");
    at(&yaml, "listeners[0].client_limits.max_tunnels");
    let yaml = config(
        "",
        ", client_limits: { handshake_rate: { rate: 0 }, table_size: 2 }",
        "",
    );
    at(&yaml, "routes[0].client_limits.handshake_rate.rate");
    at(&yaml, "routes[0].client_limits.table_size");
    let limit = |body: &str| config("", "", &format!("rate_limit: {{ {body} }}"));
    at(
        &limit("direction: sideways"),
        "routes[0].websocket.rate_limit",
    );
    at(
        &limit("messages_per_second: 1, direction: sideways"),
        "routes[0].websocket.rate_limit.direction",
    );
    at(
        &limit("messages_per_second: 1, action: drop"),
        "routes[0].websocket.rate_limit.action",
    );
    at(
        &limit("bytes_per_second: 1KiB, burst: 3"),
        "routes[0].websocket.rate_limit.burst",
    );
    at(
        &limit("messages_per_second: 1, burst_bytes: 3"),
        "routes[0].websocket.rate_limit.burst_bytes",
    );
    let yaml = config("", "", "max_duration: 1h, max_duration_close_code: 1006");
    at(&yaml, "routes[0].websocket.max_duration_close_code");
}

#[test]
fn settings_that_limit_nothing_are_warnings() {
    let yaml = config(
        "",
        ", client_limits: {}, auth: {}",
        "max_duration_close_code: 4000",
    );
    let all = warnings(&yaml);
    for path in [
        "routes[0].client_limits",
        "routes[0].auth",
        "routes[0].websocket.max_duration_close_code",
    ] {
        assert!(
            all.iter().any(|w| w.starts_with(&format!("{path}:"))),
            "{path}: {all:?}"
        );
    }
}

#[test]
fn admin_access_settings() {
    let admin = |keys: &str| {
        format!(
            "{}admin: {{ bind: \"127.0.0.1:0\" {keys} }}\n",
            config("", "", "")
        )
    };
    let c = Config::from_yaml(&admin(
        ", token_file: admin.token, protect_reads: true, tap_payloads: true",
    ))
    .unwrap_or_else(|e| panic!("{:?}", e.messages()));
    let a = c.admin.unwrap();
    assert_eq!(
        a.token_file.as_deref(),
        Some(std::path::Path::new("./admin.token"))
    );
    assert!(a.protect_reads && a.tap_payloads);
    let a = Config::from_yaml(&admin("")).unwrap().admin.unwrap();
    assert!(a.token_file.is_none() && !a.protect_reads && !a.tap_payloads);
    assert_eq!(
        at(&admin(", protect_reads: true"), "admin.protect_reads"),
        "admin.protect_reads: needs admin.token_file (the token reads must carry)"
    );
}
