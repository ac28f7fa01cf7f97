//! The WebSocket opening handshake rules for both legs (RFC 6455 §4, RFC 9110 §7.8): what makes a
//! request an upgrade, what a valid client request and a valid upstream 101 look like, and the HTTP
//! status each broken rule gets. Pure functions over `http` types. No I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};
use sha1::{Digest, Sha1};

use super::deflate;

pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const SEC_KEY: &str = "sec-websocket-key";
const SEC_VERSION: &str = "sec-websocket-version";
const SEC_PROTOCOL: &str = "sec-websocket-protocol";
const SEC_EXTENSIONS: &str = "sec-websocket-extensions";
const SEC_ACCEPT: &str = "sec-websocket-accept";

/// base64(SHA-1(key + GUID)), RFC 6455 §4.2.2.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WS_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
}

/// True when the request is HTTP/1.1 and `Upgrade` lists the token `websocket`. An HTTP/1.0
/// request's `Upgrade` is ignored (RFC 9110 §7.8).
pub fn is_websocket_upgrade(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11 && has_token(headers, header::UPGRADE, "websocket")
}

/// What the route allows.
pub struct RequestPolicy<'a> {
    pub allowed_origins: Option<&'a [String]>,
    pub subprotocols: Option<&'a [String]>,
    /// Extensions that may be negotiated through wsgate (only `permessage-deflate` is known).
    pub extensions: &'a [String],
}

/// A validated client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOffer {
    /// Goes to the upstream unchanged.
    pub key: HeaderValue,
    /// What the client offered, in its order.
    pub protocols: Vec<String>,
    /// The offer filtered by the route's allowlist, client order kept.
    pub forwarded_protocols: Vec<String>,
    /// The raw extension offers, one element each.
    pub extensions: Vec<String>,
    /// The offers forwarded to the upstream: valid permessage-deflate offers when the route allows it.
    pub forwarded_extensions: Vec<String>,
    pub deflate_offers: Vec<deflate::Offer>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub protocol: Option<String>,
    /// permessage-deflate as agreed, and the header element to pass on to the client.
    pub deflate: Option<(deflate::Agreed, String)>,
}

/// A broken handshake rule, on the client's request or on the upstream's 101.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("method {0} is not GET")]
    MethodNotGet(String),
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    #[error("Connection header lacks the upgrade token")]
    NoConnectionUpgrade,
    #[error("an upgrade request must not have a body")]
    HasBody,
    #[error("Sec-WebSocket-Version is {0:?}, not 13")]
    UnsupportedVersion(Option<String>),
    #[error("Sec-WebSocket-Key is missing")]
    MissingKey,
    #[error("Sec-WebSocket-Key is not 16 bytes of base64")]
    BadKey,
    #[error("malformed Sec-WebSocket-Protocol")]
    BadProtocolSyntax,
    #[error("malformed Sec-WebSocket-Extensions")]
    BadExtensionSyntax,
    #[error("Origin {0:?} is not allowed")]
    ForbiddenOrigin(Option<String>),
    #[error("upstream 101 lacks the Upgrade: websocket or Connection: upgrade token")]
    UpstreamNotUpgraded,
    #[error("upstream Sec-WebSocket-Accept is missing, duplicated or wrong")]
    BadAccept,
    #[error("upstream chose a subprotocol the client did not offer: {0:?}")]
    BadSubprotocol(String),
    #[error("upstream negotiated an extension that was not offered: {0:?}")]
    BadExtension(String),
}

