//! RFC 8441 requests: one test per rule, and the offer rules shared with HTTP/1.1.

use super::*;
use http::header::HeaderName;

const FRESH_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEA==";

fn target() -> ConnectTarget<'static> {
    ConnectTarget {
        scheme: Some("https"),
        path: Some("/chat"),
        authority: Some("example.com"),
    }
}

fn headers(extra: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("sec-websocket-version", HeaderValue::from_static("13"));
    for (name, value) in extra {
        let name: HeaderName = name.parse().unwrap();
        if value.is_empty() {
            h.remove(&name);
        } else {
            h.append(name, HeaderValue::from_str(value).unwrap());
        }
    }
    h
}

const ANY: RequestPolicy = RequestPolicy {
    allowed_origins: None,
    subprotocols: None,
    extensions: &[],
};

fn check(target: ConnectTarget, headers: &HeaderMap) -> Result<ClientOffer, HandshakeError> {
    validate_extended_connect(target, headers, &ANY, HeaderValue::from_static(FRESH_KEY))
}

#[test]
fn only_a_connect_with_protocol_websocket_is_a_websocket_stream() {
    assert!(is_websocket_connect(&Method::CONNECT, Some("websocket")));
    assert!(is_websocket_connect(&Method::CONNECT, Some("WebSocket")));
    assert!(!is_websocket_connect(&Method::CONNECT, None));
    assert!(!is_websocket_connect(
        &Method::CONNECT,
        Some("webtransport")
    ));
    assert!(!is_websocket_connect(&Method::GET, Some("websocket")));
}

#[test]
fn a_valid_request_offers_the_proxys_key_not_the_clients() {
    let offer = check(target(), &headers(&[("sec-websocket-key", "x")])).unwrap();
    assert_eq!(offer.key, FRESH_KEY);
    assert!(offer.protocols.is_empty() && offer.extensions.is_empty());
}

#[test]
fn each_pseudo_header_is_required() {
    let cases = [
        (
            ConnectTarget {
                scheme: None,
                ..target()
            },
            ":scheme",
        ),
        (
            ConnectTarget {
                path: None,
                ..target()
            },
            ":path",
        ),
        (
            ConnectTarget {
                path: Some(""),
                ..target()
            },
            ":path",
        ),
        (
            ConnectTarget {
                authority: None,
                ..target()
            },
            ":authority",
        ),
    ];
    for (t, name) in cases {
        let err = check(t, &headers(&[])).unwrap_err();
        assert_eq!(err, HandshakeError::MissingPseudoHeader(name));
        assert_eq!(err.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(err.result_label(), "bad_request");
    }
}

#[test]
fn version_13_is_required_once() {
    let err = check(target(), &headers(&[("sec-websocket-version", "")])).unwrap_err();
    assert_eq!(err, HandshakeError::UnsupportedVersion(None));
    assert_eq!(err.status(), http::StatusCode::UPGRADE_REQUIRED);
    let h = headers(&[("sec-websocket-version", "8")]);
    assert_eq!(
        check(target(), &h).unwrap_err(),
        HandshakeError::DuplicateHeader("Sec-WebSocket-Version")
    );
    let mut h = headers(&[]);
    h.insert("sec-websocket-version", HeaderValue::from_static("8"));
    assert_eq!(
        check(target(), &h).unwrap_err(),
        HandshakeError::UnsupportedVersion(Some("8".into()))
    );
}

#[test]
fn a_body_is_refused() {
    let h = headers(&[("content-length", "5")]);
    assert_eq!(check(target(), &h).unwrap_err(), HandshakeError::HasBody);
}

#[test]
fn origin_subprotocols_and_extensions_follow_the_route_as_over_http1() {
    let policy = RequestPolicy {
        allowed_origins: Some(&["https://app.example".to_owned()]),
        subprotocols: Some(&["chat".to_owned()]),
        extensions: &["permessage-deflate".to_owned()],
    };
    let key = || HeaderValue::from_static(FRESH_KEY);
    let denied = headers(&[("origin", "https://evil.example")]);
    let err = validate_extended_connect(target(), &denied, &policy, key()).unwrap_err();
    assert_eq!(err.status(), http::StatusCode::FORBIDDEN);
    let h = headers(&[
        ("origin", "https://app.example"),
        ("sec-websocket-protocol", "mqtt, chat"),
        ("sec-websocket-extensions", "permessage-deflate, x-unknown"),
    ]);
    let offer = validate_extended_connect(target(), &h, &policy, key()).unwrap();
    assert_eq!(offer.protocols, ["mqtt", "chat"]);
    assert_eq!(offer.forwarded_protocols, ["chat"]);
    assert_eq!(offer.forwarded_extensions, ["permessage-deflate"]);
    let bad = headers(&[("sec-websocket-protocol", "a b")]);
    assert_eq!(
        check(target(), &bad).unwrap_err(),
        HandshakeError::BadProtocolSyntax
    );
}

#[test]
fn the_streams_200_names_the_choice_and_nothing_of_http1() {
    let negotiated = Negotiated {
        accept: HeaderValue::from_static("unused"),
        protocol: Some("chat".into()),
        deflate: None,
    };
    let mut h = HeaderMap::new();
    add_stream_response_headers(&mut h, &negotiated);
    assert_eq!(h.get("sec-websocket-protocol").unwrap(), "chat");
    assert!(h.get("sec-websocket-accept").is_none());
    assert!(h.get("upgrade").is_none() && h.get("connection").is_none());
}
