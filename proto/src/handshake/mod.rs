//! The WebSocket opening handshake rules for both legs (RFC 6455 §4, RFC 9110 §7.8): the types and
//! errors they share, here; what makes a request an upgrade and a valid client request
//! (`request.rs`), what a valid upstream 101 and wsgate's own 101 look like (`response.rs`), and the
//! HTTP header grammar both read with (`grammar.rs`); WebSockets over HTTP/2 streams
//! (`extended_connect.rs`, RFC 8441). Pure functions over `http` types. No I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::StatusCode;
use sha1::{Digest, Sha1};

use super::deflate;

mod extended_connect;
pub mod grammar;
mod request;
mod response;

pub use extended_connect::{
    add_stream_response_headers, is_websocket_connect, validate_extended_connect, ConnectTarget,
    WEBSOCKET_PROTOCOL,
};
pub use grammar::is_token;
pub use request::{is_websocket_upgrade, prepare_backend_headers, validate_request};
pub use response::{add_client_response_headers, validate_response};

pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// `HeaderName`s, not strings: a lookup by a string parses and hashes the name every time.
const SEC_KEY: HeaderName = header::SEC_WEBSOCKET_KEY;
const SEC_VERSION: HeaderName = header::SEC_WEBSOCKET_VERSION;
const SEC_PROTOCOL: HeaderName = header::SEC_WEBSOCKET_PROTOCOL;
const SEC_EXTENSIONS: HeaderName = header::SEC_WEBSOCKET_EXTENSIONS;
const SEC_ACCEPT: HeaderName = header::SEC_WEBSOCKET_ACCEPT;

/// base64(SHA-1(key + GUID)), RFC 6455 §4.2.2.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WS_GUID.as_bytes());
    STANDARD.encode(sha.finalize())
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
    /// The upstream's `Sec-WebSocket-Accept`, checked against the client's key: the client gets it.
    pub accept: HeaderValue,
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
    #[error("extended CONNECT lacks {0}")]
    MissingPseudoHeader(&'static str),
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
            HandshakeError::MissingPseudoHeader(_) => StatusCode::BAD_REQUEST,
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
            HandshakeError::MissingPseudoHeader(_) => "bad_request",
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

#[cfg(test)]
mod tests;