impl HandshakeError {
    pub fn status(&self) -> StatusCode {
        match self {
            HandshakeError::MethodNotGet(_) => StatusCode::METHOD_NOT_ALLOWED,
            HandshakeError::DuplicateHeader(_) => StatusCode::BAD_REQUEST,
            HandshakeError::NoConnectionUpgrade => StatusCode::BAD_REQUEST,
            HandshakeError::HasBody => StatusCode::BAD_REQUEST,
            HandshakeError::UnsupportedVersion(_) => StatusCode::UPGRADE_REQUIRED,
            HandshakeError::MissingKey => StatusCode::BAD_REQUEST,
            HandshakeError::BadKey => StatusCode::BAD_REQUEST,
            HandshakeError::BadProtocolSyntax => StatusCode::BAD_REQUEST,
            HandshakeError::BadExtensionSyntax => StatusCode::BAD_REQUEST,
            HandshakeError::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            HandshakeError::UpstreamNotUpgraded => StatusCode::BAD_GATEWAY,
            HandshakeError::BadAccept => StatusCode::BAD_GATEWAY,
            HandshakeError::BadSubprotocol(_) => StatusCode::BAD_GATEWAY,
            HandshakeError::BadExtension(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `result` label of `wsgate_ws_handshakes_total`.
    pub fn result_label(&self) -> &'static str {
        match self {
            HandshakeError::MethodNotGet(_) => "bad_request",
            HandshakeError::DuplicateHeader(_) => "bad_request",
            HandshakeError::NoConnectionUpgrade => "bad_request",
            HandshakeError::HasBody => "bad_request",
            HandshakeError::UnsupportedVersion(_) => "version",
            HandshakeError::MissingKey => "bad_request",
            HandshakeError::BadKey => "bad_request",
            HandshakeError::BadProtocolSyntax => "bad_request",
            HandshakeError::BadExtensionSyntax => "bad_request",
            HandshakeError::ForbiddenOrigin(_) => "forbidden_origin",
            HandshakeError::UpstreamNotUpgraded => "upstream_rejected",
            HandshakeError::BadAccept => "bad_accept",
            HandshakeError::BadSubprotocol(_) => "bad_subprotocol",
            HandshakeError::BadExtension(_) => "bad_extension",
        }
    }

    /// `Allow: GET` with 405; `Sec-WebSocket-Version: 13` and `Upgrade: websocket` with 426.
    pub fn response_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        match self {
            HandshakeError::MethodNotGet(_) => {
                headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
            }
            HandshakeError::UnsupportedVersion(_) => {
                headers.insert(SEC_VERSION, HeaderValue::from_static("13"));
                headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            }
            _ => {}
        }
        headers
    }
}

/// Checks the client's upgrade request (RFC 6455 §4.2.1) in the order design.md gives.
pub fn validate_request(
    method: &Method,
    _version: Version,
    headers: &HeaderMap,
    policy: &RequestPolicy,
) -> Result<ClientOffer, HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::MethodNotGet(method.to_string()));
    }
    for (name, label) in [
        (header::UPGRADE.as_str(), "Upgrade"),
        (SEC_KEY, "Sec-WebSocket-Key"),
        (SEC_VERSION, "Sec-WebSocket-Version"),
    ] {
        if headers.get_all(name).iter().count() > 1 {
            return Err(HandshakeError::DuplicateHeader(label));
        }
    }
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get_all(header::CONTENT_LENGTH)
            .iter()
            .any(|v| v.as_bytes() != b"0");
    if has_body {
        return Err(HandshakeError::HasBody);
    }
    // A missing version is answered like a wrong one: 426 tells the client what to send.
    match headers.get(SEC_VERSION) {
        Some(v) if v.as_bytes() == b"13" => {}
        other => {
            let seen = other.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return Err(HandshakeError::UnsupportedVersion(seen));
        }
    }
    let key = headers.get(SEC_KEY).ok_or(HandshakeError::MissingKey)?;
    match STANDARD.decode(key.as_bytes()) {
        Ok(decoded) if decoded.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    let protocols = token_list(headers, SEC_PROTOCOL).ok_or(HandshakeError::BadProtocolSyntax)?;
    let extensions = extension_list(headers).ok_or(HandshakeError::BadExtensionSyntax)?;
    if let Some(allowed) = policy.allowed_origins {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let ok = origin.is_some_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)));
        if !ok {
            return Err(HandshakeError::ForbiddenOrigin(origin.map(str::to_owned)));
        }
    }
    let allow_deflate = policy
        .extensions
        .iter()
        .any(|e| e.eq_ignore_ascii_case(deflate::NAME));
    let (mut forwarded_extensions, mut deflate_offers) = (Vec::new(), Vec::new());
    if allow_deflate {
        // Only well-formed permessage-deflate offers go on; anything else is not negotiable here.
        for element in &extensions {
            if let Some(Ok(offer)) = deflate::parse_offer(element) {
                forwarded_extensions.push(element.clone());
                deflate_offers.push(offer);
            }
        }
    }
    let forwarded_protocols = match policy.subprotocols {
        Some(allowed) => protocols
            .iter()
            .filter(|p| allowed.contains(p))
            .cloned()
            .collect(),
        None => protocols.clone(),
    };
    Ok(ClientOffer {
        key: key.clone(),
        protocols,
        forwarded_protocols,
        extensions,
        forwarded_extensions,
        deflate_offers,
    })
}

/// Rewrites the upgrade headers of the request sent upstream: the filtered subprotocol offer, only the
/// extension offers the route allows, and the upgrade tokens.
pub fn prepare_backend_headers(headers: &mut HeaderMap, offer: &ClientOffer) {
    headers.remove(SEC_PROTOCOL);
    headers.remove(SEC_EXTENSIONS);
    if !offer.forwarded_protocols.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&offer.forwarded_protocols.join(", ")) {
            headers.insert(SEC_PROTOCOL, value);
        }
    }
    if !offer.forwarded_extensions.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&offer.forwarded_extensions.join(", ")) {
            headers.insert(SEC_EXTENSIONS, value);
        }
    }
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
}

