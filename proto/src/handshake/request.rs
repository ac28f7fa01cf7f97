//! The client leg: what makes a request a WebSocket upgrade, the checks of the client's request in
//! design.md's order, and the upgrade headers of the request forwarded upstream.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Version};

use super::grammar::{extension_list, has_token, token_list};
use super::{deflate, ClientOffer, HandshakeError, RequestPolicy};
use super::{SEC_EXTENSIONS, SEC_KEY, SEC_PROTOCOL, SEC_VERSION};

/// True when the request is HTTP/1.1 and `Upgrade` lists the token `websocket`. An HTTP/1.0
/// request's `Upgrade` is ignored (RFC 9110 §7.8).
pub fn is_websocket_upgrade(version: Version, headers: &HeaderMap) -> bool {
    version == Version::HTTP_11 && has_token(headers, header::UPGRADE, "websocket")
}

/// Checks the client's upgrade request (RFC 6455 §4.2.1) in the order design.md gives.
pub fn validate_request(
    method: &Method,
    _version: Version,
    headers: &HeaderMap,
    policy: &RequestPolicy,
) -> Result<ClientOffer, HandshakeError> {
    check_upgrade_head(method, headers)?;
    let key = headers.get(SEC_KEY).ok_or(HandshakeError::MissingKey)?;
    match STANDARD.decode(key.as_bytes()) {
        Ok(decoded) if decoded.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    offer(headers, policy, key.clone())
}

/// The offer both kinds of request carry (subprotocols, extensions, origin), checked the same way;
/// `key` is what the upstream gets as `Sec-WebSocket-Key`.
pub(super) fn offer(
    headers: &HeaderMap,
    policy: &RequestPolicy,
    key: HeaderValue,
) -> Result<ClientOffer, HandshakeError> {
    let protocols = token_list(headers, SEC_PROTOCOL).ok_or(HandshakeError::BadProtocolSyntax)?;
    let extensions = extension_list(headers).ok_or(HandshakeError::BadExtensionSyntax)?;
    if let Some(allowed) = policy.allowed_origins {
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let ok = origin.is_some_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o)));
        if !ok {
            return Err(HandshakeError::ForbiddenOrigin(origin.map(str::to_owned)));
        }
    }
    let (forwarded_extensions, deflate_offers) = forwarded_extensions(&extensions, policy);
    let forwarded_protocols = match policy.subprotocols {
        Some(allowed) => protocols
            .iter()
            .filter(|p| allowed.contains(p))
            .cloned()
            .collect(),
        None => protocols.clone(),
    };
    Ok(ClientOffer {
        key,
        protocols,
        forwarded_protocols,
        extensions,
        forwarded_extensions,
        deflate_offers,
    })
}

/// The rules before the key: method, duplicate lines, the `upgrade` token, no body, version 13.
fn check_upgrade_head(method: &Method, headers: &HeaderMap) -> Result<(), HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::MethodNotGet(method.to_string()));
    }
    for (name, label) in [
        (header::UPGRADE, "Upgrade"),
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
    check_no_body_and_version(headers)
}

/// No body, and version 13 (RFC 6455 §4.2.1; RFC 8441 §5 keeps both for HTTP/2).
pub(super) fn check_no_body_and_version(headers: &HeaderMap) -> Result<(), HandshakeError> {
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
        Some(v) if v.as_bytes() == b"13" => Ok(()),
        other => {
            let seen = other.map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            Err(HandshakeError::UnsupportedVersion(seen))
        }
    }
}

/// The extension offers that go upstream, and their parsed deflate offers: only well-formed
/// permessage-deflate offers, and only when the route allows it; nothing else is negotiable here.
fn forwarded_extensions(
    extensions: &[String],
    policy: &RequestPolicy,
) -> (Vec<String>, Vec<deflate::Offer>) {
    let allow_deflate = policy
        .extensions
        .iter()
        .any(|e| e.eq_ignore_ascii_case(deflate::NAME));
    let (mut forwarded, mut offers) = (Vec::new(), Vec::new());
    if allow_deflate {
        for element in extensions {
            if let Some(Ok(offer)) = deflate::parse_offer(element) {
                forwarded.push(element.clone());
                offers.push(offer);
            }
        }
    }
    (forwarded, offers)
}

/// Rewrites the upgrade headers of the request sent upstream: the offer's key (the client's, or for
/// an HTTP/2 client one the proxy chose), the filtered subprotocol offer, only the extension offers
/// the route allows, and the upgrade tokens.
pub fn prepare_backend_headers(headers: &mut HeaderMap, offer: &ClientOffer) {
    headers.insert(SEC_KEY, offer.key.clone());
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
