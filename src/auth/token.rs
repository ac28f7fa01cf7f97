//! Where a client's token comes from (a header, a query parameter, a cookie or a WebSocket
//! subprotocol entry), taking it out of a request, and hiding it from the access log. No I/O.

use http::header::{COOKIE, SEC_WEBSOCKET_PROTOCOL};
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};

/// One place a token may be, as written in the config (`header:Authorization`, `query:access_token`,
/// `cookie:session`, `subprotocol:access_token.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Header(HeaderName),
    Query(String),
    Cookie(String),
    /// A `Sec-WebSocket-Protocol` entry starting with this prefix: browsers cannot set headers on a
    /// WebSocket, so a token often travels as a subprotocol (the Kubernetes API server does this).
    Subprotocol(String),
}

/// A token found, and which of the sources (its index in the list) held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub token: String,
    pub source: usize,
}

impl TokenSource {
    /// Parses `KIND:NAME`; the error says what is wrong, for the config's message.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((kind, name)) = s.split_once(':') else {
            return Err(format!(
                "{s:?} is not KIND:NAME (header:, query:, cookie: or subprotocol:)"
            ));
        };
        if name.is_empty() {
            return Err(format!("{s:?}: empty name after {kind:?}"));
        }
        let bad = |what: &str| Err(format!("{s:?}: {name:?} is not a valid {what}"));
        match kind {
            "header" => match HeaderName::from_bytes(name.as_bytes()) {
                Ok(h) => Ok(TokenSource::Header(h)),
                Err(_) => bad("header name"),
            },
            // These characters end a name in a query, a cookie or a subprotocol list: a name holding
            // one could never match.
            "query" if is_name(name, b"&=#") => Ok(TokenSource::Query(name.to_owned())),
            "cookie" if is_name(name, b";=,\"") => Ok(TokenSource::Cookie(name.to_owned())),
            "subprotocol" if is_name(name, b",") => Ok(TokenSource::Subprotocol(name.to_owned())),
            "query" => bad("query parameter name"),
            "cookie" => bad("cookie name"),
            "subprotocol" => bad("subprotocol prefix"),
            _ => Err(format!(
                "{s:?}: unknown kind {kind:?} (header, query, cookie or subprotocol)"
            )),
        }
    }
}

/// Visible ASCII without spaces and without any of `stops`.
fn is_name(name: &str, stops: &[u8]) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_graphic() && !stops.contains(&b))
}

/// The first token in list order; an empty value counts as absent.
pub fn find(sources: &[TokenSource], uri: &Uri, headers: &HeaderMap) -> Option<Found> {
    sources.iter().enumerate().find_map(|(source, s)| {
        let token = match s {
            TokenSource::Header(name) => from_header(name, headers),
            TokenSource::Query(name) => uri.query().and_then(|q| from_query(q, name)),
            TokenSource::Cookie(name) => from_cookies(name, headers),
            TokenSource::Subprotocol(prefix) => from_subprotocols(prefix, headers),
        }?;
        Some(Found { token, source })
    })
}

fn from_header(name: &HeaderName, headers: &HeaderMap) -> Option<String> {
    let authorization = name == http::header::AUTHORIZATION;
    headers.get_all(name).iter().find_map(|v| {
        let v = v.to_str().ok()?.trim();
        let token = match strip_bearer(v) {
            Some(t) => t,
            // Authorization with another scheme (Basic, ...) holds no bearer token (RFC 6750 §2.1).
            None if authorization => return None,
            None => v,
        };
        (!token.is_empty()).then(|| token.to_owned())
    })
}

/// The credentials after a case-insensitive `Bearer` scheme (RFC 9110 §11.1: schemes are
/// case-insensitive).
fn strip_bearer(v: &str) -> Option<&str> {
    let (scheme, rest) = v.split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start_matches([' ', '\t']))
}

/// The first `name=value` pair decides: an empty or badly encoded value is no token.
fn from_query(query: &str, name: &str) -> Option<String> {
    let value = query
        .split('&')
        .find_map(|pair| pair.split_once('=').filter(|(n, _)| *n == name))?
        .1;
    percent_decode(value).filter(|v| !v.is_empty())
}

/// `%XX` decoded; `+` is left as it is (tokens are base64url, which has no `+`). None for a `%` not
/// followed by two hex digits or for bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 6265 §5.4: `Cookie: a=1; b=2`, possibly on several lines (HTTP/2 splits them).
fn from_cookies(name: &str, headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            if n.trim() != name {
                return None;
            }
            let v = v.trim();
            // RFC 6265 §4.1.1: a cookie-value may be in double quotes, which are not part of it.
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (!v.is_empty()).then(|| v.to_owned())
        })
}

/// Every entry of every `Sec-WebSocket-Protocol` line (RFC 6455 §11.3.4: a comma-separated list).
fn subprotocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
}

fn from_subprotocols(prefix: &str, headers: &HeaderMap) -> Option<String> {
    subprotocols(headers).find_map(|e| {
        e.strip_prefix(prefix)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    })
}

/// Takes the token of `source` out of the request before it goes upstream, so that a backend (or
/// its logs) never sees a credential it did not ask for. A header or a cookie is left in place: the
/// backend may want it (a session cookie, or Authorization for its own checks).
pub fn strip(source: &TokenSource, uri: &mut Uri, headers: &mut HeaderMap) {
    match source {
        TokenSource::Query(name) => strip_query(name, uri),
        TokenSource::Subprotocol(prefix) => strip_subprotocols(prefix, headers),
        TokenSource::Header(_) | TokenSource::Cookie(_) => {}
    }
}

fn strip_query(name: &str, uri: &mut Uri) {
    let Some(pq) = uri.path_and_query() else {
        return;
    };
    let Some(query) = pq.query() else {
        return;
    };
    let is_token = |pair: &&str| pair.split_once('=').map_or(*pair, |(n, _)| n) == name;
    if !query.split('&').any(|p| is_token(&p)) {
        return;
    }
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty() && !is_token(p))
        .collect();
    let mut rebuilt = pq.path().to_owned();
    if !kept.is_empty() {
        rebuilt.push('?');
        rebuilt.push_str(&kept.join("&"));
    }
    // A path and query made of pieces of a valid one is valid; if not, the URI stays as it was.
    let Ok(pq) = PathAndQuery::try_from(rebuilt) else {
        return;
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(pq);
    if let Ok(new) = Uri::from_parts(parts) {
        *uri = new;
    }
}

fn strip_subprotocols(prefix: &str, headers: &mut HeaderMap) {
    if !subprotocols(headers).any(|e| e.starts_with(prefix)) {
        return;
    }
    let kept: Vec<&str> = subprotocols(headers)
        .filter(|e| !e.starts_with(prefix))
        .collect();
    // Lines that are not text held no token that `find` could take; they stay as they were.
    let unreadable: Vec<HeaderValue> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter(|v| v.to_str().is_err())
        .cloned()
        .collect();
    // Entries of valid values joined by ", " make a valid value; an error only drops them.
    let joined = (!kept.is_empty())
        .then(|| HeaderValue::from_str(&kept.join(", ")).ok())
        .flatten();
    headers.remove(SEC_WEBSOCKET_PROTOCOL);
    if let Some(v) = joined {
        headers.append(SEC_WEBSOCKET_PROTOCOL, v);
    }
    for v in unreadable {
        headers.append(SEC_WEBSOCKET_PROTOCOL, v);
    }
}

#[cfg(test)]
#[path = "token_tests.rs"]
mod tests;