/// Checks the upstream's 101 against what was forwarded (RFC 6455 §4.1, client side).
pub fn validate_response(
    headers: &HeaderMap,
    offer: &ClientOffer,
) -> Result<Negotiated, HandshakeError> {
    if !has_token(headers, header::UPGRADE, "websocket")
        || !has_token(headers, header::CONNECTION, "upgrade")
    {
        return Err(HandshakeError::UpstreamNotUpgraded);
    }
    let mut accepts = headers.get_all(SEC_ACCEPT).iter();
    let expected = accept_key(offer.key.as_bytes());
    match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept.as_bytes() == expected.as_bytes() => {}
        _ => return Err(HandshakeError::BadAccept),
    }
    let mut protocols = headers.get_all(SEC_PROTOCOL).iter();
    let protocol = match (protocols.next(), protocols.next()) {
        (None, _) => None,
        (Some(value), None) => {
            let chosen = value.to_str().unwrap_or("").trim();
            if !offer.forwarded_protocols.iter().any(|p| p == chosen) {
                return Err(HandshakeError::BadSubprotocol(chosen.to_owned()));
            }
            Some(chosen.to_owned())
        }
        (Some(value), Some(_)) => {
            let first = String::from_utf8_lossy(value.as_bytes()).into_owned();
            return Err(HandshakeError::BadSubprotocol(first));
        }
    };
    // RFC 7692 §7.1: at most one permessage-deflate element, answering one of the forwarded offers.
    let elements =
        extension_list(headers).ok_or_else(|| HandshakeError::BadExtension("malformed".into()))?;
    let deflate = match elements.as_slice() {
        [] => None,
        [element] if !offer.deflate_offers.is_empty() => {
            let agreed = deflate::accept_response(element, &offer.deflate_offers)
                .map_err(HandshakeError::BadExtension)?;
            Some((agreed, element.clone()))
        }
        _ => return Err(HandshakeError::BadExtension(elements.join(", "))),
    };
    Ok(Negotiated { protocol, deflate })
}

/// The upgrade headers of wsgate's own 101 to the client.
pub fn client_response_headers(offer: &ClientOffer, negotiated: &Negotiated) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept_key(offer.key.as_bytes())) {
        headers.insert(SEC_ACCEPT, accept);
    }
    if let Some(protocol) = &negotiated.protocol {
        if let Ok(value) = HeaderValue::from_str(protocol) {
            headers.insert(SEC_PROTOCOL, value);
        }
    }
    if let Some((_, element)) = &negotiated.deflate {
        if let Ok(value) = HeaderValue::from_str(element) {
            headers.insert(SEC_EXTENSIONS, value);
        }
    }
    headers
}

/// Whether any line of a comma-separated header holds `token` (case-insensitive).
fn has_token(headers: &HeaderMap, name: impl header::AsHeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// RFC 9110 §5.6.2 token characters.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A comma-separated list of tokens over every header line; `None` when an element is malformed.
fn token_list(headers: &HeaderMap, name: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for value in headers.get_all(name).iter() {
        for element in value.to_str().ok()?.split(',') {
            let element = element.trim();
            if !is_token(element) {
                return None;
            }
            out.push(element.to_owned());
        }
    }
    Some(out)
}

/// RFC 6455 §9.1: `extension-token *( ";" extension-param )`, params `token [ "=" (token |
/// quoted-string) ]`. Returns the trimmed elements.
fn extension_list(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for value in headers.get_all(SEC_EXTENSIONS).iter() {
        for element in split_outside_quotes(value.to_str().ok()?, ',') {
            let element = element.trim();
            let mut parts = split_outside_quotes(element, ';').into_iter();
            if !is_token(parts.next()?.trim()) {
                return None;
            }
            for param in parts {
                let (name, value) = match param.split_once('=') {
                    Some((n, v)) => (n.trim(), Some(v.trim())),
                    None => (param.trim(), None),
                };
                let value_ok = value.is_none_or(|v| is_token(v) || is_quoted_token(v));
                if !is_token(name) || !value_ok {
                    return None;
                }
            }
            out.push(element.to_owned());
        }
    }
    Some(out)
}

/// RFC 6455 §9.1: a quoted parameter value must itself be a token once unquoted.
fn is_quoted_token(v: &str) -> bool {
    v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && is_token(&v[1..v.len() - 1])
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
