//! `RequestHead`: the exact bytes written, targets that could split the request refused, fields
//! kept in order.

use super::*;
use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};

#[test]
fn a_sample_upgrade_head_byte_for_byte() {
    let mut head = RequestHead::new(&Method::GET, "/chat?room=1&x=%20").unwrap();
    head.header(&HOST, &HeaderValue::from_static("backend:8080"));
    head.header(&UPGRADE, &HeaderValue::from_static("websocket"));
    head.header(&CONNECTION, &HeaderValue::from_static("Upgrade"));
    let custom = HeaderName::from_static("x-custom");
    head.header(
        &custom,
        &HeaderValue::from_bytes(b"caf\xc3\xa9\tx").unwrap(),
    );
    assert_eq!(
        head.finish(),
        b"GET /chat?room=1&x=%20 HTTP/1.1\r\nhost: backend:8080\r\nupgrade: websocket\r\n\
connection: Upgrade\r\nx-custom: caf\xc3\xa9\tx\r\n\r\n"
    );
    let empty = RequestHead::new(&Method::from_bytes(b"PURGE").unwrap(), "*").unwrap();
    assert_eq!(empty.finish(), b"PURGE * HTTP/1.1\r\n\r\n");
}

#[test]
fn targets_that_are_not_origin_form_visible_ascii_are_refused() {
    for target in [
        "",
        "chat",
        "http://backend/chat",
        "**",
        "/a b",
        "/a\r\nX-Injected: 1",
        "/a\n",
        "/a\0",
        "/a\x7f",
        "/a\t",
        "/caf\u{e9}",
    ] {
        assert_eq!(
            RequestHead::new(&Method::GET, target).unwrap_err(),
            HeadError::BadTarget(target.to_owned())
        );
    }
    for target in ["/", "/a/b?c=d#e", "/~!$&'()*+,;=:@%41"] {
        assert!(RequestHead::new(&Method::GET, target).is_ok(), "{target}");
    }
}

#[test]
fn headers_except_keeps_the_map_order_and_repeated_fields() {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", "a"),
        ("cookie", "c=1"),
        ("connection", "Upgrade"),
        ("x-forwarded-for", "10.0.0.1"),
        ("cookie", "d=2"),
        ("keep-alive", "timeout=5"),
        ("x-forwarded-for", "10.0.0.2"),
    ] {
        headers.append(name, HeaderValue::from_static(value));
    }
    let mut head = RequestHead::new(&Method::GET, "/").unwrap();
    head.headers_except(&headers, |name| {
        name == CONNECTION || name.as_str() == "keep-alive"
    });
    let text = String::from_utf8(head.finish()).unwrap();
    assert_eq!(
        text,
        "GET / HTTP/1.1\r\nhost: a\r\ncookie: c=1\r\ncookie: d=2\r\n\
x-forwarded-for: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n\r\n"
    );
    // What the map iterates is what is written: nothing reordered, nothing merged.
    let mut all = RequestHead::new(&Method::GET, "/").unwrap();
    all.headers_except(&headers, |_| false);
    let mut expected = b"GET / HTTP/1.1\r\n".to_vec();
    for (name, value) in &headers {
        expected.extend_from_slice(format!("{name}: {}\r\n", value.to_str().unwrap()).as_bytes());
    }
    expected.extend_from_slice(b"\r\n");
    assert_eq!(all.finish(), expected);
}

#[test]
fn a_written_head_parses_back() {
    let mut head = RequestHead::new(&Method::POST, "/p").unwrap();
    head.header(&HOST, &HeaderValue::from_static("h"));
    let bytes = head.finish();
    let mut fields = [httparse::EMPTY_HEADER; 4];
    let mut request = httparse::Request::new(&mut fields);
    assert_eq!(
        request.parse(&bytes),
        Ok(httparse::Status::Complete(bytes.len()))
    );
    assert_eq!((request.method, request.path), (Some("POST"), Some("/p")));
}
