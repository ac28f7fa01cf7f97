//! One test per handshake rule and per error row (status, metric label, headers).

use super::*;
use http::{Method, Version};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// Appends each `(name, value)`; an empty value removes the header instead.
fn apply(mut h: HeaderMap, extra: &[(&str, &str)]) -> HeaderMap {
    for (name, value) in extra {
        let name: http::HeaderName = name.parse().unwrap();
        if value.is_empty() {
            h.remove(&name);
        } else {
            h.append(name, HeaderValue::from_str(value).unwrap());
        }
    }
    h
}

fn request(extra: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("host", "example.com"),
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-key", KEY),
        ("sec-websocket-version", "13"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    apply(h, extra)
}

fn replace(name: &str, value: &str) -> HeaderMap {
    let mut h = request(&[]);
    h.insert(
        name.parse::<http::HeaderName>().unwrap(),
        HeaderValue::from_str(value).unwrap(),
    );
    h
}

const ANY: RequestPolicy = RequestPolicy {
    allowed_origins: None,
    subprotocols: None,
    extensions: &[],
};

fn check(headers: &HeaderMap) -> Result<ClientOffer, HandshakeError> {
    validate_request(&Method::GET, Version::HTTP_11, headers, &ANY)
}

#[test]
fn rfc_accept_example() {
    assert_eq!(accept_key(KEY.as_bytes()), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn upgrade_detection() {
    assert!(is_websocket_upgrade(Version::HTTP_11, &request(&[])));
    assert!(is_websocket_upgrade(
        Version::HTTP_11,
        &replace("upgrade", "h2c, WebSocket")
    ));
    assert!(!is_websocket_upgrade(Version::HTTP_10, &request(&[])));
    assert!(!is_websocket_upgrade(
        Version::HTTP_11,
        &replace("upgrade", "h2c")
    ));
    assert!(!is_websocket_upgrade(Version::HTTP_11, &HeaderMap::new()));
}

#[test]
fn valid_requests() {
    let offer = check(&request(&[])).unwrap();
    assert_eq!(offer.key, KEY);
    assert!(check(&replace("connection", "keep-alive, Upgrade")).is_ok());
    assert!(check(&replace("connection", "UPGRADE")).is_ok());
    assert!(check(&replace("content-length", "0")).is_ok());
}

#[test]
fn rejections_with_status_label_and_headers() {
    let post = validate_request(&Method::POST, Version::HTTP_11, &request(&[]), &ANY).unwrap_err();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.result_label(), "bad_request");
    assert_eq!(post.response_headers()["allow"], "GET");

    let v8 = check(&replace("sec-websocket-version", "8")).unwrap_err();
    assert_eq!(v8, HandshakeError::UnsupportedVersion(Some("8".into())));
    assert_eq!(v8.status(), StatusCode::UPGRADE_REQUIRED);
    assert_eq!(v8.result_label(), "version");
    assert_eq!(v8.response_headers()["sec-websocket-version"], "13");
    assert_eq!(v8.response_headers()["upgrade"], "websocket");
    assert_eq!(
        check(&request(&[("sec-websocket-version", "")])).unwrap_err(),
        HandshakeError::UnsupportedVersion(None)
    );

    let cases: Vec<(HeaderMap, HandshakeError)> = vec![
        (
            replace("sec-websocket-key", "AAAAAAAAAAAAAAAAAAAA"), // 15 bytes
            HandshakeError::BadKey,
        ),
        (
            replace("sec-websocket-key", "not base64!!"),
            HandshakeError::BadKey,
        ),
        (
            replace("sec-websocket-key", "dGhlIHNhbXBs ZSBub25jZQ=="),
            HandshakeError::BadKey,
        ),
        (
            request(&[("sec-websocket-key", "")]),
            HandshakeError::MissingKey,
        ),
        (
            replace("connection", "keep-alive"),
            HandshakeError::NoConnectionUpgrade,
        ),
        (
            request(&[("sec-websocket-key", KEY)]),
            HandshakeError::DuplicateHeader("Sec-WebSocket-Key"),
        ),
        (
            request(&[("sec-websocket-version", "13")]),
            HandshakeError::DuplicateHeader("Sec-WebSocket-Version"),
        ),
        (
            request(&[("upgrade", "websocket")]),
            HandshakeError::DuplicateHeader("Upgrade"),
        ),
        (replace("content-length", "5"), HandshakeError::HasBody),
        (
            replace("transfer-encoding", "chunked"),
            HandshakeError::HasBody,
        ),
        (
            replace("sec-websocket-protocol", "chat, ,x"),
            HandshakeError::BadProtocolSyntax,
        ),
        (
            replace("sec-websocket-protocol", "chat/v1"),
            HandshakeError::BadProtocolSyntax,
        ),
        (
            replace("sec-websocket-extensions", "permessage-deflate; =x"),
            HandshakeError::BadExtensionSyntax,
        ),
        (
            replace("sec-websocket-extensions", "a b"),
            HandshakeError::BadExtensionSyntax,
        ),
    ];
    for (headers, expected) in cases {
        let error = check(&headers).unwrap_err();
        assert_eq!(error, expected, "{headers:?}");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.result_label(), "bad_request");
        assert!(error.response_headers().is_empty());
    }
}

#[test]
fn extension_syntax() {
    let h = replace(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits, x-foo; a=\"1\"; b=2",
    );
    let offer = check(&h).unwrap();
    assert_eq!(offer.extensions.len(), 2);
}

#[test]
fn origins() {
    let allowed = vec!["https://chat.example.com".to_owned()];
    let policy = RequestPolicy {
        allowed_origins: Some(&allowed),
        subprotocols: None,
        extensions: &[],
    };
    let run = |h: &HeaderMap| validate_request(&Method::GET, Version::HTTP_11, h, &policy);
    assert!(run(&replace("origin", "HTTPS://Chat.Example.com")).is_ok());
    let evil = run(&replace("origin", "https://evil.example")).unwrap_err();
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    assert_eq!(evil.result_label(), "forbidden_origin");
    assert_eq!(
        run(&request(&[])).unwrap_err(),
        HandshakeError::ForbiddenOrigin(None)
    );
}

#[test]
fn subprotocol_filter_keeps_client_order() {
    let allowed = vec!["chat.v2".to_owned(), "chat.v1".to_owned()];
    let policy = RequestPolicy {
        allowed_origins: None,
        subprotocols: Some(&allowed),
        extensions: &[],
    };
    let h = replace("sec-websocket-protocol", "chat.v1, other, chat.v2");
    let offer = validate_request(&Method::GET, Version::HTTP_11, &h, &policy).unwrap();
    assert_eq!(offer.protocols, ["chat.v1", "other", "chat.v2"]);
    assert_eq!(offer.forwarded_protocols, ["chat.v1", "chat.v2"]);

    let mut upstream = h.clone();
    upstream.insert("sec-websocket-extensions", HeaderValue::from_static("x"));
    prepare_backend_headers(&mut upstream, &offer);
    assert_eq!(upstream["sec-websocket-protocol"], "chat.v1, chat.v2");
    assert!(!upstream.contains_key("sec-websocket-extensions"));

    let only_other = replace("sec-websocket-protocol", "other");
    let offer = validate_request(&Method::GET, Version::HTTP_11, &only_other, &policy).unwrap();
    let mut upstream = only_other.clone();
    prepare_backend_headers(&mut upstream, &offer);
    assert!(!upstream.contains_key("sec-websocket-protocol"));
}

fn offer(forwarded: &[&str]) -> ClientOffer {
    ClientOffer {
        key: HeaderValue::from_static(KEY),
        protocols: forwarded.iter().map(|s| s.to_string()).collect(),
        forwarded_protocols: forwarded.iter().map(|s| s.to_string()).collect(),
        extensions: vec![],
        forwarded_extensions: vec![],
        deflate_offers: vec![],
    }
}

fn response(extra: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("upgrade", HeaderValue::from_static("websocket"));
    h.insert("connection", HeaderValue::from_static("Upgrade"));
    h.insert(
        "sec-websocket-accept",
        HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
    );
    apply(h, extra)
}

#[test]
fn upstream_responses() {
    let o = offer(&["chat.v1"]);
    assert_eq!(
        validate_response(&response(&[]), &o),
        Ok(Negotiated {
            accept: HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            protocol: None,
            deflate: None
        })
    );
    assert_eq!(
        validate_response(&response(&[("sec-websocket-protocol", "chat.v1")]), &o),
        Ok(Negotiated {
            accept: HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            protocol: Some("chat.v1".into()),
            deflate: None
        })
    );
    let cases = [
        (response(&[("sec-websocket-accept", "")]), "bad_accept"),
        (
            response(&[("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")]),
            "bad_accept",
        ),
        (
            {
                let mut h = response(&[]);
                h.insert("sec-websocket-accept", HeaderValue::from_static("wrong="));
                h
            },
            "bad_accept",
        ),
        (
            response(&[("sec-websocket-protocol", "chat.v2")]),
            "bad_subprotocol",
        ),
        (
            response(&[("sec-websocket-protocol", "chat.v1, chat.v2")]),
            "bad_subprotocol",
        ),
        (
            response(&[
                ("sec-websocket-protocol", "chat.v1"),
                ("sec-websocket-protocol", "chat.v1"),
            ]),
            "bad_subprotocol",
        ),
        (
            response(&[("sec-websocket-extensions", "permessage-deflate")]),
            "bad_extension",
        ),
        (response(&[("upgrade", "")]), "upstream_rejected"),
        (response(&[("connection", "")]), "upstream_rejected"),
    ];
    for (headers, label) in cases {
        let error = validate_response(&headers, &o).unwrap_err();
        assert_eq!(error.result_label(), label, "{headers:?}");
        assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
    }
    // A protocol the allowlist removed is not acceptable even if the client offered it.
    let filtered = ClientOffer {
        forwarded_protocols: vec![],
        ..offer(&["chat.v1"])
    };
    assert!(matches!(
        validate_response(
            &response(&[("sec-websocket-protocol", "chat.v1")]),
            &filtered
        ),
        Err(HandshakeError::BadSubprotocol(_))
    ));
}

#[test]
fn client_response() {
    let mut headers = HeaderMap::new();
    add_client_response_headers(
        &mut headers,
        &Negotiated {
            accept: HeaderValue::from_static("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            protocol: Some("chat.v1".into()),
            deflate: None,
        },
    );
    assert_eq!(headers["upgrade"], "websocket");
    assert_eq!(headers["connection"], "Upgrade");
    assert_eq!(
        headers["sec-websocket-accept"],
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    assert_eq!(headers["sec-websocket-protocol"], "chat.v1");
}

#[test]
fn deflate_negotiation_when_the_route_allows_it() {
    let allowed = vec!["permessage-deflate".to_owned()];
    let policy = RequestPolicy {
        allowed_origins: None,
        subprotocols: None,
        extensions: &allowed,
    };
    let h = replace(
        "sec-websocket-extensions",
        "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits, permessage-deflate; server_max_window_bits=99",
    );
    let offer = validate_request(&Method::GET, Version::HTTP_11, &h, &policy).unwrap();
    // Only the well-formed permessage-deflate offer goes on.
    assert_eq!(
        offer.forwarded_extensions,
        ["permessage-deflate; client_max_window_bits"]
    );
    let mut upstream = h.clone();
    prepare_backend_headers(&mut upstream, &offer);
    assert_eq!(
        upstream["sec-websocket-extensions"],
        "permessage-deflate; client_max_window_bits"
    );

    let answer = "permessage-deflate; client_max_window_bits=10; server_no_context_takeover";
    let negotiated =
        validate_response(&response(&[("sec-websocket-extensions", answer)]), &offer).unwrap();
    let (agreed, element) = negotiated.deflate.clone().unwrap();
    assert!(agreed.server_no_context_takeover);
    assert_eq!(agreed.client_max_window_bits, Some(10));
    assert_eq!(element, answer);
    let mut to_client = HeaderMap::new();
    add_client_response_headers(&mut to_client, &negotiated);
    assert_eq!(to_client["sec-websocket-extensions"], answer);

    for bad in [
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; unknown_param",
        "permessage-deflate, permessage-deflate",
        "x-webkit-deflate-frame",
    ] {
        let error =
            validate_response(&response(&[("sec-websocket-extensions", bad)]), &offer).unwrap_err();
        assert_eq!(error.result_label(), "bad_extension", "{bad}");
    }
    // Not allowed by the route: nothing is forwarded, and any answer with an extension is refused.
    let offer = check(&h).unwrap();
    assert!(offer.forwarded_extensions.is_empty());
    let answer = response(&[("sec-websocket-extensions", "permessage-deflate")]);
    assert_eq!(
        validate_response(&answer, &offer)
            .unwrap_err()
            .result_label(),
        "bad_extension"
    );
}
