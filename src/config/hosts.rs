//! Checks of the host and origin strings operators write: `routes[].match.host` (exact or a leading
//! `*.` wildcard) and `websocket.allowed_origins` entries (serialized origins, RFC 6454 §6.2). No I/O.

use wsgate_proto::handshake::grammar::split_host_port;

/// A `match.host` value, already trimmed and lower-cased. `*.example.com` is the only wildcard form
/// (nginx `server_name`, Envoy `domains`); a `*` anywhere else would match nothing, so it is refused.
pub fn check_route_host(host: &str) -> Result<(), String> {
    let name = host.strip_prefix("*.").unwrap_or(host);
    if host.contains('*') && (name.is_empty() || name.starts_with('.') || name.contains('*')) {
        return Err(format!(
            "{host:?}: only a leading \"*.\" wildcard is supported (e.g. \"*.example.com\")"
        ));
    }
    // nginx reads ".example.com" as "example.com and its subdomains"; here it would match nothing.
    if let Some(bare) = host.strip_prefix('.') {
        return Err(format!(
            "{host:?} matches no Host; write \"*{host}\" for the names under {bare:?} (and a second route for {bare:?} itself)"
        ));
    }
    let bracketed_v6 = name.starts_with('[') && name.ends_with(']');
    if name.is_empty()
        || name.contains(['/', ' '])
        || (name.contains(':') && !bracketed_v6)
        || (bracketed_v6 && host.starts_with('*'))
    {
        return Err(format!("{host:?} must be a host name without port or path"));
    }
    Ok(())
}

/// What an `allowed_origins` entry is, once it is known to be well formed.
#[derive(Debug, PartialEq, Eq)]
pub enum OriginKind {
    /// `scheme://host[:port]`.
    Tuple,
    /// The literal `null`: browsers send it for opaque origins (sandboxed iframes, `file://`).
    Null,
}

/// An `allowed_origins` entry, already trimmed. Browsers send `scheme://host[:port]`, lower-case,
/// without the default port, path or trailing slash (RFC 6454 §6.2), and wsgate compares entries
/// exactly (ASCII case-insensitively), so anything else could never match.
pub fn check_origin(origin: &str) -> Result<OriginKind, String> {
    if origin.is_empty() {
        return Err("must not be empty".into());
    }
    if origin.eq_ignore_ascii_case("null") {
        return Ok(OriginKind::Null);
    }
    if origin.contains('*') {
        return Err(format!(
            "{origin:?}: wildcards are not supported; list each origin (e.g. \"https://app.example.com\")"
        ));
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return Err(format!(
            "{origin:?} is not an origin: browsers send scheme://host[:port] (e.g. \"https://example.com\")"
        ));
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    if !scheme_ok {
        return Err(format!("{origin:?}: {scheme:?} is not a URL scheme"));
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme == "ws" || scheme == "wss" {
        return Err(format!(
            "{origin:?}: browsers send the page's origin (http:// or https://), never {scheme}://"
        ));
    }
    if let Some(cut) = rest.find(['/', '?', '#']) {
        return Err(format!(
            "{origin:?}: an origin has no path, query or trailing slash; write \"{scheme}://{}\"",
            &rest[..cut]
        ));
    }
    if rest.contains('@') {
        return Err(format!("{origin:?}: an origin has no user name"));
    }
    let (host, port) =
        split_host_port(rest).ok_or_else(|| format!("{origin:?}: {rest:?} is not host[:port]"))?;
    if !host_ok(host) {
        return Err(format!(
            "{origin:?}: {host:?} is not a host name or IP address (browsers send non-ASCII names in their xn-- form)"
        ));
    }
    if let Some(port) = port {
        let default = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(format!("{origin:?}: {port:?} is not a port (1-65535)")),
            Ok(n) if Some(n) == default => {
                return Err(format!(
                    "{origin:?}: browsers leave out the default port; write \"{scheme}://{host}\""
                ))
            }
            Ok(_) => {}
        }
    }
    Ok(OriginKind::Tuple)
}

/// A host name (letters, digits, `.`, `-`, `_`), an IPv4 address, or a bracketed IPv6 address.
pub fn host_ok(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
}
