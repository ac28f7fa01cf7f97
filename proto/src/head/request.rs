//! The request head wsgate writes to the backend (RFC 9112 §3): request line, the fields the caller
//! chose, the empty line. No I/O.

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::HeadError;

/// A request head being written; `finish` gives its bytes.
#[derive(Debug, Clone)]
pub struct RequestHead {
    bytes: Vec<u8>,
}

impl RequestHead {
    /// `<METHOD> <target> HTTP/1.1\r\n`. `target` is origin-form (starts with `/`) or `*`, and only
    /// visible ASCII: a SP, CR, LF, NUL, DEL or non-ASCII byte would let it rewrite the request line
    /// or add fields (request splitting), so it is refused.
    pub fn new(method: &Method, target: &str) -> Result<RequestHead, HeadError> {
        let origin_form = target.starts_with('/') || target == "*";
        if !origin_form || !target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(HeadError::BadTarget(target.to_owned()));
        }
        let method = method.as_str();
        let mut bytes = Vec::with_capacity(method.len() + target.len() + 256);
        bytes.extend_from_slice(method.as_bytes());
        bytes.push(b' ');
        bytes.extend_from_slice(target.as_bytes());
        bytes.extend_from_slice(b" HTTP/1.1\r\n");
        Ok(RequestHead { bytes })
    }

    /// `name: value\r\n`. `http`'s types hold only valid field names and values (no CR, LF or NUL).
    pub fn header(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.bytes.extend_from_slice(name.as_str().as_bytes());
        self.bytes.extend_from_slice(b": ");
        self.bytes.extend_from_slice(value.as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// Every field of `headers`, in the map's order with repeated fields kept, except those `skip`
    /// returns true for (the caller drops hop-by-hop ones).
    pub fn headers_except(&mut self, headers: &HeaderMap, skip: impl Fn(&HeaderName) -> bool) {
        for (name, value) in headers {
            if !skip(name) {
                self.header(name, value);
            }
        }
    }

    /// The head, terminated by the empty line.
    pub fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(b"\r\n");
        self.bytes
    }
}
