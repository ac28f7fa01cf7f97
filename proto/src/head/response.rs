//! The response head read from the backend (RFC 9112 §4, §5) and how its body is delimited
//! (RFC 9112 §6.3). `parse_response` is fed the start of a buffer that grows with each read: "not yet
//! whole" consumes nothing, so the caller just reads more and calls again. No I/O.

use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use super::HeadError;

/// The most fields a head may have whatever the limits say: `HeaderMap` holds at most 32 768, and
/// the field array is allocated up front.
const FIELDS_CAP: usize = 8 * 1024;

/// How much head a response may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// Bytes of the head, its final empty line (and any empty lines before the status line)
    /// included.
    pub max_head_bytes: usize,
    /// Header fields (lines) in the head.
    pub max_headers: usize,
}

impl Default for HeadLimits {
    /// 16 KiB and 100 fields: hyper's client allows about 400 KiB, nginx 4–8 KiB per buffer and
    /// 100 fields; a backend's upgrade answer is a few hundred bytes.
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 16 * 1024,
            max_headers: 100,
        }
    }
}

/// A complete response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// `HTTP_10` or `HTTP_11`.
    pub version: Version,
    /// The reason phrase as sent, for relaying it unchanged; `None` when empty or when it holds
    /// obs-text (bytes >= 0x80), which httparse does not hand out.
    pub reason: Option<String>,
    pub headers: HeaderMap,
    /// Bytes of the head at the start of the buffer, the final CRLFCRLF included: what follows is
    /// the body (or, after a 101, the upgraded protocol).
    pub len: usize,
}

/// How a response body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// No body: the next byte belongs to the next response (or, after a 101 or a 2xx to CONNECT,
    /// to the tunnel).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding (RFC 9112 §7.1): decode with `ChunkedDecoder`.
    Chunked,
    /// Everything until the backend closes the connection.
    UntilClose,
}

/// Fields parsed without an allocation (`HeadLimits::default()` allows 100).
const STACK_FIELDS: usize = 100;

/// Parses the response head at the start of `buf`. `Ok(None)`: not complete yet (and `buf` is still
/// under `max_head_bytes`). `Err(TooLarge)` as soon as `buf.len() >= max_head_bytes` without a complete
/// head. Bytes after the head are not looked at.
pub fn parse_response(buf: &[u8], limits: HeadLimits) -> Result<Option<ResponseHead>, HeadError> {
    // Only the first max_head_bytes are parsed, so the answer never depends on bytes past the bound.
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    let max_headers = limits.max_headers.min(FIELDS_CAP);
    // On the stack for the usual limits: this runs once or twice per upgrade.
    let mut stack = [httparse::EMPTY_HEADER; STACK_FIELDS];
    let mut heap = Vec::new();
    let fields = if max_headers <= STACK_FIELDS {
        &mut stack[..max_headers]
    } else {
        heap.resize(max_headers, httparse::EMPTY_HEADER);
        &mut heap[..]
    };
    let mut response = httparse::Response::new(fields);
    let len = match response.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => {
            return Err(HeadError::TooLarge {
                limit: limits.max_head_bytes,
            })
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(HeadError::TooManyHeaders { limit: max_headers })
        }
        Err(httparse::Error::Version) if names_a_version(window) => {
            return Err(HeadError::UnsupportedVersion)
        }
        Err(error) => return Err(HeadError::Malformed(error)),
    };
    // httparse sets every part of a complete head.
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let code = response.code.unwrap_or_default();
    let status = match StatusCode::from_u16(code) {
        Ok(status) if code <= 599 => status,
        _ => return Err(HeadError::BadStatus(code)),
    };
    let reason = response.reason.filter(|r| !r.is_empty()).map(str::to_owned);
    Ok(Some(ResponseHead {
        status,
        version,
        reason,
        headers: header_map(response.headers, max_headers)?,
        len,
    }))
}

