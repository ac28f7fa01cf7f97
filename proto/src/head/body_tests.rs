//! `ResponseHead::body`: one row per case of RFC 9112 §6.3 that applies to a response.

use super::*;
use http::Method;

/// The body kind of `status` on `version` with `fields` (one `Name: value` per element), for a GET.
fn body_of(version: &str, status: u16, fields: &[&str]) -> Result<BodyKind, HeadError> {
    body_for(&Method::GET, version, status, fields)
}

fn body_for(
    method: &Method,
    version: &str,
    status: u16,
    fields: &[&str],
) -> Result<BodyKind, HeadError> {
    let mut bytes = format!("{version} {status} X\r\n");
    for field in fields {
        bytes.push_str(field);
        bytes.push_str("\r\n");
    }
    bytes.push_str("\r\n");
    let head = parse_response(bytes.as_bytes(), HeadLimits::default())
        .unwrap()
        .unwrap();
    head.body(method)
}

#[test]
fn item_1_head_1xx_204_304_have_no_body_whatever_the_fields_say() {
    let framing = ["Content-Length: 10", "Transfer-Encoding: chunked"];
    for status in [100, 101, 103, 204, 304] {
        assert_eq!(
            body_of("HTTP/1.1", status, &[]),
            Ok(BodyKind::None),
            "{status}"
        );
        for field in framing {
            assert_eq!(body_of("HTTP/1.1", status, &[field]), Ok(BodyKind::None));
        }
        // Even a Content-Length that would be refused elsewhere.
        assert_eq!(
            body_of("HTTP/1.1", status, &["Content-Length: x"]),
            Ok(BodyKind::None)
        );
    }
    for status in [200, 404, 500] {
        for field in framing {
            assert_eq!(
                body_for(&Method::HEAD, "HTTP/1.1", status, &[field]),
                Ok(BodyKind::None)
            );
        }
    }
}

#[test]
fn item_2_a_2xx_to_connect_becomes_a_tunnel_with_no_body() {
    let fields = ["Content-Length: 10"];
    let connect = |status| body_for(&Method::CONNECT, "HTTP/1.1", status, &fields);
    assert_eq!(connect(200), Ok(BodyKind::None));
    assert_eq!(connect(407), Ok(BodyKind::Length(10)));
}

#[test]
fn item_3_transfer_encoding_with_chunked_last_is_chunked_and_overrides_content_length() {
    let chunked = Ok(BodyKind::Chunked);
    for fields in [
        &["Transfer-Encoding: chunked"][..],
        &["Transfer-Encoding: CHUNKED"],
        &["Transfer-Encoding: gzip, chunked"],
        &["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
        &["Transfer-Encoding: gzip,chunked , "],
        &["Transfer-Encoding: chunked", "Content-Length: 10"],
        &[
            "Content-Length: 10",
            "Content-Length: 11",
            "Transfer-Encoding: chunked",
        ],
        &["Content-Length: nope", "Transfer-Encoding: chunked"],
    ] {
        assert_eq!(body_of("HTTP/1.1", 200, fields), chunked, "{fields:?}");
    }
}

#[test]
fn item_3_transfer_encoding_without_chunked_last_reads_until_close() {
    for fields in [
        &["Transfer-Encoding: chunked, gzip"][..],
        &["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"],
        &["Transfer-Encoding: gzip"],
        &["Transfer-Encoding: gzip", "Content-Length: 10"],
        &["Transfer-Encoding: chunkedx"],
        &["Transfer-Encoding:"],
        &["Transfer-Encoding: chunked\u{e9}"],
    ] {
        assert_eq!(
            body_of("HTTP/1.1", 200, fields),
            Ok(BodyKind::UntilClose),
            "{fields:?}"
        );
    }
}

#[test]
fn transfer_encoding_on_http_1_0_is_faulty_framing() {
    for fields in [
        &["Transfer-Encoding: chunked"][..],
        &["Transfer-Encoding: chunked", "Content-Length: 10"],
        &["Transfer-Encoding: gzip"],
    ] {
        assert_eq!(
            body_of("HTTP/1.0", 200, fields),
            Err(HeadError::TransferEncodingOnHttp10)
        );
    }
    // Without a body there is nothing to frame.
    assert_eq!(
        body_of("HTTP/1.0", 204, &["Transfer-Encoding: chunked"]),
        Ok(BodyKind::None)
    );
}

#[test]
fn items_5_and_6_one_valid_content_length_is_the_length() {
    for (fields, length) in [
        (&["Content-Length: 5"][..], 5),
        (&["Content-Length: 0"], 0),
        (&["Content-Length: 007"], 7),
        (&["Content-Length: 5, 5"], 5),
        (&["Content-Length: 5,5 ,  5"], 5),
        (&["Content-Length: 5", "Content-Length: 5"], 5),
        // Equal as numbers is equal (hyper compares the same way).
        (&["Content-Length: 5", "Content-Length: 05"], 5),
        (&["Content-Length: 18446744073709551615"], u64::MAX),
    ] {
        assert_eq!(
            body_of("HTTP/1.1", 200, fields),
            Ok(BodyKind::Length(length))
        );
    }
    assert_eq!(
        body_of("HTTP/1.0", 200, &["Content-Length: 3"]),
        Ok(BodyKind::Length(3))
    );
}

#[test]
fn item_5_invalid_or_conflicting_content_length_is_an_error() {
    for fields in [
        &["Content-Length: -1"][..],
        &["Content-Length: +5"],
        &["Content-Length: 5x"],
        &["Content-Length: 0x10"],
        &["Content-Length: 5 5"],
        &["Content-Length:"],
        &["Content-Length: 5,"],
        &["Content-Length: ,5"],
        &["Content-Length: 18446744073709551616"],
        &["Content-Length: \u{665}"],
    ] {
        assert_eq!(
            body_of("HTTP/1.1", 200, fields),
            Err(HeadError::InvalidContentLength),
            "{fields:?}"
        );
    }
    for fields in [
        &["Content-Length: 5, 6"][..],
        &["Content-Length: 5", "Content-Length: 6"],
    ] {
        assert_eq!(
            body_of("HTTP/1.1", 200, fields),
            Err(HeadError::ConflictingContentLength),
            "{fields:?}"
        );
    }
}

#[test]
fn item_8_otherwise_the_body_runs_until_close() {
    assert_eq!(body_of("HTTP/1.1", 200, &[]), Ok(BodyKind::UntilClose));
    assert_eq!(
        body_of("HTTP/1.0", 200, &["Server: old"]),
        Ok(BodyKind::UntilClose)
    );
    assert_eq!(body_of("HTTP/1.1", 502, &[]), Ok(BodyKind::UntilClose));
}
