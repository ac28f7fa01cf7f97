//! `parse_response`: every prefix of a whole head is "not yet", the whole is the head, bytes after it
//! are not counted; malformed and over-long heads give their error.

use super::*;
use http::{StatusCode, Version};

fn parse(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    parse_response(buf, HeadLimits::default())
}

/// The complete head at the start of `buf`; panics (the test fails) otherwise.
fn head(buf: &[u8]) -> ResponseHead {
    match parse(buf) {
        Ok(Some(head)) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

const UPGRADE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n";
const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
const NO_CONTENT: &[u8] = b"HTTP/1.1 204 No Content\r\nDate: Wed, 02 Dec 2026 03:00:00 GMT\r\n\r\n";
const NOT_MODIFIED: &[u8] =
    b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 9\r\n\r\n";
const EARLY_HINTS: &[u8] = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
const HTTP10: &[u8] = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\n";

/// Every strict prefix is `Ok(None)`; the whole, and the whole followed by `after`, give the same
/// head, whose `len` is the head's.
fn check_prefixes(whole: &[u8], after: &[u8]) -> ResponseHead {
    for end in 0..whole.len() {
        let prefix = &whole[..end];
        assert!(
            matches!(parse(prefix), Ok(None)),
            "prefix {:?}: {:?}",
            String::from_utf8_lossy(prefix),
            parse(prefix)
        );
    }
    let alone = head(whole);
    assert_eq!(alone.len, whole.len());
    let followed = head(&[whole, after].concat());
    assert_eq!(followed.len, whole.len());
    assert_eq!(followed.status, alone.status);
    assert_eq!(followed.headers, alone.headers);
    alone
}

#[test]
fn every_prefix_of_a_head_is_incomplete_and_the_whole_is_the_head() {
    let upgrade = check_prefixes(UPGRADE, b"\x81\x05hello");
    assert_eq!(upgrade.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(upgrade.version, Version::HTTP_11);
    assert_eq!(upgrade.reason.as_deref(), Some("Switching Protocols"));
    assert_eq!(upgrade.headers["upgrade"], "websocket");
    assert_eq!(upgrade.headers.len(), 3);
    assert!(!upgrade.is_interim());

    assert_eq!(
        check_prefixes(LENGTH, b"hello").headers["content-length"],
        "5"
    );
    check_prefixes(CHUNKED, b"5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(
        check_prefixes(NO_CONTENT, b"").status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        check_prefixes(NOT_MODIFIED, b"").status,
        StatusCode::NOT_MODIFIED
    );
    let old = check_prefixes(HTTP10, b"until close");
    assert_eq!(old.version, Version::HTTP_10);
}

#[test]
fn an_interim_head_is_one_head_and_the_final_one_follows() {
    let both = [EARLY_HINTS, LENGTH, b"hello"].concat();
    let first = check_prefixes(EARLY_HINTS, &both[EARLY_HINTS.len()..]);
    assert!(first.is_interim());
    assert_eq!(head(&both).len, EARLY_HINTS.len());
    let rest = &both[first.len..];
    let second = check_prefixes(LENGTH, b"hello");
    assert_eq!(head(rest).len, second.len);
    assert!(!second.is_interim());
    assert!(head(b"HTTP/1.1 100 Continue\r\n\r\n").is_interim());
}

#[test]
fn reason_phrases_and_line_ends_as_sent() {
    assert_eq!(head(b"HTTP/1.1 200 \r\n\r\n").reason, None);
    assert_eq!(head(b"HTTP/1.1 200\r\n\r\n").reason, None);
    assert_eq!(
        head(b"HTTP/1.1 599 Very Custom\r\n\r\n").reason.as_deref(),
        Some("Very Custom")
    );
    // obs-text in the reason: accepted, not handed out.
    assert_eq!(head(b"HTTP/1.1 200 \xe9t\xe9\r\n\r\n").reason, None);
    // RFC 9112 §2.2: a recipient may take a bare LF as a line end; httparse does, and counts it.
    assert_eq!(head(b"HTTP/1.1 200 OK\nA: b\n\nbody").len, 22);
    // Repeated fields are kept in order.
    let repeated = head(b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n");
    let cookies: Vec<_> = repeated.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
}

#[test]
fn malformed_heads_give_httparse_s_reason() {
    use httparse::Error::*;
    for (bytes, error) in [
        (&b"SSH-2.0-OpenSSH_9.6\r\n\r\n"[..], Version),
        (b"\x16\x03\x01\x00\xa5\x01\x00\x00", Version),
        (b"GET / HTTP/1.1\r\n\r\n", Version),
        (b"HTTP/1.1 2x0 OK\r\n\r\n", Status),
        (b"HTTP/1.1 20 OK\r\n\r\n", Status),
        (b"HTTP/1.1  200 OK\r\n\r\n", Status),
        (b"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", HeaderName),
        (b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n", HeaderName),
        (b"HTTP/1.1 200 OK\r\nA: b\0c\r\n\r\n", HeaderValue),
        (b"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", HeaderValue),
        (b"HTTP/1.1 200 OK\r\nA: b\x7fc\r\n\r\n", HeaderValue),
        // obs-fold (RFC 9112 §5.2): httparse refuses it by default, and so do we.
        (b"HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n", HeaderName),
        (b"HTTP/1.1 200 OK\r\n\tA: b\r\n\r\n", HeaderName),
        (b"HTTP/1.1 200 OK\r\r\n\r\n", Status),
    ] {
        assert_eq!(
            parse(bytes).unwrap_err(),
            HeadError::Malformed(error),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn versions_and_status_codes_outside_what_this_leg_speaks() {
    for bytes in [
        &b"HTTP/2.0 200 OK\r\n\r\n"[..],
        b"HTTP/2 200 OK\r\n\r\n",
        b"HTTP/1.2 200 OK\r\n\r\n",
        b"\r\nHTTP/0.9 200 OK\r\n\r\n",
    ] {
        assert_eq!(parse(bytes).unwrap_err(), HeadError::UnsupportedVersion);
    }
    assert_eq!(
        parse(b"HTTP/x").unwrap_err(),
        HeadError::Malformed(httparse::Error::Version)
    );
    for code in [0u16, 99, 600, 999] {
        let bytes = format!("HTTP/1.1 {code:03} X\r\n\r\n");
        assert_eq!(
            parse(bytes.as_bytes()).unwrap_err(),
            HeadError::BadStatus(code)
        );
    }
}

#[test]
fn an_over_long_head_is_refused_once_max_head_bytes_are_in() {
    let limits = HeadLimits {
        max_head_bytes: 64,
        max_headers: 4,
    };
    let mut long = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
    long.resize(63, b'a');
    assert!(matches!(parse_response(&long, limits), Ok(None)));
    long.push(b'a');
    let too_large = Err(HeadError::TooLarge { limit: 64 });
    assert_eq!(parse_response(&long, limits).map(|_| ()), too_large);
    // A head that would end past the bound is refused even when it is whole.
    long.extend_from_slice(b"\r\n\r\n");
    assert_eq!(parse_response(&long, limits).map(|_| ()), too_large);
    // Exactly max_head_bytes is fine, and what follows the head does not count.
    let mut exact = b"HTTP/1.1 200 OK\r\nX-Pad: ".to_vec();
    exact.resize(60, b'a');
    exact.extend_from_slice(b"\r\n\r\nbody past the bound");
    assert_eq!(parse_response(&exact, limits).unwrap().unwrap().len, 64);
    // Garbage past the bound does not change the answer.
    let garbage = [&long[..64], b"\0\0\r\n\r\n"].concat();
    assert_eq!(parse_response(&garbage, limits).map(|_| ()), too_large);
}

#[test]
fn more_fields_than_max_headers_are_refused() {
    let limits = HeadLimits {
        max_head_bytes: 16 * 1024,
        max_headers: 3,
    };
    let mut head = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n".to_vec();
    assert!(matches!(parse_response(&head, limits), Ok(None)));
    let three = [&head[..], b"\r\n"].concat();
    assert_eq!(
        parse_response(&three, limits)
            .unwrap()
            .unwrap()
            .headers
            .len(),
        3
    );
    head.extend_from_slice(b"D: 4\r\n\r\n");
    assert_eq!(
        parse_response(&head, limits).map(|_| ()),
        Err(HeadError::TooManyHeaders { limit: 3 })
    );
    let none = HeadLimits {
        max_head_bytes: 64,
        max_headers: 0,
    };
    assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n", none).is_ok());
    assert!(parse_response(b"HTTP/1.1 200 OK\r\nA: 1\r\n\r\n", none).is_err());
}

#[test]
fn no_byte_pattern_panics() {
    // Every two-byte continuation of a few interesting prefixes.
    for prefix in [
        &b""[..],
        b"HTTP/1.1 ",
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nA:",
    ] {
        for a in 0..=255u8 {
            for b in [b'\r', b'\n', b' ', b':', b'a', 0, 0x80, a] {
                let _ = parse(&[prefix, &[a, b]].concat());
            }
        }
    }
}