/// Whether the head starts (after the empty lines httparse skips) with `HTTP/` and a digit: then
/// httparse's version error means a version it does not speak (`HTTP/2.0`, `HTTP/1.2`), not garbage.
fn names_a_version(buf: &[u8]) -> bool {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n');
    let rest = &buf[start.unwrap_or(buf.len())..];
    rest.len() > 5 && rest.starts_with(b"HTTP/") && rest[5].is_ascii_digit()
}

/// The fields as an `HeaderMap`, built once. httparse already refused obs-fold (RFC 9112 §5.2) and
/// CR, LF and NUL in values; `http` checks its own rules again.
fn header_map(fields: &[httparse::Header<'_>], limit: usize) -> Result<HeaderMap, HeadError> {
    let too_many = |_| HeadError::TooManyHeaders { limit };
    let bad = |field: &httparse::Header<'_>| HeadError::BadHeader(field.name.to_owned());
    let mut headers = HeaderMap::try_with_capacity(fields.len()).map_err(too_many)?;
    for field in fields {
        let name = HeaderName::from_bytes(field.name.as_bytes()).map_err(|_| bad(field))?;
        let value = HeaderValue::from_bytes(field.value).map_err(|_| bad(field))?;
        headers.try_append(name, value).map_err(too_many)?;
    }
    Ok(headers)
}

impl ResponseHead {
    /// How the body of this response to `method` is delimited, in the order of RFC 9112 §6.3.
    pub fn body(&self, method: &Method) -> Result<BodyKind, HeadError> {
        // Item 1: no content by definition. 101 and a 2xx to CONNECT (item 2) turn the connection
        // into a tunnel right after the head: no body either.
        let status = self.status.as_u16();
        let tunnel = *method == Method::CONNECT && self.status.is_success();
        if *method == Method::HEAD
            || self.status.is_informational()
            || status == 204
            || status == 304
            || tunnel
        {
            return Ok(BodyKind::None);
        }
        // Item 3: Transfer-Encoding overrides Content-Length. RFC 9112 §6.1 calls it faulty framing
        // on HTTP/1.0, which predates it: refused (as hyper does) rather than guessed at.
        if self.headers.contains_key(TRANSFER_ENCODING) {
            if self.version == Version::HTTP_10 {
                return Err(HeadError::TransferEncodingOnHttp10);
            }
            return Ok(if last_coding_is_chunked(&self.headers) {
                BodyKind::Chunked
            } else {
                BodyKind::UntilClose
            });
        }
        // Items 5 and 6, then 8 (item 7 is for requests).
        match content_length(&self.headers)? {
            Some(n) => Ok(BodyKind::Length(n)),
            None => Ok(BodyKind::UntilClose),
        }
    }

    /// 1xx other than 101 (100 Continue, 103 Early Hints): the caller skips it and reads the next
    /// head (RFC 9110 §15.2).
    pub fn is_interim(&self) -> bool {
        self.status.is_informational() && self.status != StatusCode::SWITCHING_PROTOCOLS
    }
}

/// Whether the last transfer coding over all Transfer-Encoding lines is `chunked`. Empty list
/// elements are ignored (RFC 9110 §5.6.1). `chunked` applied twice is not refused: the last coding
/// decides, as in hyper.
fn last_coding_is_chunked(headers: &HeaderMap) -> bool {
    let last = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(trim_ows)
        .rfind(|coding| !coding.is_empty());
    last.is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked"))
}

/// The one Content-Length value, if any: every line and every comma-separated element must be
/// 1*DIGIT and all must be equal (RFC 9110 §8.6, RFC 9112 §6.3 item 5).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        for element in value.as_bytes().split(|&b| b == b',') {
            let n = parse_digits(trim_ows(element)).ok_or(HeadError::InvalidContentLength)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(HeadError::ConflictingContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// 1*DIGIT as a u64: no sign, no spaces, no overflow.
fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// Without the optional whitespace (SP, HTAB) around a list element (RFC 9110 §5.6.3).
fn trim_ows(element: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = element
        .iter()
        .position(|b| !is_ows(b))
        .unwrap_or(element.len());
    let end = element
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &element[start..end]
}
