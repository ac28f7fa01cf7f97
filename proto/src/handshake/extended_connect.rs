//! WebSockets over HTTP/2 (RFC 8441): what makes a stream's request an extended CONNECT for a
//! WebSocket, the checks of that request (§4 and §5: the pseudo-headers, then the same offer rules
//! as an HTTP/1.1 upgrade), and the headers of the `200` that opens the stream. The upstream still
//! gets an HTTP/1.1 upgrade, with a key the proxy chose, so its 101 is checked by `response.rs`.

use http::header::{HeaderMap, HeaderValue};
use http::Method;

use super::request::{check_no_body_and_version, offer};
use super::response::add_negotiated;
use super::{ClientOffer, HandshakeError, Negotiated, RequestPolicy, SEC_VERSION};

/// The `:protocol` of a WebSocket stream (RFC 8441 §4; registered lower case, compared as such).
pub const WEBSOCKET_PROTOCOL: &str = "websocket";

/// True for a CONNECT whose `:protocol` is `websocket`. Any other `:protocol` is not a WebSocket
/// and is refused by the caller as an unknown protocol.
pub fn is_websocket_connect(method: &Method, protocol: Option<&str>) -> bool {
    method == Method::CONNECT
        && protocol.is_some_and(|p| p.eq_ignore_ascii_case(WEBSOCKET_PROTOCOL))
}

/// The pseudo-headers of an extended CONNECT, as the HTTP/2 layer decoded them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectTarget<'a> {
    pub scheme: Option<&'a str>,
    pub path: Option<&'a str>,
    pub authority: Option<&'a str>,
}

/// Checks a WebSocket extended CONNECT (RFC 8441 §4, §5). `key` is the fresh `Sec-WebSocket-Key`
/// the proxy sends upstream in the client's stead; the client's own (it should send none) is
/// ignored.
pub fn validate_extended_connect(
    target: ConnectTarget<'_>,
    headers: &HeaderMap,
    policy: &RequestPolicy,
    key: HeaderValue,
) -> Result<ClientOffer, HandshakeError> {
    for (value, name) in [
        (target.scheme, ":scheme"),
        (target.path, ":path"),
        (target.authority, ":authority"),
    ] {
        if value.is_none_or(str::is_empty) {
            return Err(HandshakeError::MissingPseudoHeader(name));
        }
    }
    if headers.get_all(SEC_VERSION).iter().count() > 1 {
        return Err(HandshakeError::DuplicateHeader("Sec-WebSocket-Version"));
    }
    check_no_body_and_version(headers)?;
    offer(headers, policy, key)
}

/// Sets the headers of the `200` that opens a WebSocket stream: the chosen subprotocol and
/// extensions. No `Sec-WebSocket-Accept` (RFC 8441 §5: there is no key to answer) and no upgrade
/// tokens (connection-specific headers are not allowed in HTTP/2).
pub fn add_stream_response_headers(headers: &mut HeaderMap, negotiated: &Negotiated) {
    add_negotiated(headers, negotiated);
}

#[cfg(test)]
#[path = "extended_connect_tests.rs"]
mod tests;
