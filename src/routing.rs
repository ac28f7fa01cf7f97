//! Route choice (design.md "Routing"): a route whose host equals the request's Host (port ignored,
//! case-insensitive) beats a route with a `*.suffix` wildcard host, the longest suffix first, which beats
//! a route with no host (nginx `server_name`, Envoy `domains`); among those the longest path prefix wins,
//! as a plain string prefix (nginx `location /prefix`, Envoy `prefix`): "/ws" also matches "/wsx".

use std::cmp::Reverse;

use crate::config::Config;
use wsgate_proto::handshake::grammar::split_host_port;

enum HostMatch {
    Any,
    /// Lower-cased.
    Exact(String),
    /// `*.example.com` kept as `.example.com`: matches `a.example.com` and `a.b.example.com`, not
    /// `example.com` (as nginx).
    Suffix(String),
}

impl HostMatch {
    fn new(host: Option<&str>) -> Self {
        match host {
            None => HostMatch::Any,
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => HostMatch::Suffix(suffix.to_ascii_lowercase()),
                None => HostMatch::Exact(h.to_ascii_lowercase()),
            },
        }
    }

    /// Exact hosts first, then wildcards by suffix length (longest first), then no host.
    fn rank(&self) -> (u8, Reverse<usize>) {
        match self {
            HostMatch::Exact(_) => (0, Reverse(0)),
            HostMatch::Suffix(suffix) => (1, Reverse(suffix.len())),
            HostMatch::Any => (2, Reverse(0)),
        }
    }

    fn matches(&self, host: Option<&str>) -> bool {
        match (self, host) {
            (HostMatch::Any, _) => true,
            (_, None) => false,
            (HostMatch::Exact(want), Some(have)) => want.eq_ignore_ascii_case(have),
            (HostMatch::Suffix(suffix), Some(have)) => {
                // Bytes, not str slicing: a Host header's bytes need not fall on char boundaries.
                let (have, suffix) = (have.as_bytes(), suffix.as_bytes());
                have.len() > suffix.len()
                    && have[have.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }
}

pub struct Router {
    /// (route index, host, prefix), in the order routes are tried (see the module comment).
    candidates: Vec<(usize, HostMatch, String)>,
}

impl Router {
    pub fn new(config: &Config) -> Self {
        let mut candidates: Vec<_> = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (i, HostMatch::new(r.host.as_deref()), r.path_prefix.clone()))
            .collect();
        // Stable: among equal keys, config order decides.
        candidates.sort_by_key(|(_, host, prefix)| (host.rank(), Reverse(prefix.len())));
        Router { candidates }
    }

    /// The index into `Config::routes` for a request, or `None` (404). No allocation.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(strip_port);
        self.candidates
            .iter()
            .find(|(_, route_host, prefix)| {
                route_host.matches(host) && path.starts_with(prefix.as_str())
            })
            .map(|(i, _, _)| *i)
    }
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`; a Host of no such shape is kept
/// whole (it then matches no route host).
fn strip_port(host: &str) -> &str {
    split_host_port(host).map_or(host, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let yaml = r#"
listeners: [{ name: a, bind: "127.0.0.1:0" }]
upstreams: { u: { endpoints: ["127.0.0.1:1"] } }
routes:
  - { name: root, upstream: u }
  - { name: ws, match: { path_prefix: "/ws" }, upstream: u }
  - { name: ws-chat, match: { path_prefix: "/ws/chat" }, upstream: u }
  - { name: host-root, match: { host: "Chat.Example.com" }, upstream: u }
  - { name: v6, match: { host: "[::1]", path_prefix: "/v6" }, upstream: u }
"#;
        Router::new(&Config::from_yaml(yaml).unwrap())
    }

    #[test]
    fn host_beats_no_host_and_longest_prefix_wins() {
        let r = router();
        assert_eq!(r.route(None, "/"), Some(0));
        assert_eq!(r.route(Some("other.com"), "/ws/x"), Some(1));
        assert_eq!(r.route(Some("other.com"), "/ws/chat/1"), Some(2));
        // The host route wins although "/ws/chat" is a longer prefix.
        assert_eq!(r.route(Some("chat.example.com"), "/ws/chat/1"), Some(3));
        assert_eq!(r.route(Some("CHAT.example.COM:8443"), "/"), Some(3));
        assert_eq!(r.route(Some("[::1]:8080"), "/v6/x"), Some(4));
        assert_eq!(r.route(Some("[::1]:8080"), "/ws"), Some(1));
    }

    #[test]
    fn plain_string_prefix() {
        assert_eq!(router().route(None, "/wsx"), Some(1));
    }

    #[test]
    fn no_match() {
        let yaml = r#"
listeners: [{ name: a, bind: "127.0.0.1:0" }]
upstreams: { u: { endpoints: ["127.0.0.1:1"] } }
routes: [{ match: { host: "a.com", path_prefix: "/api" }, upstream: u }]
"#;
        let r = Router::new(&Config::from_yaml(yaml).unwrap());
        assert_eq!(r.route(Some("a.com"), "/other"), None);
        assert_eq!(r.route(Some("b.com"), "/api"), None);
        assert_eq!(r.route(None, "/api"), None);
        assert_eq!(r.route(Some("a.com"), "/api/v1"), Some(0));
    }

    #[test]
    fn exact_beats_wildcard_beats_any_and_longest_suffix_wins() {
        let yaml = r#"
listeners: [{ name: a, bind: "127.0.0.1:0" }]
upstreams: { u: { endpoints: ["127.0.0.1:1"] } }
routes:
  - { name: any, upstream: u }
  - { name: wild, match: { host: "*.example.com" }, upstream: u }
  - { name: wild-chat, match: { host: "*.chat.example.com" }, upstream: u }
  - { name: exact, match: { host: "a.chat.example.com" }, upstream: u }
  - { name: wild-api, match: { host: "*.example.com", path_prefix: "/api" }, upstream: u }
"#;
        let r = Router::new(&Config::from_yaml(yaml).unwrap());
        assert_eq!(r.route(Some("a.chat.example.com"), "/"), Some(3));
        assert_eq!(r.route(Some("b.chat.example.com"), "/"), Some(2));
        // The longer suffix wins although "/api" is a longer path prefix on the shorter one.
        assert_eq!(r.route(Some("b.chat.example.com"), "/api"), Some(2));
        assert_eq!(r.route(Some("B.Example.COM:8443"), "/"), Some(1));
        assert_eq!(r.route(Some("a.b.example.com"), "/api/x"), Some(4));
        // Not the bare domain, nor a name that merely ends the same way (nginx's rule).
        assert_eq!(r.route(Some("example.com"), "/"), Some(0));
        assert_eq!(r.route(Some(".example.com"), "/"), Some(0));
        assert_eq!(r.route(Some("badexample.com"), "/"), Some(0));
        assert_eq!(r.route(None, "/"), Some(0));
    }
}
