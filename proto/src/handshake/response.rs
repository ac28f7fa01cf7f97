//! The upstream leg: the checks of the upstream's 101 against what was forwarded, and the upgrade
//! headers of wsgate's own 101 to the client.

use http::header::{self, HeaderMap, HeaderValue};

use super::grammar::{extension_list, has_token};
use super::{accept_key, deflate, ClientOffer, HandshakeError, Negotiated};
use super::{SEC_ACCEPT, SEC_EXTENSIONS, SEC_PROTOCOL};

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
    // The one computation of the accept value per session: the client's 101 reuses the checked one.
    let accept = match (accepts.next(), accepts.next()) {
        (Some(accept), None) if accept.as_bytes() == expected.as_bytes() => accept.clone(),
        _ => return Err(HandshakeError::BadAccept),
    };
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
    Ok(Negotiated {
        accept,
        protocol,
        deflate,
    })
}

/// Sets the upgrade headers of wsgate's own 101 to the client in `headers` (the upstream's end-to-end
/// headers, whose own `Sec-WebSocket-*` were removed).
pub fn add_client_response_headers(headers: &mut HeaderMap, negotiated: &Negotiated) {
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(SEC_ACCEPT, negotiated.accept.clone());
    add_negotiated(headers, negotiated);
}

/// The chosen subprotocol and extensions, as both kinds of answer to the client carry them.
pub(super) fn add_negotiated(headers: &mut HeaderMap, negotiated: &Negotiated) {
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
}
