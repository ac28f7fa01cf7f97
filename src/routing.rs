//! Route choice (design.md "Routing"): a route whose host matches the request's Host (port ignored,
//! case-insensitive) beats a route with no host; among those the longest path prefix wins, as a plain
//! string prefix (nginx `location /prefix`, Envoy `prefix`): "/ws" also matches "/wsx".

use crate::config::Config;

pub struct Router {
    /// (route index, host, prefix), host routes first, then by prefix length, longest first.
    candidates: Vec<(usize, Option<String>, String)>,
}

impl Router {
    pub fn new(config: &Config) -> Self {
        let mut candidates: Vec<_> = config
            .routes
            .iter()
            .enumerate()
            .map(|(i, r)| (i, r.host.clone(), r.path_prefix.clone()))
            .collect();
        // Stable: among equal keys, config order decides.
        candidates
            .sort_by_key(|(_, host, prefix)| (host.is_none(), std::cmp::Reverse(prefix.len())));
        Router { candidates }
    }

    /// The index into `Config::routes` for a request, or `None` (404). No allocation.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(strip_port);
        self.candidates
            .iter()
            .find(|(_, route_host, prefix)| {
                let host_ok = match (route_host, host) {
                    (None, _) => true,
                    (Some(want), Some(have)) => want.eq_ignore_ascii_case(have),
                    (Some(_), None) => false,
                };
                host_ok && path.starts_with(prefix.as_str())
            })
            .map(|(i, _, _)| *i)
    }
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`.
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
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
}
