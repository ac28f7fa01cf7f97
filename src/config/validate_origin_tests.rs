//! `allowed_origins` entries and `match.host` wildcards: what browsers send is accepted, the rest is an error naming why.

use super::super::Config;
use super::tests::{errors, with};

pub(super) fn warnings(yaml: &str) -> Vec<String> {
    match Config::from_yaml(yaml) {
        Ok(c) => c.warnings.iter().map(ToString::to_string).collect(),
        Err(e) => panic!("{:?}", e.messages()),
    }
}

fn with_origins(list: &str) -> String {
    with("[\"https://chat.example.com\"]", list)
}

#[test]
fn origins_that_browsers_can_send_are_accepted() {
    let yaml = with_origins(
        "[\"https://chat.example.com\", \" HTTP://LOCALHOST:3000 \", \"https://[::1]:8443\", \"capacitor://localhost\", \"chrome-extension://abcdefgh\"]",
    );
    let c = Config::from_yaml(&yaml).unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let origins = c.routes[0].websocket.allowed_origins.as_ref().unwrap();
    assert_eq!(origins[1], "HTTP://LOCALHOST:3000", "trimmed");
}

#[test]
fn origins_that_no_browser_sends_are_errors() {
    let at = "routes[0].websocket.allowed_origins[0]";
    let cases = [
        (
            "example.com",
            "\"example.com\" is not an origin: browsers send scheme://host[:port] (e.g. \"https://example.com\")",
        ),
        (
            "https://example.com/",
            "\"https://example.com/\": an origin has no path, query or trailing slash; write \"https://example.com\"",
        ),
        (
            "https://example.com/app?x=1",
            "\"https://example.com/app?x=1\": an origin has no path, query or trailing slash; write \"https://example.com\"",
        ),
        (
            "https://example.com:443",
            "\"https://example.com:443\": browsers leave out the default port; write \"https://example.com\"",
        ),
        (
            "HTTP://example.com:80",
            "\"HTTP://example.com:80\": browsers leave out the default port; write \"http://example.com\"",
        ),
        (
            "wss://example.com",
            "\"wss://example.com\": browsers send the page's origin (http:// or https://), never wss://",
        ),
        (
            "https://*.example.com",
            "\"https://*.example.com\": wildcards are not supported; list each origin (e.g. \"https://app.example.com\")",
        ),
        (
            "https://example.com:99999",
            "\"https://example.com:99999\": \"99999\" is not a port (1-65535)",
        ),
        (
            "https://user@example.com",
            "\"https://user@example.com\": an origin has no user name",
        ),
        (
            "https://bücher.example",
            "\"https://bücher.example\": \"bücher.example\" is not a host name or IP address (browsers send non-ASCII names in their xn-- form)",
        ),
        ("https://", "\"https://\": \"\" is not a host name or IP address (browsers send non-ASCII names in their xn-- form)"),
        ("1http://x", "\"1http://x\": \"1http\" is not a URL scheme"),
    ];
    for (origin, message) in cases {
        let yaml = with_origins(&format!("[\"{origin}\"]"));
        assert_eq!(errors(&yaml), vec![format!("{at}: {message}")], "{origin}");
    }
}

#[test]
fn null_origin_is_allowed_with_a_warning() {
    let yaml = with_origins("[\"https://chat.example.com\", \"null\"]");
    assert_eq!(
        warnings(&yaml),
        vec!["routes[0].websocket.allowed_origins[1]: \"null\" is the origin of sandboxed iframes and file:// pages: any site can send it"]
    );
}

#[test]
fn host_wildcards() {
    let c = Config::from_yaml(&with("\"Chat.Example.com\"", "\"*.Example.com\"")).unwrap();
    assert_eq!(c.routes[0].host.as_deref(), Some("*.example.com"));
    for host in [
        "*",
        "*.",
        "*example.com",
        "**.example.com",
        "chat.*.com",
        "example.*",
        "*.*.example.com",
    ] {
        assert_eq!(
            errors(&with("\"Chat.Example.com\"", &format!("\"{host}\""))),
            vec![format!("routes[0].match.host: \"{host}\": only a leading \"*.\" wildcard is supported (e.g. \"*.example.com\")")],
            "{host}"
        );
    }
    assert_eq!(
        errors(&with("\"Chat.Example.com\"", "\".example.com\"")),
        vec!["routes[0].match.host: \".example.com\" matches no Host; write \"*.example.com\" for the names under \"example.com\" (and a second route for \"example.com\" itself)"]
    );
    assert_eq!(
        errors(&with("\"Chat.Example.com\"", "\"*.example.com:443\"")),
        vec![
            "routes[0].match.host: \"*.example.com:443\" must be a host name without port or path"
        ]
    );
}
