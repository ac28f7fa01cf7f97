//! Header rewriting for both legs: hop-by-hop removal (RFC 9110 §7.6.1) and X-Forwarded-*.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

const HOP_BY_HOP_COUNT: usize = 8;

/// Hop-by-hop headers (RFC 9110 §7.6.1), as `HeaderName`s: removing by a string would parse and
/// hash the name on every request.
const HOP_BY_HOP: [HeaderName; HOP_BY_HOP_COUNT] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    // RFC 7540 §3.2: h2c upgrades are never passed through.
    HeaderName::from_static("http2-settings"),
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the hop-by-hop headers and every header the `Connection` header names (RFC 9110 §7.6.1).
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Allocated only when `Connection` names a header beyond the usual tokens.
    let mut named: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim) {
            if token.eq_ignore_ascii_case("upgrade")
                || token.eq_ignore_ascii_case("keep-alive")
                || token.eq_ignore_ascii_case("close")
            {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                named.push(name);
            }
        }
    }
    for name in named {
        headers.remove(name);
    }
    // One scan for the ones present: a remove hashes its name, and most of them are absent.
    let mut present = [false; HOP_BY_HOP_COUNT];
    for key in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|name| name == key) {
            present[i] = true;
        }
    }
    for (name, present) in HOP_BY_HOP.iter().zip(present) {
        if present {
            headers.remove(name);
        }
    }
}

/// The address per-client limits count: the peer (after any PROXY header), or, when the peer is one
/// of `trusted` proxies, the right-most `X-Forwarded-For` entry that is not (nginx's
/// `real_ip_recursive on`). Without `trusted` proxies the header is never believed.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trusted: &[IpNet]) -> std::net::IpAddr {
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer.ip()) {
        return peer.ip();
    }
    let mut client = peer.ip();
    let values: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    for entry in values.iter().rev().flat_map(|v| v.rsplit(',')) {
        match entry.trim().parse::<std::net::IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // Garbage from a proxy we trust: stop at the last address we could read.
            Err(_) => break,
        }
    }
    client
}

/// Appends the peer to `X-Forwarded-For` and sets `X-Forwarded-Proto` and `X-Forwarded-Host`. With
/// `trusted` proxies configured, an `X-Forwarded-For` from any other peer is discarded first, so that a
/// client cannot pass itself off as someone else.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    peer: SocketAddr,
    proto: &'static str,
    trusted: &[IpNet],
) {
    let keep = trusted.is_empty() || trusted.iter().any(|net| net.contains(&peer.ip()));
    let mut xff = String::new();
    if keep {
        let previous = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        for value in previous {
            xff.push_str(value);
            xff.push_str(", ");
        }
    }
    push_ip(&mut xff, peer.ip());
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(xff)) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.reserve(2);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// An address as `Display` writes it; IPv4 by hand, since the formatter's padding support makes it
/// the costliest step of a forwarded request's header rewrite.
fn push_ip(out: &mut String, ip: std::net::IpAddr) {
    use std::fmt::Write as _;
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        std::net::IpAddr::V6(v6) => {
            let _ = write!(out, "{v6}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_ip_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.append(
            &X_FORWARDED_FOR,
            HeaderValue::from_static("203.0.113.9, 10.0.0.7"),
        );
        h.append(&X_FORWARDED_FOR, HeaderValue::from_static("10.1.1.1"));
        let from = |peer: &str| peer.parse::<SocketAddr>().unwrap();
        assert_eq!(
            client_ip(&h, from("10.0.0.1:5"), &trusted).to_string(),
            "203.0.113.9"
        );
        assert_eq!(
            client_ip(&h, from("192.0.2.1:5"), &trusted).to_string(),
            "192.0.2.1"
        );
        assert_eq!(
            client_ip(&h, from("10.0.0.1:5"), &[]).to_string(),
            "10.0.0.1"
        );
        h.insert(&X_FORWARDED_FOR, HeaderValue::from_static("junk, 10.2.2.2"));
        assert_eq!(
            client_ip(&h, from("10.0.0.1:5"), &trusted).to_string(),
            "10.2.2.2"
        );
        assert_eq!(
            client_ip(&HeaderMap::new(), from("10.0.0.1:5"), &trusted).to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn strips_hop_by_hop_and_connection_named() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("upgrade", HeaderValue::from_static("h2c"));
        h.insert(
            "http2-settings",
            HeaderValue::from_static("AAMAAABkAAQAAP__"),
        );
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.100.255",
            "1.99.100.9",
            "::1",
            "2001:db8::5",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = String::new();
            push_ip(&mut out, ip);
            assert_eq!(out, ip.to_string());
        }
    }

    #[test]
    fn appends_forwarded_for() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("host", HeaderValue::from_static("example.com"));
        add_forwarded(&mut h, "127.0.0.1:5000".parse().unwrap(), "http", &[]);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com");
    }

    #[test]
    fn untrusted_peers_cannot_forge_forwarded_for() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("6.6.6.6"));
        add_forwarded(&mut h, "203.0.113.5:1".parse().unwrap(), "http", &trusted);
        assert_eq!(h["x-forwarded-for"], "203.0.113.5");
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        add_forwarded(&mut h, "10.1.2.3:1".parse().unwrap(), "http", &trusted);
        assert_eq!(h["x-forwarded-for"], "198.51.100.1, 198.51.100.2, 10.1.2.3");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
    }
}
